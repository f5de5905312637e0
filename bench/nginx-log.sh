#!/usr/bin/env bash
# nginx as the harness's nginx peer, but with an access log to a file, as a production nginx logs:
#   access_log TMP/access.log combined buffer=64k flush=1s;   (default: buffered)
#   access_log TMP/access.log combined;                       (with "unbuffered": one write per line)
# usage (bench/run.sh does this for the peers `nginx-log` and `nginx-log-unbuffered`):
#   nginx-log.sh PORT STATIC TMP [unbuffered]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HARNESS=${PLUGD_BENCH_HARNESS:-$ROOT/../shared/bench}
port=$1 static=$2 tmp=$3 buffering=${4:-buffered}
log="access_log $tmp/access.log combined buffer=64k flush=1s;"
[[ $buffering == unbuffered ]] && log="access_log $tmp/access.log combined;"
mkdir -p "$tmp"
sed -e "s|{port}|$port|g" -e "s|{static}|$static|g" -e "s|{tmp}|$tmp|g" \
    -e "s|access_log off;|$log|" \
    "$HARNESS/nginx.conf" >"$tmp/nginx.conf"
grep -q "access.log combined" "$tmp/nginx.conf" || { echo "nginx.conf has no 'access_log off;' to replace" >&2; exit 1; }
exec nginx -p "$tmp" -e stderr -c "$tmp/nginx.conf"

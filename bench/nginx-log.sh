#!/usr/bin/env bash
# nginx as the harness's nginx peer, but with a buffered access log to a file, as a production nginx logs:
#   access_log TMP/access.log combined buffer=64k flush=1s;
# usage (bench/run.sh does this for the peer `nginx-log`): nginx-log.sh PORT STATIC TMP
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HARNESS=${PLUGD_BENCH_HARNESS:-$ROOT/../shared/bench}
port=$1 static=$2 tmp=$3
mkdir -p "$tmp"
sed -e "s|{port}|$port|g" -e "s|{static}|$static|g" -e "s|{tmp}|$tmp|g" \
    -e "s|access_log off;|access_log $tmp/access.log combined buffer=64k flush=1s;|" \
    "$HARNESS/nginx.conf" >"$tmp/nginx.conf"
grep -q "buffer=64k" "$tmp/nginx.conf" || { echo "nginx.conf has no 'access_log off;' to replace" >&2; exit 1; }
exec nginx -p "$tmp" -e stderr -c "$tmp/nginx.conf"

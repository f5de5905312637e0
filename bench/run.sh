#!/usr/bin/env bash
# plugd side by side with established HTTP/1.1 servers, through the shared wrk harness.
#
# usage: bench/run.sh [HARNESS OPTIONS] [PEER...]
#   Builds plugd and the example plugins in release mode, installs the plugins into a temporary plugin
#   folder, sets the harness up if it is not (wrk, nginx, the peers), and runs the harness with plugd
#   first (the reference of the ratio column), then plugd-default, then PEER... (default: hyper nginx
#   actix). plugd serves the plaintext, pipeline16 and close scenarios from the hello plugin's
#   GET /plaintext, echo_4k from the echo plugin's POST /echo, static_* from --static-dir.
#   plugd runs with logging at warn and --access-log off, as nginx's bench config has access_log off;
#   plugd-default runs with plugd's defaults (log level info, the access log on stderr, which the
#   harness sends to a file: the same medium as an nginx access_log).
#   Peer nginx-log: nginx with `access_log FILE combined buffer=64k flush=1s` (bench/nginx-log.sh);
#   nginx-log-unbuffered: the same without `buffer=` (a write per line, nginx's default).
#   HARNESS OPTIONS are passed through: -d SECS, -n TRIALS, -c CONNS, -t THREADS, -w SECS, -q SECS,
#   -o DIR, --only a,b, --idle N1,N2, --pin. See ../shared/bench/README.md.
# examples:
#   bench/run.sh                                  # every scenario, plugd hyper nginx actix, ~15 min
#   bench/run.sh --only plaintext,pipeline16 -n 5 hyper
#   bench/run.sh --only "" --idle 10000 hyper nginx   # idle connections only
# env: PLUGD_BENCH_HARNESS (default ../shared/bench beside the repository), BENCH_WORK (harness's
#   work folder, default /tmp/plugd-bench), PLUGD_BENCH_ARGS (extra plugd arguments, e.g. "--threads 2").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

HARNESS_OPTS=() PEERS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -d|-n|-c|-t|-w|-q|-o|--only|--idle) HARNESS_OPTS+=("$1" "$2"); shift 2 ;;
    --pin) HARNESS_OPTS+=("$1"); shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    nginx-log) PEERS+=("nginx-log=bash $ROOT/bench/nginx-log.sh {port} {static} {tmp}"); shift ;;
    nginx-log-unbuffered)
      PEERS+=("nginx-log-unbuffered=bash $ROOT/bench/nginx-log.sh {port} {static} {tmp} unbuffered"); shift ;;
    *) PEERS+=("$1"); shift ;;
  esac
done
(( ${#PEERS[@]} > 0 )) || PEERS=(hyper nginx actix)

build_plugd
ensure_harness
PLUGIN_DIR=$(make_plugin_dir)
trap 'rm -rf "$PLUGIN_DIR"' EXIT

"$HARNESS/run.sh" "${HARNESS_OPTS[@]}" \
  "plugd@/plaintext=env RUST_LOG=warn $PLUGD --port {port} --static-dir {static} --plugin-dir $PLUGIN_DIR --access-log off ${PLUGD_BENCH_ARGS:-}" \
  "plugd-default@/plaintext=env -u RUST_LOG $PLUGD --port {port} --static-dir {static} --plugin-dir $PLUGIN_DIR ${PLUGD_BENCH_ARGS:-}" \
  "${PEERS[@]}"

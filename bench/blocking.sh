#!/usr/bin/env bash
# A handler that blocks must delay only its own connection.
#
# usage: bench/blocking.sh [-d SECS] [-b BLOCKERS] [-c CONNS]
#   Starts plugd with the example plugins and the bench/sleep-plugin fixture (GET /sleep blocks its worker
#   10 ms per request). Measures GET /plaintext with wrk -cCONNS (default 64) for SECS (default 5): first
#   alone, then while BLOCKERS (default 1) connections each request /sleep back to back (wrk -c1 each).
#   Target: p99 of /plaintext under 2 ms with one blocker (docs/ARCHITECTURE.md §4.4). With BLOCKERS >= the pool size
#   (--threads, default max(4, 2 x CPUs)) every worker is asleep and /plaintext stalls: that is the
#   documented limit of a fixed pool, which --threads raises.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
DUR=5 BLOCKERS=1 CONNS=64
while [[ $# -gt 0 ]]; do
  case $1 in
    -d) DUR=$2; shift 2 ;;  -b) BLOCKERS=$2; shift 2 ;;  -c) CONNS=$2; shift 2 ;;
    *) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 2 ;;
  esac
done

build_plugd
build_fixture sleep-plugin
ensure_harness
PLUGIN_DIR=$(make_plugin_dir "$TARGET/release/libsleep_plugin.so")
OUT=$(mktemp -d "${TMPDIR:-/tmp}/plugd-blocking.XXXXXX")
PORT=${PORT:-28990}
SERVER=""
BLOCKER_PIDS=()
cleanup() {
  local pid
  for pid in "${BLOCKER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [[ -n $SERVER ]] && kill -TERM "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  rm -rf "$PLUGIN_DIR"
}
trap cleanup EXIT

RUST_LOG=warn "$PLUGD" --port "$PORT" --static-dir "$STATIC" --plugin-dir "$PLUGIN_DIR" \
  ${PLUGD_BENCH_ARGS:-} >"$OUT/plugd.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/plaintext" && break; sleep 0.1; done
[[ $(curl -s "http://127.0.0.1:$PORT/sleep") == slept ]] || { echo "GET /sleep failed"; cat "$OUT/plugd.log"; exit 1; }

p99() { awk '$1=="99%"{print $2}' "$1"; }
rps() { awk '/Requests\/sec:/{print $2}' "$1"; }
plaintext() {  # outfile
  wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "http://127.0.0.1:$PORT/plaintext" >"$1" 2>&1
}

echo "# $(date -Is) plugd pid $SERVER, wrk -t1 -c$CONNS -d${DUR}s /plaintext; $BLOCKERS blocker(s) on /sleep (10 ms)"
wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$PORT/plaintext" >/dev/null 2>&1  # warm-up
plaintext "$OUT/alone.txt"
for b in $(seq "$BLOCKERS"); do
  wrk -t1 -c1 -d"$((DUR + 2))s" --latency "http://127.0.0.1:$PORT/sleep" >"$OUT/sleep.$b.txt" 2>&1 &
  BLOCKER_PIDS+=($!)
done
sleep 1
plaintext "$OUT/blocked.txt"
for pid in "${BLOCKER_PIDS[@]}"; do wait "$pid" || true; done
BLOCKER_PIDS=()
printf '%-32s %12s %10s\n' run req/s p99
printf '%-32s %12s %10s\n' "/plaintext alone" "$(rps "$OUT/alone.txt")" "$(p99 "$OUT/alone.txt")"
printf '%-32s %12s %10s\n' "/plaintext + $BLOCKERS x /sleep" "$(rps "$OUT/blocked.txt")" "$(p99 "$OUT/blocked.txt")"
for b in $(seq "$BLOCKERS"); do
  printf '%-32s %12s %10s\n' "  /sleep blocker $b" "$(rps "$OUT/sleep.$b.txt")" "$(p99 "$OUT/sleep.$b.txt")"
done
grep -h "Socket errors\|Non-2xx" "$OUT"/*.txt || true
echo "raw wrk output: $OUT"

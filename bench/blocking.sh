#!/usr/bin/env bash
# A handler that blocks must delay only its own connection.
#
# usage: bench/blocking.sh [-d SECS] [-b BLOCKERS] [-c CONNS] [-s SLOW_CLIENTS]
#   Starts plugd with the example plugins and the bench/sleep-plugin fixture (GET /sleep blocks its worker
#   10 ms per request, GET /slow 200 ms).
#   Default scenario: measures GET /plaintext with wrk -cCONNS (default 64) for SECS (default 5): first
#   alone, then while BLOCKERS (default 1) connections each request /sleep back to back (wrk -c1 each).
#   Target: p99 of /plaintext under 2 ms with one blocker (docs/ARCHITECTURE.md §4.4).
#   With -s: SLOW_CLIENTS connections (e.g. 100, or 1000) request /slow back to back (one wrk) while wrk
#   -cCONNS measures /plaintext, then /static/1k.bin, for SECS each; prints their p99, the /slow
#   completions per 200 ms and its 503s (beyond the plugin's max_in_flight), and plugd's RSS and threads
#   (sampled every second, the highest shown). Targets: with 100 slow clients, p99 under 20 ms and about
#   100 /slow completions per 200 ms; with 1,000, p99 under 50 ms (docs/ARCHITECTURE.md §4.4).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
DUR=5 BLOCKERS=1 CONNS=64 SLOW_CLIENTS=0
while [[ $# -gt 0 ]]; do
  case $1 in
    -d) DUR=$2; shift 2 ;;  -b) BLOCKERS=$2; shift 2 ;;  -c) CONNS=$2; shift 2 ;;
    -s) SLOW_CLIENTS=$2; shift 2 ;;
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

RUST_LOG=warn "$PLUGD" --port "$PORT" --static-dir "$STATIC" --plugin-dir "$PLUGIN_DIR" --access-log off \
  ${PLUGD_BENCH_ARGS:-} >"$OUT/plugd.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/plaintext" && break; sleep 0.1; done
[[ $(curl -s "http://127.0.0.1:$PORT/sleep") == slept ]] || { echo "GET /sleep failed"; cat "$OUT/plugd.log"; exit 1; }

p99() { awk '$1=="99%"{print $2}' "$1"; }
rps() { awk '/Requests\/sec:/{print $2}' "$1"; }
plaintext() {  # outfile
  wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "http://127.0.0.1:$PORT/plaintext" >"$1" 2>&1
}

many_slow_clients() {  # the -s scenario
  ulimit -n 65536 2>/dev/null || true
  echo "# $(date -Is) plugd pid $SERVER; $SLOW_CLIENTS clients on /slow (200 ms) while wrk -t1 -c$CONNS" \
    "-d${DUR}s measures /plaintext, then /static/1k.bin"
  wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$PORT/plaintext" >/dev/null 2>&1  # warm-up
  wrk -t1 -c"$SLOW_CLIENTS" -d"$((2 * DUR + 3))s" --timeout 10s --latency \
    "http://127.0.0.1:$PORT/slow" >"$OUT/slow.txt" 2>&1 &
  BLOCKER_PIDS+=($!)
  (for _ in $(seq "$((2 * DUR + 3))"); do
     awk '/^(VmRSS|Threads):/{printf "%s %s ", $1, $2} END {print ""}' "/proc/$SERVER/status"; sleep 1
   done) >"$OUT/proc.txt" 2>/dev/null &
  local sampler=$!
  sleep 1
  wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "http://127.0.0.1:$PORT/plaintext" >"$OUT/plaintext.txt" 2>&1
  wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "http://127.0.0.1:$PORT/static/1k.bin" >"$OUT/static.txt" 2>&1
  wait "${BLOCKER_PIDS[@]}" || true
  BLOCKER_PIDS=()
  wait "$sampler" || true
  printf '%-34s %12s %10s\n' run req/s p99
  printf '%-34s %12s %10s\n' "/plaintext + slow clients" "$(rps "$OUT/plaintext.txt")" "$(p99 "$OUT/plaintext.txt")"
  printf '%-34s %12s %10s\n' "/static/1k.bin + slow clients" "$(rps "$OUT/static.txt")" "$(p99 "$OUT/static.txt")"
  printf '%-34s %12s %10s\n' "/slow ($SLOW_CLIENTS clients)" "$(rps "$OUT/slow.txt")" "$(p99 "$OUT/slow.txt")"
  awk '/Requests\/sec:/{printf "/slow completions per 200 ms: %.1f\n", $2 / 5}' "$OUT/slow.txt"
  awk '/Non-2xx/{print "/slow non-2xx (503 beyond max_in_flight): " $NF}' "$OUT/slow.txt"
  awk '{for (i = 1; i < NF; i += 2) if ($i == "VmRSS:" && $(i+1) > rss) rss = $(i+1);
        for (i = 1; i < NF; i += 2) if ($i == "Threads:" && $(i+1) > th) th = $(i+1)}
       END {printf "plugd highest RSS %.1f MiB, threads %d\n", rss / 1024, th}' "$OUT/proc.txt"
  awk '/Threads:/{last = $0} END {print "plugd at the end: " last}' "$OUT/proc.txt"
  grep -h "Socket errors\|Non-2xx" "$OUT"/plaintext.txt "$OUT"/static.txt || true
  echo "raw wrk output: $OUT"
}
if [[ $SLOW_CLIENTS -gt 0 ]]; then
  many_slow_clients
  exit 0
fi

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

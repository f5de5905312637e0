#!/usr/bin/env bash
# A handler that blocks must delay only its own connection.
#
# usage: bench/blocking.sh [-d SECS] [-b BLOCKERS] [-c CONNS] [-s SLOW_CLIENTS [-r ROUNDS]]
#   Starts plugd with the example plugins and the bench/sleep-plugin fixture (GET /sleep blocks its worker
#   10 ms per request, GET /slow 200 ms).
#   Default scenario: measures GET /plaintext with wrk -cCONNS (default 64) for SECS (default 5): first
#   alone, then while BLOCKERS (default 1) connections each request /sleep back to back (wrk -c1 each).
#   Target: p99 of /plaintext under 2 ms with one blocker (docs/ARCHITECTURE.md §4.4).
#   With -s: SLOW_CLIENTS connections (e.g. 100, or 1000) request /slow back to back (one wrk) while wrk
#   -cCONNS measures /plaintext, then /static/1k.bin, for SECS each; repeated ROUNDS times (default 3) on
#   one server. Prints a line per round: their p99, the /slow 200s per 200 ms and its 503s (beyond the
#   plugin's max_in_flight), errors, and plugd's RSS and threads (sampled every second, the highest shown).
#   Targets: with 100 slow clients, p99 under 20 ms, about 100 /slow 200s per 200 ms and no errors; with
#   1,000, p99 under 50 ms (docs/ARCHITECTURE.md §4.4).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
DUR=5 BLOCKERS=1 CONNS=64 SLOW_CLIENTS=0 ROUNDS=3
while [[ $# -gt 0 ]]; do
  case $1 in
    -d) DUR=$2; shift 2 ;;  -b) BLOCKERS=$2; shift 2 ;;  -c) CONNS=$2; shift 2 ;;
    -s) SLOW_CLIENTS=$2; shift 2 ;;  -r) ROUNDS=$2; shift 2 ;;
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

ok_per_200ms() {  # wrk output -> 2xx answers per 200 ms
  awk '/requests in/{n = $1; secs = $4 + 0} /Non-2xx/{bad = $NF} END {if (secs) printf "%.1f", (n - bad) / secs / 5}' "$1"
}
non2xx() { awk '/Non-2xx/{bad = $NF} END {print bad + 0}' "$1"; }
socket_errors() {  # wrk outputs -> connect, read, write errors and timeouts, summed
  awk '/Socket errors/{for (i = 4; i <= NF; i += 2) n += $i} END {print n + 0}' "$@"
}

slow_round() {  # one round of the -s scenario; prints its line
  local out=$OUT/round$1 sampler
  mkdir -p "$out"
  wrk -t1 -c"$SLOW_CLIENTS" -d"$((2 * DUR + 3))s" --timeout 10s --latency \
    "http://127.0.0.1:$PORT/slow" >"$out/slow.txt" 2>&1 &
  BLOCKER_PIDS+=($!)
  (for _ in $(seq "$((2 * DUR + 3))"); do
     awk '/^(VmRSS|Threads):/{printf "%s %s ", $1, $2} END {print ""}' "/proc/$SERVER/status"; sleep 1
   done) >"$out/proc.txt" 2>/dev/null &
  sampler=$!
  sleep 1
  wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "http://127.0.0.1:$PORT/plaintext" >"$out/plaintext.txt" 2>&1
  wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "http://127.0.0.1:$PORT/static/1k.bin" >"$out/static.txt" 2>&1
  wait "${BLOCKER_PIDS[@]}" || true
  BLOCKER_PIDS=()
  wait "$sampler" || true
  printf '%-6s %14s %14s %12s %10s %7s %9s %8s\n' "$1" "$(p99 "$out/plaintext.txt")" "$(p99 "$out/static.txt")" \
    "$(ok_per_200ms "$out/slow.txt")" "$(non2xx "$out/slow.txt")" \
    "$(($(socket_errors "$out"/*.txt) + $(non2xx "$out/plaintext.txt") + $(non2xx "$out/static.txt")))" \
    "$(awk '{for (i = 1; i < NF; i += 2) if ($i == "VmRSS:" && $(i+1) > m) m = $(i+1)} END {printf "%.1f", m / 1024}' "$out/proc.txt")" \
    "$(awk '{for (i = 1; i < NF; i += 2) if ($i == "Threads:" && $(i+1) > m) m = $(i+1)} END {print m + 0}' "$out/proc.txt")"
}

many_slow_clients() {  # the -s scenario
  ulimit -n 65536 2>/dev/null || true
  echo "# $(date -Is) plugd pid $SERVER; $SLOW_CLIENTS clients on /slow (200 ms) while wrk -t1 -c$CONNS" \
    "-d${DUR}s measures /plaintext, then /static/1k.bin; $ROUNDS round(s)"
  wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$PORT/plaintext" >/dev/null 2>&1  # warm-up
  printf '%-6s %14s %14s %12s %10s %7s %9s %8s\n' round "plaintext p99" "static p99" "/slow 200s" \
    "/slow 503" errors "RSS MiB" threads
  for round in $(seq "$ROUNDS"); do slow_round "$round"; done
  sleep 1
  awk '/^Threads:/{print "plugd 1 s after the last round: " $0}' "/proc/$SERVER/status"
  echo "(/slow 200s: per 200 ms; errors: socket errors of all three, non-2xx of /plaintext and /static; RSS and threads:" \
    "highest sampled) raw wrk output: $OUT"
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

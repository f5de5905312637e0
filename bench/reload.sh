#!/usr/bin/env bash
# Plugins replaced under load: zero failed requests (docs/ARCHITECTURE.md §8.8).
#
# usage: bench/reload.sh [-n REPLACEMENTS] [-c CONNS] [-i INTERVAL] [-b BUILT_DIR]
#   Starts plugd (release) with the `live` fixture plugin (tests/fixtures/live_v1) and runs wrk -cCONNS
#   (default 64) on GET /live while the plugin file is replaced REPLACEMENTS times (default 100), every
#   INTERVAL seconds (default 0.15), alternating versions 1.0.0 and 2.0.0 (each written to a temporary
#   name, then renamed over live.so). Three runs:
#     plain   the two versions only;
#     mixed   a garbage file and an `init`-failing version (live_broken) before every other replacement;
#     distinct  every replacement a new file (version 1 or 2 with bytes appended: a new SHA-256 each), to
#             measure what each retired version keeps mapped.
#   Prints per run: requests, non-2xx, socket errors, bodies that are neither version, the time from the
#   last replacement until the last version alone answers, and plugd's RSS after the first replacement
#   and after the last. Targets: zero non-2xx, zero socket errors, zero other bodies, under 1 s.
#   -b BUILT_DIR: use plugd and the fixtures already built there (e.g. target/debug after the tests)
#   instead of building the release profile.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
REPLACEMENTS=100 CONNS=64 INTERVAL=0.15 BUILT=""
while [[ $# -gt 0 ]]; do
  case $1 in
    -n) REPLACEMENTS=$2; shift 2 ;;  -c) CONNS=$2; shift 2 ;;  -i) INTERVAL=$2; shift 2 ;;
    -b) BUILT=$(cd "$2" && pwd); shift 2 ;;
    *) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 2 ;;
  esac
done

if [[ -z $BUILT ]]; then
  build_plugd
  for fixture in live_v1 live_v2 live_broken; do
    (cd "$ROOT/tests/fixtures/$fixture" && CARGO_TARGET_DIR=$TARGET cargo build --release)
  done
  BUILT=$TARGET/release
fi
PLUGD=$BUILT/plugd
[[ -d $STATIC ]] || STATIC=$ROOT/static
command -v wrk >/dev/null || { echo "wrk is missing (run $HARNESS/setup.sh)" >&2; exit 1; }
V1=$BUILT/liblive_v1.so V2=$BUILT/liblive_v2.so BROKEN=$BUILT/liblive_broken.so
OUT=$(mktemp -d "${TMPDIR:-/tmp}/plugd-reload.XXXXXX")
PORT=${PORT:-28991}
SERVER="" WRK=""
cleanup() {
  [[ -n $WRK ]] && kill "$WRK" 2>/dev/null || true
  [[ -n $SERVER ]] && kill -TERM "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  rm -rf "$OUT"
}
trap cleanup EXIT

# Counts each answer by body, per wrk thread, summed at the end.
cat > "$OUT/bodies.lua" <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init() v1, v2, other = 0, 0, 0 end
function response(status, headers, body)
  if body == "live 1.0.0\n" then v1 = v1 + 1
  elseif body == "live 2.0.0\n" then v2 = v2 + 1
  else other = other + 1 end
end
function done(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do a = a + t:get("v1"); b = b + t:get("v2"); c = c + t:get("other") end
  io.write(string.format("bodies: v1 %d, v2 %d, other %d\n", a, b, c))
  local e = summary.errors
  io.write(string.format("requests %d, non-2xx %d, socket errors %d\n", summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout))
end
LUA

install() {  # install FILE [EXTRA_BYTES]: write a temporary name, then rename it over live.so
  { cat "$1"; [[ -n ${2:-} ]] && printf '%s' "$2"; } > "$DIR/.live.so.tmp"
  mv "$DIR/.live.so.tmp" "$DIR/live.so"
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER/status"; }

run() {  # run NAME: one scenario
  local name=$1 i version last body started waited rss_first=""
  DIR=$(mktemp -d "${TMPDIR:-/tmp}/plugd-reload-plugins.XXXXXX")
  install "$V1"
  RUST_LOG=info "$PLUGD" --port "$PORT" --plugin-dir "$DIR" --static-dir "$STATIC" --access-log off \
    2> "$OUT/$name.log" &
  SERVER=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/live" >/dev/null && break; sleep 0.1; done
  local duration
  duration=$(awk -v n="$REPLACEMENTS" -v i="$INTERVAL" 'BEGIN { printf "%d", n * i * (1 + ("'"$name"'" == "mixed")) + 4 }')
  wrk -t2 -c"$CONNS" -d"${duration}s" -s "$OUT/bodies.lua" "http://127.0.0.1:$PORT/live" > "$OUT/$name.wrk" &
  WRK=$!
  sleep 1
  for i in $(seq "$REPLACEMENTS"); do
    if [[ $name == mixed ]]; then
      if (( i % 2 )); then printf 'garbage %d' "$i" > "$DIR/.live.so.tmp"; mv "$DIR/.live.so.tmp" "$DIR/live.so"
      else install "$BROKEN"; fi
      sleep "$INTERVAL"
    fi
    if (( i % 2 )); then version=$V2 body="live 2.0.0"; else version=$V1 body="live 1.0.0"; fi
    if [[ $name == distinct ]]; then install "$version" "pad $i"; else install "$version"; fi
    started=$(date +%s.%N)
    (( i < REPLACEMENTS )) && sleep "$INTERVAL"
    [[ -z $rss_first ]] && rss_first=$(rss_kib)
  done
  last=$body
  # The first fresh connection answered by the last version, then 50 more in a row answered by it alone.
  until [[ $(curl -s "http://127.0.0.1:$PORT/live") == "$last" ]]; do :; done
  waited=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f", e - s }')
  local streak=0
  while (( streak < 50 )); do
    if [[ $(curl -s "http://127.0.0.1:$PORT/live") == "$last" ]]; then streak=$((streak + 1)); else
      echo "an older version answered after the last one had"; streak=0; fi
  done
  wait "$WRK"; WRK=""
  echo "== $name: $REPLACEMENTS replacements every ${INTERVAL}s under wrk -c$CONNS"
  grep -E '^(bodies|requests)' "$OUT/$name.wrk"
  echo "last version answers $waited s after the last replacement (first fresh connection; 50 more in a row checked)"
  echo "RSS after the first replacement $rss_first KiB, after the last $(rss_kib) KiB"
  echo "log: $(grep -c 'plugin replaced' "$OUT/$name.log") replaced, $(grep -c 'plugin refused' "$OUT/$name.log") refused, $(grep -cE 'ERROR|panicked' "$OUT/$name.log") errors"
  kill -TERM "$SERVER"; wait "$SERVER" || true; SERVER=""
  rm -rf "$DIR"
}

run plain
run mixed
run distinct

#!/usr/bin/env bash
# plugd + the WSGI plugin side by side with gunicorn (sync and gthread workers) and Granian (WSGI mode),
# serving the same applications from one interpreter, Debian's /usr/bin/python3.
#
# usage: bench/wsgi.sh [-d SECS] [-n TRIALS] [-c CONNS] [-s SCENARIOS] [-b DIR]
#   Scenarios: the Flask application of tests/wsgi/flask_app.py (GET / and GET /json) and a bare WSGI
#   callable (bench/wsgi/raw_app.py, the same two answers without a framework); -s picks some, as a comma
#   list of flask:/ flask:/json raw:/ raw:/json (default all four). For each scenario, trials are
#   interleaved (plugd, plugd-2p, gunicorn-sync, gunicorn-gthread, granian, granian-1w, plugd, ...), wrk
#   -t1 -cCONNS --latency on 127.0.0.1; printed per server: median req/s, ratio to plugd, server CPU µs per
#   request (user+sys of the process group during the trial / requests), median p99, and the memory of the
#   whole process group at the end of the trial: RSS summed over its processes, and PSS (pages shared
#   between processes, as forked workers share theirs, split among them), then errors.
#   Worker counts (the machine has 2 cores, shared with wrk): plugd its default worker threads (4 on 2
#   cores, more while they wait), one interpreter, the plugin's default `threads = 8` (the most requests in
#   Python at once); plugd-2p two such plugd processes sharing the port with --reuse-port (two
#   interpreters, one per core, as gunicorn's and Granian's 2 workers); gunicorn sync 2 workers; gunicorn
#   gthread 2 workers x 4 threads; granian 2 workers (its other settings default); granian-1w 1 worker: one
#   interpreter, as in plugd (the like-for-like comparison of one GIL each).
#   -b DIR: an older build joins as `plugd-base` (DIR/plugd and DIR/plugins/libwsgi.so, e.g. copied from
#   `git worktree add` at the old commit and `cargo build --release -p plugd -p wsgi`): before/after in one run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=5 TRIALS=3 CONNS=64 SCENARIOS=flask:/,flask:/json,raw:/,raw:/json BASE=""
while getopts d:n:c:s:b: opt; do
  case $opt in
    d) DURATION=$OPTARG ;; n) TRIALS=$OPTARG ;; c) CONNS=$OPTARG ;; s) SCENARIOS=$OPTARG ;;
    b) BASE=$(cd "$OPTARG" && pwd) ;;
    *) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 2 ;;
  esac
done
PYTHON=/usr/bin/python3
WORK=/tmp/plugd-wsgi-bench
SITE=${BENCH_PY:-$WORK/site}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$WORK"
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }

(cd "$ROOT" && cargo build --release -p plugd -p wsgi)
if ! cmp -s "$ROOT/bench/wsgi/requirements.txt" "$SITE/.requirements.txt"; then
  rm -rf "$SITE"
  $PYTHON -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --target "$SITE" -r "$ROOT/bench/wsgi/requirements.txt"
  cp "$ROOT/bench/wsgi/requirements.txt" "$SITE/.requirements.txt"
fi
PLUGINS=$WORK/plugins
mkdir -p "$PLUGINS"
cp "$TARGET/release/libwsgi.so" "$PLUGINS/.libwsgi.so.tmp" && mv "$PLUGINS/.libwsgi.so.tmp" "$PLUGINS/libwsgi.so"
APPS="$ROOT/tests/wsgi:$ROOT/bench/wsgi"

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill -- -"$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# start NAME PORT MODULE:CALLABLE -> starts the server in its own process group, sets SERVER_PID
start() {
  local name=$1 port=$2 app=$3 processes=1
  case $name in
    plugd|plugd-base|plugd-2p)
      local build=$TARGET/release plugins=$PLUGINS flags=()
      [[ $name == plugd-base ]] && build=$BASE plugins=$BASE/plugins
      [[ $name == plugd-2p ]] && processes=2 flags=(--reuse-port)
      printf '[plugins.wsgi]\napp = "%s"\npython_path = ["%s", "%s", "%s"]\n' \
        "$app" "$ROOT/tests/wsgi" "$ROOT/bench/wsgi" "$SITE" > "$WORK/plugd.toml"
      # N copies in one process group (one copy: exec'd, no shell left in the group).
      setsid bash -c 'n=$1; shift; [[ $n == 1 ]] && exec "$@"; for _ in $(seq "$n"); do "$@" & done; wait' \
        plugd-group "$processes" env RUST_LOG=warn "$build/plugd" "${flags[@]}" --port "$port" \
        --plugin-dir "$plugins" --config "$WORK/plugd.toml" --access-log off --static-dir "$WORK" \
        &> "$WORK/$name.log" & ;;
    gunicorn-sync)
      setsid env PYTHONPATH="$APPS:$SITE" $PYTHON -m gunicorn --workers 2 --worker-class sync \
        --bind "127.0.0.1:$port" --log-level warning "$app" &> "$WORK/$name.log" & ;;
    gunicorn-gthread)
      setsid env PYTHONPATH="$APPS:$SITE" $PYTHON -m gunicorn --workers 2 --worker-class gthread --threads 4 \
        --bind "127.0.0.1:$port" --log-level warning "$app" &> "$WORK/$name.log" & ;;
    granian|granian-1w)
      local workers=2
      [[ $name == granian-1w ]] && workers=1
      setsid env PYTHONPATH="$APPS:$SITE" $PYTHON -m granian --interface wsgi --workers "$workers" \
        --host 127.0.0.1 --port "$port" --log-level warning "$app" &> "$WORK/$name.log" & ;;
  esac
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 100); do
    # Every process of the group listening (plugd-2p: two sockets on the port), and answering.
    (( $(ss -Hltn "sport = :$port" | wc -l) >= processes )) &&
      curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$name did not start; its log:" >&2; cat "$WORK/$name.log" 2>/dev/null >&2; exit 1
}

# CPU ticks (user+sys, every thread) of the processes in process group $1. /proc/PID/stat after the command
# name: $1 state, $3 process group, $12 utime, $13 stime.
group_ticks() {
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | sed 's/^.*) //' |
    awk -v g="$1" '$3 == g {t += $12 + $13} END {print t + 0}'
}

# The processes of process group $1, one PID a line.
group_pids() {
  { grep -H '' /proc/[0-9]*/stat 2>/dev/null || true; } |
    sed 's|^/proc/\([0-9]*\)/stat:.*) |\1 |' | awk -v g="$1" '$4 == g {print $1}'
}

# "RSS PSS" in MB, summed over the processes of process group $1 (/proc/PID/smaps_rollup).
group_memory_mb() {
  local pid rollups=()
  for pid in $(group_pids "$1"); do rollups+=("/proc/$pid/smaps_rollup"); done
  (( ${#rollups[@]} )) || { echo "nan nan"; return; }
  awk '$1 == "Rss:" {r += $2} $1 == "Pss:" {p += $2} END {printf "%.1f %.1f", r / 1024, p / 1024}' \
    "${rollups[@]}" 2>/dev/null || true
}

SERVERS=(plugd plugd-2p)
[[ -n $BASE ]] && SERVERS+=(plugd-base)
SERVERS+=(gunicorn-sync gunicorn-gthread granian granian-1w)
HZ=$(getconf CLK_TCK)
RESULTS=$WORK/results.tsv
: > "$RESULTS"
PORT=29080
for scenario in ${SCENARIOS//,/ }; do
  app=${scenario%%:*} path=${scenario#*:}
  [[ $app == flask ]] && spec=flask_app:app || spec=raw_app:app
  for trial in $(seq "$TRIALS"); do
    for server in "${SERVERS[@]}"; do
      PORT=$((PORT + 1))
      start "$server" "$PORT" "$spec"
      wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$PORT$path" >/dev/null  # warm-up
      before=$(group_ticks "$SERVER_PID")
      out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$PORT$path")
      after=$(group_ticks "$SERVER_PID")
      read -r rss pss <<< "$(group_memory_mb "$SERVER_PID")"
      requests=$(awk '/requests in/ {print $1}' <<< "$out")
      rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
      p99=$(awk '$1 == "99%" {print $2}' <<< "$out")
      errors=$(awk '/Socket errors|Non-2xx/ {printf "%s ", $0}' <<< "$out")
      cpu_us=$(awk -v t=$((after - before)) -v hz="$HZ" -v n="$requests" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$app $path" "$server" "$trial" "$rps" "$cpu_us" "$p99" \
        "${rss:-nan}" "${pss:-nan}" "${errors:-0}" >> "$RESULTS"
      printf '%-12s %-17s trial %s: %10s req/s  %7s µs CPU/req  p99 %8s  RSS %6s MB  PSS %6s MB  %s\n' \
        "$app $path" "$server" "$trial" "$rps" "$cpu_us" "$p99" "$rss" "$pss" "${errors:-}"
      kill -- -"$SERVER_PID" 2>/dev/null || true
      wait "$SERVER_PID" 2>/dev/null || true
      # plugd-2p's shell is gone at once; its plugd processes may still be draining.
      for _ in $(seq 150); do [[ -z $(group_pids "$SERVER_PID") ]] && break; sleep 0.1; done
    done
  done
done

echo
$PYTHON - "$RESULTS" <<'PY'
import statistics, sys
from collections import defaultdict
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
def seconds(p99):
    units = {"us": 1e-6, "ms": 1e-3, "s": 1}
    for unit in ("us", "ms", "s"):
        if p99.endswith(unit):
            return float(p99[: -len(unit)]) * units[unit]
    return float("nan")
by = defaultdict(list)
for scenario, server, _trial, rps, cpu, p99, rss, pss, errors in rows:
    by[(scenario, server)].append((float(rps), float(cpu), seconds(p99), float(rss), float(pss), errors))
scenarios = list(dict.fromkeys(r[0] for r in rows))
servers = list(dict.fromkeys(r[1] for r in rows))
print(f"{'scenario':<12} {'server':<17} {'req/s':>10} {'ratio':>6} {'CPU µs/req':>10} {'p99':>9} "
      f"{'RSS MB':>7} {'PSS MB':>7}  errors")
for scenario in scenarios:
    base = statistics.median(r[0] for r in by[(scenario, servers[0])])
    for server in servers:
        trials = by[(scenario, server)]
        rps = statistics.median(t[0] for t in trials)
        cpu = statistics.median(t[1] for t in trials)
        p99 = statistics.median(t[2] for t in trials)
        rss = statistics.median(t[3] for t in trials)
        pss = statistics.median(t[4] for t in trials)
        errors = "; ".join(sorted({t[5] for t in trials if t[5] != "0"})) or "0"
        print(f"{scenario:<12} {server:<17} {rps:>10,.0f} {rps / base:>5.2f}x {cpu:>10.1f} {p99 * 1e3:>7.2f}ms "
              f"{rss:>7.1f} {pss:>7.1f}  {errors}")
PY

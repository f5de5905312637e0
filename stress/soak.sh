#!/usr/bin/env bash
# Soak: wrk at saturation against a release plugd with the example plugins, with a mix of keep-alive,
# pipelined, `Connection: close`, static-file and plugin (POST /echo) traffic, while another client resets
# connections mid-request. Bounded: default 5 minutes of load, then a few seconds of checks.
#
#   bash stress/soak.sh                  # 5 minutes
#   bash stress/soak.sh --duration 30    # seconds
#
# Pass (exit 0): zero server errors (no 5xx in wrk's counts or plugd's log, no panic), RSS growth under 10%
# between the end of the warm-up and the end of the load, and plugd's fd count back to its baseline after the
# load. Only 127.0.0.1 is targeted; everything started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

duration=300
build=1
while (($#)); do
    case "$1" in
        --duration) duration=$2; shift 2 ;;
        --duration=*) duration=${1#*=}; shift ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ $duration =~ ^[0-9]+$ ]] && ((duration >= 10 && duration <= 3600)) || {
    echo "--duration takes 10 to 3600 seconds" >&2
    exit 2
}
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 2; }
others=$(pgrep -x wrk || true)
[[ -z $others ]] || echo "warning: other wrk processes are running ($others): figures will be shared with them"

if ((build)); then
    cargo build --release -q -p plugd -p hello -p echo -p counter
fi
work=$(mktemp -d /tmp/plugd-soak.XXXXXX)
pids=()
plugd_pid=
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [[ -n $plugd_pid ]] && kill -0 "$plugd_pid" 2>/dev/null; then
        kill -TERM "$plugd_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$plugd_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$plugd_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/plugins"
cp -r static "$work/static"
head -c $((256 * 1024)) /dev/urandom > "$work/static/medium.bin"
for p in hello echo counter; do cp "target/release/lib$p.so" "$work/plugins/"; done
# No access log: at saturation it would write gigabytes; plugd logs every 5xx at warn level anyway.
RUST_LOG_STYLE=never target/release/plugd --host 127.0.0.1 --port 0 --access-log off \
    --plugin-dir "$work/plugins" --static-dir "$work/static" --max-connections 4096 \
    >"$work/plugd.log" 2>&1 &
plugd_pid=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/plugd.log" | head -1)
    [[ -n $port ]] && break
    sleep 0.1
done
[[ -n $port ]] || { echo "plugd did not start:"; cat "$work/plugd.log"; exit 1; }
base="http://127.0.0.1:$port"

fds() { ls "/proc/$plugd_pid/fd" | wc -l; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$plugd_pid/status"; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$plugd_pid/status"; }

curl -sf "$base/plaintext" >/dev/null
sleep 0.5
fd0=$(fds); rss0=$(rss); threads0=$(threads)
echo "plugd pid $plugd_pid on $base; baseline: fds $fd0, threads $threads0, rss ${rss0} KiB; load ${duration}s"

d="${duration}s"
wrk -t1 -c32 -d"$d" --latency "$base/plaintext" >"$work/wrk-keepalive.txt" 2>&1 & pids+=($!)
DEPTH=16 wrk -t1 -c8 -d"$d" -s stress/pipeline.lua "$base/plaintext" >"$work/wrk-pipelined.txt" 2>&1 & pids+=($!)
wrk -t1 -c8 -d"$d" -H "Connection: close" "$base/hello/soak" >"$work/wrk-close.txt" 2>&1 & pids+=($!)
wrk -t1 -c8 -d"$d" "$base/static/test.html" >"$work/wrk-static.txt" 2>&1 & pids+=($!)
wrk -t1 -c4 -d"$d" "$base/static/medium.bin" >"$work/wrk-static-256k.txt" 2>&1 & pids+=($!)
wrk -t1 -c8 -d"$d" -s stress/post.lua "$base/echo" >"$work/wrk-echo.txt" 2>&1 & pids+=($!)
python3 stress/reset_client.py "$port" "$duration" >"$work/resets.txt" 2>&1 & pids+=($!)

# RSS after the warm-up (a tenth of the run, at most 30 s): buffers touched by the first burst are not growth.
warm=$((duration / 10)); ((warm > 30)) && warm=30
sleep "$warm"
rss_warm=$(rss); fd_peak=$(fds)
echo "after ${warm}s warm-up: rss ${rss_warm} KiB, fds $fd_peak, threads $(threads)"
elapsed=$warm
while ((elapsed + 30 < duration)); do
    sleep 30; elapsed=$((elapsed + 30))
    echo "t=${elapsed}s: rss $(rss) KiB, fds $(fds), threads $(threads)"
done
sleep $((duration - elapsed - 1)) 2>/dev/null || true
rss_end=$(rss)
echo "t=$((duration - 1))s (end of load): rss ${rss_end} KiB, fds $(fds)"
for pid in "${pids[@]}"; do wait "$pid" || true; done
pids=()

# The fd count must come back: wrk closes its connections on exit, reset ones are already gone.
fd_end=$(fds)
for _ in $(seq 50); do
    fd_end=$(fds)
    ((fd_end <= fd0)) && break
    sleep 0.2
done
threads_end=$(threads)

echo
echo "== wrk"
total_non2xx=0
total_requests=0
for f in keepalive pipelined close static static-256k echo; do
    out="$work/wrk-$f.txt"
    reqs=$(awk '/requests in/ {print $1}' "$out")
    rps=$(awk '/^Requests\/sec/ {print $2}' "$out")
    non2xx=$(awk -F: '/Non-2xx/ {gsub(/ /, "", $2); print $2}' "$out")
    errors=$(grep -m1 "Socket errors" "$out" | sed 's/^ *//' || true)
    p99=$(awk '/^ +99%/ {print $2}' "$out")
    printf '%-12s %10s requests %10s req/s  non-2xx %s  %s%s\n' "$f" "${reqs:-?}" "${rps:-?}" "${non2xx:-0}" \
        "${p99:+p99 $p99  }" "${errors:-no socket errors}"
    total_non2xx=$((total_non2xx + ${non2xx:-0}))
    total_requests=$((total_requests + ${reqs:-0}))
done
cat "$work/resets.txt"
server_5xx=$(grep -c "answered 5" "$work/plugd.log" || true)
panics=$(grep -c "panicked" "$work/plugd.log" || true)
growth=$(awk -v a="$rss_warm" -v b="$rss_end" 'BEGIN {printf "%.1f", (b - a) * 100 / a}')

echo
echo "== result"
echo "requests: $total_requests; non-2xx (wrk): $total_non2xx; 5xx in plugd's log: $server_5xx; panics: $panics"
echo "rss: idle ${rss0} KiB, after warm-up ${rss_warm} KiB, end of load ${rss_end} KiB (growth ${growth}%)"
echo "fds: baseline $fd0, peak sample $fd_peak, after load $fd_end; threads: $threads0 -> $threads_end"
fail=0
((total_non2xx == 0)) || { echo "FAIL: non-2xx responses"; fail=1; }
((server_5xx == 0)) || { echo "FAIL: plugd logged 5xx answers"; grep -m5 "answered 5" "$work/plugd.log"; fail=1; }
((panics == 0)) || { echo "FAIL: plugd panicked"; fail=1; }
awk -v g="$growth" 'BEGIN {exit !(g < 10)}' || { echo "FAIL: RSS grew ${growth}%"; fail=1; }
((fd_end <= fd0)) || { echo "FAIL: fds $fd_end > baseline $fd0"; ls -l "/proc/$plugd_pid/fd"; fail=1; }
kill -0 "$plugd_pid" 2>/dev/null || { echo "FAIL: plugd died"; fail=1; }
if ((fail)); then
    echo "plugd log tail:"; tail -20 "$work/plugd.log"
    echo FAIL
    exit 1
fi
echo PASS

#!/usr/bin/env bash
# Streamed responses and uploads at full size (docs/ARCHITECTURE.md §18): the figures tests/streaming.rs
# keeps small.
#
# usage: bench/streaming.sh [-d SECS] [-n CLIENTS]
#   Starts plugd (release) with the example plugins, then:
#   1. GET /bytes/1073741824 read by curl, which reads nothing for the first 3 s (a slow client), then at
#      full speed: bytes received, time, and plugd's highest RSS (sampled every 0.2 s). Target: exactly
#      1 GiB, RSS under 64 MiB.
#   2. POST /upload of 1 GiB with Content-Length, then chunked (curl): the answer's size and sha256
#      against sha256sum, and the highest RSS. Target: right size and digest, RSS under 64 MiB.
#   3. CLIENTS (default 500) concurrent GET /events?every_ms=1000&count=3 (python, one thread, selectors):
#      how many got their 3 events, and plugd's highest thread count and RSS. Target: all, at most 64
#      threads.
#   4. Throughput: wrk -t1 -c16 for SECS (default 5) on GET /bytes/1048576 and GET /static/1m.bin,
#      interleaved 3 times: requests/s of each and their ratio.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
DUR=5 CLIENTS=500
while [[ $# -gt 0 ]]; do
  case $1 in
    -d) DUR=$2; shift 2 ;;  -n) CLIENTS=$2; shift 2 ;;
    *) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 2 ;;
  esac
done

build_plugd
(cd "$ROOT" && cargo build --release -p stream)
ensure_harness
PLUGIN_DIR=$(make_plugin_dir "$TARGET/release/libstream.so")
OUT=$(mktemp -d "${TMPDIR:-/tmp}/plugd-streaming.XXXXXX")
PORT=${PORT:-28991}
URL=http://127.0.0.1:$PORT
SERVER="" SAMPLER=""
cleanup() {
  [[ -n $SAMPLER ]] && kill "$SAMPLER" 2>/dev/null
  [[ -n $SERVER ]] && kill -TERM "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  rm -rf "$PLUGIN_DIR" "$OUT"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true

RUST_LOG=warn "$PLUGD" --port "$PORT" --static-dir "$STATIC" --plugin-dir "$PLUGIN_DIR" --access-log off \
  ${PLUGD_BENCH_ARGS:-} >"$OUT/plugd.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -sf -o /dev/null "$URL/bytes/1" && break; sleep 0.1; done

sample_start() {  # records plugd's RSS (KiB) and threads every 0.2 s into $OUT/samples
  : >"$OUT/samples"
  ( while sleep 0.2; do
      awk '/^VmRSS/{r=$2} /^Threads/{t=$2} END{print r, t}' "/proc/$SERVER/status" >>"$OUT/samples"
    done ) &
  SAMPLER=$!
}
sample_stop() {  # prints "max RSS MiB, max threads"
  kill "$SAMPLER"; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=""
  awk '$1>r{r=$1} $2>t{t=$2} END{printf "max RSS %.1f MiB, max threads %d\n", r/1024, t}' "$OUT/samples"
}

echo "# $(date -Is) plugd pid $SERVER, $(nproc) cores"
echo "## 1. GET /bytes/1073741824, the client reading nothing for 3 s first"
sample_start
python3 - "$PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
s.sendall(b"GET /bytes/1073741824 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
time.sleep(3)
start, got, head = time.time(), 0, b""
while b"\r\n\r\n" not in head:
    head += s.recv(65536)
got = len(head.split(b"\r\n\r\n", 1)[1])
while True:
    n = len(s.recv(1 << 20))
    if n == 0:
        break
    got += n
took = time.time() - start
print(f"body bytes {got} ({'exactly 1 GiB' if got == 1 << 30 else 'WRONG'}), {took:.2f} s, {got / took / 2**20:.0f} MiB/s")
PY
sample_stop

echo "## 2. POST /upload of 1 GiB"
head -c 1073741824 /dev/urandom >"$OUT/upload.bin"
echo "sha256sum: $(sha256sum "$OUT/upload.bin" | cut -c1-64)"
for framing in length chunked; do
  sample_start
  if [[ $framing == length ]]; then
    answer=$(curl -s -T "$OUT/upload.bin" -X POST "$URL/upload" -w ' %{time_total}s')
  else
    answer=$(curl -s -T "$OUT/upload.bin" -X POST -H 'Transfer-Encoding: chunked' "$URL/upload" -w ' %{time_total}s')
  fi
  echo "$framing: $answer; $(sample_stop)"
done
rm -f "$OUT/upload.bin"

echo "## 3. $CLIENTS concurrent GET /events?every_ms=1000&count=3"
sample_start
python3 - "$PORT" "$CLIENTS" <<'PY'
import selectors, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
sel = selectors.DefaultSelector()
data = {}
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /events?every_ms=1000&count=3 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    data[s] = b""
deadline = time.time() + 30
while sel.get_map() and time.time() < deadline:
    for key, _ in sel.select(timeout=1):
        chunk = key.fileobj.recv(65536)
        if chunk:
            data[key.fileobj] += chunk
        else:
            sel.unregister(key.fileobj)
complete = sum(1 for d in data.values() if all(f"data: {i}\n\n".encode() in d for i in (1, 2, 3)) and d.endswith(b"0\r\n\r\n"))
print(f"{complete} of {n} clients received their 3 events")
PY
sample_stop

echo "## 4. throughput, wrk -t1 -c16 -d${DUR}s, interleaved x3"
for i in 1 2 3; do
  for path in /bytes/1048576 /static/1m.bin; do
    rps=$(wrk -t1 -c16 -d"${DUR}s" "$URL$path" 2>&1 | awk '/Requests\/sec:/{print $2}')
    echo "$i $path $rps" | tee -a "$OUT/rps"
  done
done
awk '{s[$2]+=$3} END{b=s["/bytes/1048576"]/3; f=s["/static/1m.bin"]/3;
  printf "mean req/s: /bytes/1048576 %.0f, /static/1m.bin %.0f, ratio %.2f\n", b, f, b/f}' "$OUT/rps"

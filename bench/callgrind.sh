#!/usr/bin/env bash
# User-space instructions per request, counted by callgrind: exact and repeatable where timings are not.
#
# usage: bench/callgrind.sh [-n N] [--path PATH] [--body BYTES] [--depth D] [TARGET...]
#   Each TARGET runs twice under `valgrind --tool=callgrind`: once serving N keep-alive requests from one
#   connection (bench/requests.py: wrk's request bytes, each sent when the previous answer is read, or D
#   at a time pipelined), once serving 2N; (instructions(2N) - instructions(N)) / N is the cost of one
#   request, with start-up and shutdown cancelled out. Every instruction of the process counts: the
#   server's, the allocator's, the plugin's, libc's.
#   TARGET: plugd (the access log off, as the benchmarks run it), plugd-default (the access log on, to a
#   file), hyper (the harness's hyper peer), or NAME[@PATH]='command' with {port} and {static}
#   placeholders (e.g. an older build, as bench/run.sh takes it). Default: plugd hyper. --path PATH is
#   requested from every target (default: /plaintext from plugd targets, / from hyper, a NAME's own @PATH
#   or /); --body sends POSTs (use --path /echo).
# example:
#   bench/callgrind.sh -n 2000 plugd plugd-default hyper
#   bench/callgrind.sh -n 1000 --path /echo --body 4096 plugd hyper
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

N=2000 PATH_ARG="" BODY=() DEPTH=1 TARGETS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -n) N=$2; shift 2 ;;
    --path) PATH_ARG=$2; shift 2 ;;
    --body) BODY=(--body "$2"); shift 2 ;;
    --depth) DEPTH=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
(( ${#TARGETS[@]} > 0 )) || TARGETS=(plugd hyper)

build_plugd
ensure_harness
PLUGIN_DIR=$(make_plugin_dir)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/plugd-callgrind.XXXXXX")
trap 'rm -rf "$PLUGIN_DIR" "$WORK"' EXIT

# The command line of a target, with {port} and {static} still in it; and the path it serves.
command_of() {
  case $1 in
    plugd) echo "env RUST_LOG=warn $PLUGD --port {port} --static-dir {static} --plugin-dir $PLUGIN_DIR --access-log off" ;;
    plugd-default) echo "env -u RUST_LOG $PLUGD --port {port} --static-dir {static} --plugin-dir $PLUGIN_DIR --access-log $WORK/access.log" ;;
    hyper) echo "$BENCH_WORK/peers-target/release/hyper_peer {port} {static}" ;;
    *=*) echo "${1#*=}" ;;
    *) echo "unknown target $1" >&2; exit 2 ;;
  esac
}
path_of() {
  local name=${1%%=*}
  case $name in
    plugd|plugd-default) echo "${PATH_ARG:-/plaintext}" ;;
    *@*) echo "${PATH_ARG:-${name#*@}}" ;;
    *) echo "${PATH_ARG:-/}" ;;
  esac
}

# Total instructions of one run of `command` serving `count` requests.
instructions() {
  local command=$1 path=$2 count=$3 port out pid
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  command=${command//\{port\}/$port}
  command=${command//\{static\}/$STATIC}
  out=$WORK/callgrind.$count.out
  # --trace-children: a command may start with `env`, whose exec of the server must stay measured.
  # shellcheck disable=SC2086 # the command is split into words on purpose
  valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out" $command >"$WORK/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null && break
    sleep 0.1
  done
  python3 "$ROOT/bench/requests.py" "$port" "$path" "$count" --depth "$DEPTH" "${BODY[@]}"
  # valgrind's own pid is the server's: SIGTERM is a graceful shutdown, and callgrind writes its counts.
  kill -TERM "$pid"
  wait "$pid" || true
  awk '/^totals:/ {print $2; exit}' "$out"
}

printf '%-16s %14s %14s %10s\n' target "Ir($N)" "Ir($((2 * N)))" "Ir/request"
for target in "${TARGETS[@]}"; do
  command=$(command_of "$target")
  path=$(path_of "$target")
  one=$(instructions "$command" "$path" "$N")
  two=$(instructions "$command" "$path" $((2 * N)))
  name=${target%%=*}
  printf '%-16s %14s %14s %10s\n' "${name%%@*}" "$one" "$two" $(((two - one) / N))
done

# Shared by bench/*.sh: where things are, building plugd and its plugins, the harness's setup.
# shellcheck shell=bash
HARNESS=${PLUGD_BENCH_HARNESS:-$ROOT/../shared/bench}
[[ -x $HARNESS/run.sh ]] || { echo "no harness at $HARNESS (set PLUGD_BENCH_HARNESS)" >&2; exit 1; }
HARNESS=$(cd "$HARNESS" && pwd)
export BENCH_WORK=${BENCH_WORK:-/tmp/plugd-bench}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PLUGD=$TARGET/release/plugd
STATIC=$BENCH_WORK/static

build_plugd() {  # plugd and the example plugins, release profile
  (cd "$ROOT" && cargo build --release -p plugd -p hello -p echo -p counter)
}

build_fixture() {  # bench/NAME crate (its own workspace) -> built into $TARGET, same release profile
  (cd "$ROOT/bench/$1" && CARGO_TARGET_DIR=$TARGET cargo build --release)
}

ensure_harness() {  # wrk, nginx, the peers and the static files, as the harness's setup.sh makes them
  if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null ||
     [[ ! -x $BENCH_WORK/peers-target/release/hyper_peer ]]; then
    echo "harness not set up: running $HARNESS/setup.sh"
    "$HARNESS/setup.sh"
  fi
  python3 "$HARNESS/gen_static.py" "$STATIC" >/dev/null
}

make_plugin_dir() {  # a fresh plugin folder with the example plugins (+ extra .so paths given); prints it
  local dir f
  dir=$(mktemp -d "${TMPDIR:-/tmp}/plugd-bench-plugins.XXXXXX")
  for f in "$TARGET"/release/lib{hello,echo,counter}.so "$@"; do
    # write-then-rename: a loaded .so must never be overwritten in place (docs/ARCHITECTURE.md §8.6)
    cp "$f" "$dir/.$(basename "$f").tmp" && mv "$dir/.$(basename "$f").tmp" "$dir/$(basename "$f")"
  done
  echo "$dir"
}

#!/usr/bin/env bash
# The cost of the plugin boundary: the same engine answering Hello, World! from the hello plugin
# (GET /plaintext) and from an in-process built-in route (GET /builtin), in one interleaved harness run.
#
# usage: bench/plugin-vs-builtin.sh [HARNESS OPTIONS]   (default: --only plaintext,pipeline16)
#   Builds bench/builtin (plugd's start-up plus the built-in route) and starts it twice: target `plugin`
#   is measured on /plaintext, target `builtin` on /builtin. Expected: plugin within 3%
#   (docs/ARCHITECTURE.md §8.1).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
OPTS=("$@")
(( ${#OPTS[@]} > 0 )) || OPTS=(--only plaintext,pipeline16)

build_plugd
build_fixture builtin
ensure_harness
PLUGIN_DIR=$(make_plugin_dir)
trap 'rm -rf "$PLUGIN_DIR"' EXIT
CMD="env RUST_LOG=warn $TARGET/release/plugd-bench-builtin --port {port} --static-dir {static} --plugin-dir $PLUGIN_DIR"
"$HARNESS/run.sh" "${OPTS[@]}" "plugin@/plaintext=$CMD" "builtin@/builtin=$CMD"

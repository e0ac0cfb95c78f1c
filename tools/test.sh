#!/usr/bin/env bash
# Builds libenn and runs the whole test suite on lavapipe with the validation layer on.
#   tools/test.sh            the normal build
#   tools/test.sh --sanitize the same suite under AddressSanitizer + UBSan (build-asan/)
# ENN_TEST_DEVICE=<name or index> runs the suite on another device (e.g. a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
args=()
if [ "${1:-}" = "--sanitize" ]; then
  build=build-asan
  args=(-DENN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
fi
bash tools/setup.sh "$build" "${args[@]}"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
if [ "$build" = build-asan ]; then
  # The Vulkan loader and drivers are not built with ASan: leaks inside them are not ours.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
cd "$build"
ctest --output-on-failure -j 1 --timeout 1200

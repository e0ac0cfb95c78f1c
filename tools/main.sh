#!/usr/bin/env bash
# The main job: builds libenn (installing what is missing) and runs it on the best
# Vulkan device (lavapipe when there is no GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh build
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
./build/tools/enn devices
./build/tools/enn smoke

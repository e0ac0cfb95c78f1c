#!/usr/bin/env bash
# The main job: installs what is missing (Debian packages, Fashion-MNIST included), builds
# the `enn` command, trains an ENN classifier on Fashion-MNIST on the best Vulkan device
# (lavapipe when there is no GPU) and prints its test accuracy.
#   bash tools/main.sh           the quick subset (enn train --quick): the first 20,000
#                                training images (2,000 of them held out for validation),
#                                2 epochs, the full 10,000-image test set
#   bash tools/main.sh --full    the paper's protocol on all 60,000 images (up to 50 epochs,
#                                early stopping); add --paper for the reference package's
#                                last-state pooling
# Any flags are passed to `enn train` (see `build/tools/enn train --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
ENN_BUILD_TARGET=enn bash tools/setup.sh build
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
args=("$@")
[ $# -gt 0 ] || args=(--quick)
# The main job starts afresh each time (--overwrite), unless asked to --resume.
fresh=(--overwrite)
for a in "${args[@]}"; do [ "$a" = --resume ] && fresh=(); done
./build/tools/enn train --data fashion-mnist --out runs/fashion-mnist "${fresh[@]}" "${args[@]}"

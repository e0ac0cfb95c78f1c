#!/usr/bin/env bash
# Installs the Debian packages libenn needs (only those missing) and builds it.
#   tools/setup.sh [build-dir] [extra cmake args...]
# ENN_BUILD_TARGET=<target> builds only that target (tools/main.sh: the enn command).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config libvulkan-dev mesa-vulkan-drivers glslang-tools spirv-tools
          vulkan-validationlayers vulkan-tools libcriterion-dev zlib1g-dev libopenblas-dev libjansson-dev
          libzip-dev                       # .npz files (Keras's mnist.npz)
          libunistring-dev                 # Unicode lower-casing and spaces of token text
          python3-numpy
          libcairo2-dev fonts-dejavu-core  # the trace monitor's pictures (tools/enn/plots.c)
          libpng-dev                       # tests/test_trace_monitor.c reads them back
          libopenmpi-dev openmpi-bin       # data-parallel `enn train` under mpirun (tools/enn/parallel.c)
          dataset-fashion-mnist) # real IDX files for tests/test_data_idx.c (/usr/share/datasets/fashion-mnist)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build=${1:-build}
shift || true
if [ ! -f "$build/CMakeCache.txt" ] || [ $# -gt 0 ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
fi
cmake --build "$build" -j "$(nproc)" ${ENN_BUILD_TARGET:+--target "$ENN_BUILD_TARGET"}

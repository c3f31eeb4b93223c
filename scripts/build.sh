#!/usr/bin/env bash
# Configures and builds meshtrain into ./build (or $MESHTRAIN_BUILD_DIR).
# CUDA is built when nvcc is found (MESHTRAIN_CUDA=AUTO); set MESHTRAIN_CUDA=OFF to skip.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${MESHTRAIN_BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DMESHTRAIN_CUDA="${MESHTRAIN_CUDA:-AUTO}" >/dev/null
ninja -C "$build_dir" "$@"

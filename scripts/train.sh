#!/usr/bin/env bash
# The main job on a fresh machine: installs what it needs, builds, and trains the
# reference job (Fashion-MNIST MLP, configs/fashion_mnist_mlp.json) on a local
# cluster of two workers under MultiWorkerMirrored. Extra arguments go to
# `meshtrain launch` (e.g. --epochs 3, --strategy parameter_server --ps 1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh meshtrain
build_dir="${MESHTRAIN_BUILD_DIR:-build}"
model_dir="${MODEL_DIR:-/tmp/meshtrain-fashion-mnist}"
exec "$build_dir/launcher/meshtrain" launch --workers 2 --strategy multi_worker_mirrored \
  --config configs/fashion_mnist_mlp.json --model-dir "$model_dir" "$@"

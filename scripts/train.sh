#!/usr/bin/env bash
# The main job on a fresh machine: installs what it needs, builds, and trains the
# reference job (Fashion-MNIST MLP) on a local cluster of two workers.
# Extra arguments go to `meshtrain launch` (e.g. --epochs 3).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh meshtrain
build_dir="${MESHTRAIN_BUILD_DIR:-build}"
model_dir="${MODEL_DIR:-/tmp/meshtrain-fashion-mnist}"
exec "$build_dir/launcher/meshtrain" train --config configs/fashion_mnist_mlp.json \
  --model-dir "$model_dir" "$@"

#!/usr/bin/env bash
# GPU figures for docs/benchmarks.md, on a machine with an NVIDIA GPU and
# PyTorch with CUDA:
#   1. the reference job (10 epochs) on gpu:0, RUNS times: samples/s and test
#      accuracy from summary.json, median reported;
#   2. the same in PyTorch eager on the same GPU (scripts/torch_mlp_gpu.py),
#      with batches copied from pinned host memory (as meshtrain does) and with
#      the training set resident on the GPU;
#   3. Mirrored on two logical GPUs of gpu:0 (--logical-gpus 2);
#   4. NCCL AllReduce bus bandwidth over the visible GPUs at the allreduce
#      benchmark's sizes (tests/bench/nccl_allreduce_bench; one GPU gives
#      busbw 0 by definition and says so).
# Usage: scripts/bench-gpu.sh [RUNS]   (PYTHON=... picks the interpreter with torch)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
build_dir="${MESHTRAIN_BUILD_DIR:-build}"
python="${PYTHON:-python3}"
bin="$build_dir/launcher/meshtrain"
bench="$build_dir/tests/bench/nccl_allreduce_bench"
config=configs/fashion_mnist_mlp.json
if [[ ! -x "$bin" || ! -x "$bench" ]]; then
  cmake -S . -B "$build_dir" -G Ninja -DMESHTRAIN_CUDA=ON >/dev/null
  ninja -C "$build_dir" meshtrain nccl_allreduce_bench
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

gpu_name="$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>/dev/null || echo unknown)"
echo "GPU: $gpu_name; driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader -i 0 2>/dev/null || echo ?)"

# Median of the numbers on stdin.
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
field() { "$python" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

run_meshtrain() {  # label, extra flags...
  local label="$1"; shift
  local dir="$tmp/$(printf '%s' "$label" | tr -c 'A-Za-z0-9' '_')"
  for i in $(seq "$runs"); do
    "$bin" train --config "$config" --model-dir "$dir.$i" --quiet "$@" >/dev/null
  done
  local sps acc
  sps="$(for i in $(seq "$runs"); do field "$dir.$i/summary.json" samples_per_sec; done | median)"
  acc="$(for i in $(seq "$runs"); do field "$dir.$i/summary.json" test_accuracy; done | median)"
  printf '%-44s %12.0f %10.4f\n' "$label" "$sps" "$acc"
}

run_torch() {  # inputs
  for i in $(seq "$runs"); do
    "$python" scripts/torch_mlp_gpu.py --inputs "$1" > "$tmp/torch.$1.$i.json"
  done
  local sps acc
  sps="$(for i in $(seq "$runs"); do field "$tmp/torch.$1.$i.json" samples_per_sec; done | median)"
  acc="$(for i in $(seq "$runs"); do field "$tmp/torch.$1.$i.json" test_accuracy; done | median)"
  printf '%-44s %12.0f %10.4f\n' "PyTorch eager, inputs from $1" "$sps" "$acc"
}

echo
echo "reference job, 10 epochs, median of $runs runs"
printf '%-44s %12s %10s\n' "setup" "samples/s" "test acc"
run_meshtrain "meshtrain one_device gpu:0" --devices gpu:0
run_torch host
run_torch device
run_meshtrain "meshtrain mirrored, 2 logical GPUs on gpu:0" --strategy mirrored \
  --devices gpu:0,gpu:1 --logical-gpus 2

echo
"$bench" --min-time 2

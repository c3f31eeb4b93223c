#!/usr/bin/env bash
# Installs meshtrain's build, test and benchmark dependencies from Debian's
# packages. Idempotent: packages already present are not touched, and apt is not
# asked anything when nothing is missing. CUDA is not installed here (it comes
# from NVIDIA's toolkit under /usr/local/cuda where present; the build detects it).
#
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --peers    also the peers benchmarks compare with (PyTorch)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache git python3 clang
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev nlohmann-json3-dev libopenblas-dev libdnnl-dev zlib1g-dev libssl-dev
  openmpi-bin libopenmpi-dev
  libgtest-dev libgmock-dev
  dataset-fashion-mnist python3-numpy python3-yaml
  iproute2 util-linux
  slurm-wlm munge
  chromium
)
if [[ "${1:-}" == "--peers" ]]; then
  packages+=(python3-torch iperf3)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"

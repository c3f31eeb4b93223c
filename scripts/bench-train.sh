#!/usr/bin/env bash
# The reference job's samples/s, meshtrain beside PyTorch with the same cores,
# printed as ratios (scripts/bench_train.py explains the pairs). Installs and
# builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --peers
scripts/build.sh meshtrain
exec python3 scripts/bench_train.py "$@"

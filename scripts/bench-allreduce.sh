#!/usr/bin/env bash
# AllReduce busbw of meshtrain beside torch gloo and Open MPI, printed as ratios
# (scripts/bench_allreduce.py explains the method). Installs and builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --peers
scripts/build.sh meshtrain
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
exec python3 scripts/bench_allreduce.py "$@"

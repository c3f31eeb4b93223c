#!/usr/bin/env bash
# 16 bits on the wire against float32: allreduce busbw per data path and the
# reference job's samples/s and accuracy (scripts/bench_wire_dtype.py explains
# the method). Builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh meshtrain
exec python3 scripts/bench_wire_dtype.py "$@"

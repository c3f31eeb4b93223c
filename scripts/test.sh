#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, builds, runs
# every test (unit, integration; gpu tests skip themselves without a GPU).
#   scripts/test.sh                 everything
#   scripts/test.sh -L unit         only one label (any ctest arguments pass through)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build_dir="${MESHTRAIN_BUILD_DIR:-build}"
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" "$@"

#!/usr/bin/env bash
# Elastic training's costs: kill -> training on N-1 workers, grow-back -> N,
# steps lost (scripts/bench_elastic.py explains them). Installs and builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh meshtrain
exec python3 scripts/bench_elastic.py "$@"

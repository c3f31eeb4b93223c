#!/usr/bin/env bash
# The cost model: measures each link's latency and per-byte cost and the
# reference job's compute on this machine, predicts samples/s per strategy and
# wire dtype, checks the predictions against runs on emulated hosts, and prints
# the predicted scaling on real links (scripts/bench_cost_model.py explains the
# method, scripts/cost_model.py holds the model). Needs root for the namespaces.
# Installs and builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --peers
scripts/build.sh meshtrain
exec python3 scripts/bench_cost_model.py "$@"

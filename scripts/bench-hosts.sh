#!/usr/bin/env bash
# meshtrain across emulated hosts beside PyTorch DDP, torch gloo and iperf3 on the
# same links, printed as ratios (scripts/bench_hosts.py explains the method).
# Needs root for the namespaces. Installs and builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --peers
scripts/build.sh meshtrain
exec python3 scripts/bench_hosts.py "$@"

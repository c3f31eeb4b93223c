#!/usr/bin/env bash
# Runs the fuzz targets of tests/fuzz/ with libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer (docs/security.md, "Fuzzing").
#
#   scripts/fuzz.sh TARGET|all [--seconds N] [--jobs J]
#
# Configures build-fuzz/ with clang (MESHTRAIN_FUZZ=ON: the whole build is
# instrumented), builds the targets, and runs each for N seconds (default 600)
# on a copy of its seed corpus in build-fuzz/fuzz-work/<target>/corpus, so the
# committed corpus does not change. An input running longer than 10 s is a hang
# and fails the run, as does a crash; either way the script says where the
# input is and exits non-zero. The targets run one after another.
# Targets: tf_config job_config checkpoint_manifest safetensors_header
# rpc_requests tcp_frame.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
all_targets=(tf_config job_config checkpoint_manifest safetensors_header rpc_requests tcp_frame)

usage() {
  echo "usage: scripts/fuzz.sh TARGET|all [--seconds N] [--jobs J]" >&2
  echo "targets: ${all_targets[*]}" >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
which="$1"
shift
seconds=600
jobs=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="${2:?}"; shift 2 ;;
    --jobs) jobs="${2:?}"; shift 2 ;;
    *) usage ;;
  esac
done
if [[ "$which" == all ]]; then
  targets=("${all_targets[@]}")
else
  [[ " ${all_targets[*]} " == *" $which "* ]] || usage
  targets=("$which")
fi

for tool in clang clang++; do
  command -v "$tool" >/dev/null || {
    echo "fuzz.sh: $tool not found; scripts/install-deps.sh installs it" >&2
    exit 1
  }
done

build="$root/build-fuzz"
if [[ ! -f "$build/build.ninja" ]]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMESHTRAIN_FUZZ=ON -DMESHTRAIN_CUDA=OFF
fi
ninja -C "$build" -j "$jobs" "${targets[@]/#/fuzz_}"

status=0
for target in "${targets[@]}"; do
  work="$build/fuzz-work/$target"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp "$root/tests/fuzz/corpus/$target/"* "$work/corpus/"
  echo "fuzz.sh: $target for ${seconds}s (log: $work/fuzz.log)"
  # -rss_limit_mb: an input that makes the parser allocate gigabytes is a bug.
  # -max_len: the largest seeds are ~110 KB (nesting-depth cases).
  set +e
  "$build/tests/fuzz/fuzz_$target" "$work/corpus" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=131072 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" >"$work/fuzz.log" 2>&1
  rc=$?
  set -e
  grep -aE "^#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec" \
    "$work/fuzz.log" | sed "s/^/  /" || true
  echo "  corpus: $(ls "$work/corpus" | wc -l) inputs"
  if [[ $rc -ne 0 ]]; then
    status=1
    echo "fuzz.sh: $target FAILED (exit $rc); the input is in:" >&2
    ls "$work/artifacts/" | sed "s|^|  $work/artifacts/|" >&2
    grep -aE "ERROR: |SUMMARY: |check failed|runtime error" "$work/fuzz.log" | head -5 | sed "s/^/  /" >&2
  fi
done
exit $status

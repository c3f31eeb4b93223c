#include "runtime/collective/ring_schedule.h"

#include <algorithm>

#include "runtime/base/check.h"

namespace meshtrain {
namespace {

int Mod(int a, int n) { return ((a % n) + n) % n; }

}  // namespace

int RingSteps(int world_size) { return 2 * (world_size - 1); }

RingStep PlanRingStep(int rank, int world_size, int step) {
  MESHTRAIN_CHECK(world_size >= 1 && rank >= 0 && rank < world_size && step >= 0 &&
                  step < RingSteps(world_size))
      << "rank " << rank << " world size " << world_size << " step " << step;
  const int n = world_size;
  if (step < n - 1) return RingStep{Mod(rank - step, n), Mod(rank - step - 1, n), true};
  const int t = step - (n - 1);
  return RingStep{Mod(rank + 1 - t, n), Mod(rank - t, n), false};
}

ChunkRange RingChunk(size_t length, int num_chunks, int chunk) {
  MESHTRAIN_CHECK(num_chunks >= 1 && chunk >= 0 && chunk < num_chunks)
      << "chunk " << chunk << " of " << num_chunks;
  const size_t units = (length + kChunkAlignElements - 1) / kChunkAlignElements;
  const size_t n = num_chunks, base = units / n, extra = units % n, c = chunk;
  // The extra units go to the last chunks: the very last one is the one cut
  // short by the length, so the sizes stay within one unit of each other.
  auto start = [&](size_t i) {
    size_t extra_before = i > n - extra ? i - (n - extra) : 0;
    return std::min(length, kChunkAlignElements * (i * base + extra_before));
  };
  return ChunkRange{start(c), start(c + 1)};
}

}  // namespace meshtrain

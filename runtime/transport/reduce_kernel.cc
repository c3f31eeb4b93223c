#include "runtime/transport/reduce_kernel.h"

#include <algorithm>
#include <cstring>

#include "runtime/base/vectorize.h"

namespace meshtrain {

MESHTRAIN_VECTORIZED
void AddFloat32(float* __restrict dst, const float* __restrict src, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] += src[i];
}

void SumFloat32(float* dst, absl::Span<const float* const> srcs, size_t n) {
  if (srcs.empty()) return;
  // Blocks that stay in L1: each is summed into `block`, then stored, so dst
  // may be any of the sources.
  constexpr size_t kBlock = 2048;
  alignas(64) float block[kBlock];
  for (size_t begin = 0; begin < n; begin += kBlock) {
    size_t len = std::min(kBlock, n - begin);
    std::memcpy(block, srcs[0] + begin, len * sizeof(float));
    for (size_t s = 1; s < srcs.size(); ++s) AddFloat32(block, srcs[s] + begin, len);
    std::memcpy(dst + begin, block, len * sizeof(float));
  }
}

}  // namespace meshtrain

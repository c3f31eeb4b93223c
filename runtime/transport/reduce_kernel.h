// Reduce kernels: the float32 sums the transports (RecvAction::kAddFloat32) and
// the collectives apply to received bytes. One clone per instruction set
// (AVX-512, AVX2, SSE2), picked when the process starts. Pure functions,
// thread-safe.
#ifndef MESHTRAIN_RUNTIME_TRANSPORT_REDUCE_KERNEL_H_
#define MESHTRAIN_RUNTIME_TRANSPORT_REDUCE_KERNEL_H_

#include <cstddef>

#include "absl/types/span.h"

namespace meshtrain {

// dst[i] += src[i] for i < n. `dst` and `src` must not overlap.
void AddFloat32(float* dst, const float* src, size_t n);

// dst[i] = srcs[0][i] + srcs[1][i] + ... (left to right, so the result depends
// only on the order of `srcs`). `dst` may be any one of the sources (it is
// written block by block after the block's sum is complete). An empty `srcs`
// leaves dst unchanged.
void SumFloat32(float* dst, absl::Span<const float* const> srcs, size_t n);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TRANSPORT_REDUCE_KERNEL_H_

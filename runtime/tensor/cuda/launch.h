// How the CUDA kernels of this folder are launched: blocks of kThreads
// threads, at most kMaxBlocks of them, each thread striding over the grid
// beyond that. Included by .cu files only.
#ifndef MESHTRAIN_RUNTIME_TENSOR_CUDA_LAUNCH_H_
#define MESHTRAIN_RUNTIME_TENSOR_CUDA_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

namespace meshtrain::device_kernels {

inline constexpr int kThreads = 256;
inline constexpr int64_t kMaxBlocks = 4096;

inline int Blocks(int64_t n) {
  return static_cast<int>(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, kMaxBlocks));
}

inline cudaError_t Launched() { return cudaGetLastError(); }

}  // namespace meshtrain::device_kernels

#define MESHTRAIN_GRID_STRIDE(i, n)                                                      \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

#endif  // MESHTRAIN_RUNTIME_TENSOR_CUDA_LAUNCH_H_

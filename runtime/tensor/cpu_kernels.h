// Kernels for a CPU replica: matrix products through OpenBLAS sgemm, element-wise
// work in single-pass loops the compiler vectorises (AVX-512, AVX2 or SSE2,
// chosen when the process starts). Not thread-safe: one object per replica.
#ifndef MESHTRAIN_RUNTIME_TENSOR_CPU_KERNELS_H_
#define MESHTRAIN_RUNTIME_TENSOR_CPU_KERNELS_H_

#include <memory>

#include "runtime/tensor/kernels.h"

namespace meshtrain {

std::unique_ptr<Kernels> CreateCpuKernels(Device device);

// OpenBLAS's thread count is process-wide: the strategy sets it to the cores
// per replica so that replicas computing at once do not oversubscribe the CPU.
void SetBlasThreads(int threads);
int BlasThreads();

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_CPU_KERNELS_H_

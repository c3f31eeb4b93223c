// The CUDA runtime (libcudart), opened on first use instead of linked, so a CPU
// process never maps it (runtime/base/lazy_library.h). cuda_runtime_library.cc
// defines every CUDA runtime function meshtrain calls, and those nvcc's code
// calls to register and launch kernels; each forwards to libcudart, and returns
// cudaErrorInsufficientDriver when it cannot be loaded, which CudaStatus turns
// into LoadCudaRuntime()'s message. Thread-safe.
#ifndef MESHTRAIN_RUNTIME_TENSOR_CUDA_CUDA_RUNTIME_LIBRARY_H_
#define MESHTRAIN_RUNTIME_TENSOR_CUDA_CUDA_RUNTIME_LIBRARY_H_

#include "absl/status/status.h"

namespace meshtrain {

// OK once libcudart is loaded and the kernels of this binary registered with
// it; else kFailedPrecondition naming the file and what to install. The first
// call loads it; every CUDA call does the same.
const absl::Status& LoadCudaRuntime();

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_CUDA_CUDA_RUNTIME_LIBRARY_H_

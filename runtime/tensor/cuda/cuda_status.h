// The one place CUDA runtime and cuBLAS return codes become absl::Status
// (NCCL's are converted in runtime/collective/nccl/nccl_status.h). `what`
// names the operation and the device ("cudaMalloc of 4096 bytes on gpu:1").
// Codes say what to do: out of memory -> kResourceExhausted; no device or a
// driver too old -> kFailedPrecondition; a bad launch or argument (our bug) ->
// kInternal; a device fault (illegal address, ECC) -> kInternal, and the
// context is then unusable; libcublas missing (it is opened on first use) ->
// kFailedPrecondition naming the file and what to install.
// Thread-safe.
#ifndef MESHTRAIN_RUNTIME_TENSOR_CUDA_CUDA_STATUS_H_
#define MESHTRAIN_RUNTIME_TENSOR_CUDA_CUDA_STATUS_H_

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace meshtrain {

absl::Status CudaStatus(cudaError_t error, absl::string_view what);
absl::Status CublasStatus(cublasStatus_t status, absl::string_view what);

}  // namespace meshtrain

// Returns from the enclosing function (absl::Status or StatusOr) when a CUDA
// call fails; `what` is evaluated only then.
#define MESHTRAIN_CUDA_RETURN_IF_ERROR(call, what)                   \
  do {                                                               \
    const cudaError_t meshtrain_cuda_error_ = (call);                \
    if (meshtrain_cuda_error_ != cudaSuccess) {                      \
      return ::meshtrain::CudaStatus(meshtrain_cuda_error_, (what)); \
    }                                                                \
  } while (0)

#endif  // MESHTRAIN_RUNTIME_TENSOR_CUDA_CUDA_STATUS_H_

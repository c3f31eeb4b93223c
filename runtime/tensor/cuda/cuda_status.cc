#include "runtime/tensor/cuda/cuda_status.h"

#include "absl/strings/str_cat.h"
#include "runtime/tensor/cuda/cublas_library.h"

namespace meshtrain {
namespace {

// cuBLAS, opened on first use: when it could not be loaded, that explains
// every error of its calls.
absl::Status Unloaded(const absl::Status& load, absl::string_view what) {
  return absl::FailedPreconditionError(absl::StrCat(what, ": ", load.message()));
}

absl::StatusCode CudaCode(cudaError_t error) {
  switch (error) {
    case cudaErrorMemoryAllocation:
      return absl::StatusCode::kResourceExhausted;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::Status CudaStatus(cudaError_t error, absl::string_view what) {
  if (error == cudaSuccess) return absl::OkStatus();
  std::string message =
      absl::StrCat(what, ": ", cudaGetErrorName(error), " (", cudaGetErrorString(error), ")");
  if (error == cudaErrorMemoryAllocation) {
    absl::StrAppend(
        &message, "; lower the batch size, or --gpu-memory-limit if other processes share the GPU");
  } else if (error == cudaErrorNoDevice) {
    absl::StrAppend(&message, "; check CUDA_VISIBLE_DEVICES and nvidia-smi, or use cpu devices");
  } else if (error == cudaErrorInsufficientDriver || error == cudaErrorSystemDriverMismatch) {
    absl::StrAppend(&message,
                    "; no NVIDIA driver is loaded, or it is older than this build's CUDA runtime");
  } else if (error == cudaErrorNoKernelImageForDevice) {
    absl::StrAppend(&message, "; rebuild with CMAKE_CUDA_ARCHITECTURES for this GPU");
  }
  return absl::Status(CudaCode(error), message);
}

absl::Status CublasStatus(cublasStatus_t status, absl::string_view what) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  if (const absl::Status& load = LoadCublas(); !load.ok()) return Unloaded(load, what);
  const absl::StatusCode code =
      status == CUBLAS_STATUS_ALLOC_FAILED ? absl::StatusCode::kResourceExhausted
      : status == CUBLAS_STATUS_NOT_INITIALIZED || status == CUBLAS_STATUS_ARCH_MISMATCH
          ? absl::StatusCode::kFailedPrecondition
          : absl::StatusCode::kInternal;
  return absl::Status(code, absl::StrCat(what, ": ", cublasGetStatusName(status), " (",
                                         cublasGetStatusString(status), ")"));
}

}  // namespace meshtrain

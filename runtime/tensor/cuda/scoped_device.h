// ScopedCudaDevice: makes a CUDA device current on this thread for a scope and
// restores the previous one after. Every CUDA call that allocates, creates a
// stream or a handle, or launches work runs under one, because the current
// device is per thread and replica, combiner and training threads share
// devices. Failures are returned by status(), not thrown.
#ifndef MESHTRAIN_RUNTIME_TENSOR_CUDA_SCOPED_DEVICE_H_
#define MESHTRAIN_RUNTIME_TENSOR_CUDA_SCOPED_DEVICE_H_

#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/tensor/cuda/cuda_status.h"

namespace meshtrain {

class ScopedCudaDevice {
 public:
  explicit ScopedCudaDevice(int ordinal) {
    cudaError_t error = cudaGetDevice(&previous_);
    if (error == cudaSuccess && previous_ != ordinal) error = cudaSetDevice(ordinal);
    if (error != cudaSuccess) {
      status_ = CudaStatus(error, absl::StrCat("making CUDA device ", ordinal, " current"));
      previous_ = -1;
    }
  }
  ~ScopedCudaDevice() {
    int now = -1;
    if (previous_ >= 0 && cudaGetDevice(&now) == cudaSuccess && now != previous_) {
      (void)cudaSetDevice(previous_);
    }
  }
  ScopedCudaDevice(const ScopedCudaDevice&) = delete;
  ScopedCudaDevice& operator=(const ScopedCudaDevice&) = delete;

  const absl::Status& status() const { return status_; }

 private:
  int previous_ = -1;
  absl::Status status_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_CUDA_SCOPED_DEVICE_H_

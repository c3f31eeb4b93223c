// Kernels for a GPU replica: matrix products through cuBLAS (row-major handled
// by swapping the operands: C = A.B is C^T = B^T.A^T in cuBLAS's column-major
// view), element-wise work in the CUDA kernels of device_kernels.cu,
// convolution and pooling in the direct kernels of conv_kernels.cu, all queued
// on the logical device's compute stream (CudaDevice). Memory comes from the
// device's caching allocator; batches arrive through an InputStager (pinned
// buffers, upload stream).
//
// Errors: kernels run asynchronously, so a failed call records the first error
// (CUDA, cuBLAS, or a bad label or row id found on the device) and
// Synchronize() returns it. Losses are returned synchronously: the loss kernels
// reduce on the device and one small copy brings the sums back.
// Not thread-safe: one object per replica.
#ifndef MESHTRAIN_RUNTIME_TENSOR_CUDA_CUDA_KERNELS_H_
#define MESHTRAIN_RUNTIME_TENSOR_CUDA_CUDA_KERNELS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/tensor/kernels.h"

namespace meshtrain {

// Kernels on logical GPU `device` (gpu:N); kFailedPrecondition where no CUDA
// device is visible or gpu:N lies beyond them (see GpuConfig).
absl::StatusOr<std::unique_ptr<Kernels>> CreateCudaKernels(Device device);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_CUDA_CUDA_KERNELS_H_

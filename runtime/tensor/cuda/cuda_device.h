// CudaDevice: one logical GPU of this process (gpu:N, placed by GpuConfig): its
// CUDA device, its compute stream, its upload stream and its caching
// allocator. All work on a logical device -- every Kernels object's kernels and
// copies, and the collectives on its buffers -- is queued on its one compute
// stream, so its memory is used in one stream order (see CachingAllocator);
// input uploads run on the upload stream and are joined with events.
//
// Devices are created on first use and live until the process exits (tensors
// hold references to their allocators, as host tensors do to CpuAllocator()),
// so they are never destroyed after the CUDA driver has shut down. Streams are
// non-blocking (no implicit synchronisation with the legacy default stream).
// Thread-safe.
#ifndef MESHTRAIN_RUNTIME_TENSOR_CUDA_CUDA_DEVICE_H_
#define MESHTRAIN_RUNTIME_TENSOR_CUDA_CUDA_DEVICE_H_

#include <cuda_runtime_api.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/tensor/cuda/caching_allocator.h"
#include "runtime/tensor/device.h"
#include "runtime/tensor/gpu_config.h"

namespace meshtrain {

class CudaDevice {
 public:
  // The logical device `device` (gpu:N). kFailedPrecondition when no CUDA
  // device is visible or gpu:N lies beyond the visible ones.
  static absl::StatusOr<CudaDevice*> Get(Device device);

  CudaDevice(const CudaDevice&) = delete;
  CudaDevice& operator=(const CudaDevice&) = delete;

  Device device() const { return device_; }
  int ordinal() const { return placement_.physical; }
  const GpuPlacement& placement() const { return placement_; }
  cudaStream_t stream() const { return stream_; }
  cudaStream_t upload_stream() const { return upload_stream_; }
  CachingAllocator& allocator() { return *allocator_; }
  // "gpu:1 (NVIDIA H100 80GB HBM3, CUDA device 0, slice 2 of 2)".
  const std::string& description() const { return description_; }
  // The GPU's marketing name ("NVIDIA H100 80GB HBM3").
  const std::string& gpu_name() const { return gpu_name_; }

 private:
  CudaDevice() = default;
  static absl::StatusOr<std::unique_ptr<CudaDevice>> Create(Device device,
                                                            const GpuPlacement& placement);

  Device device_;
  GpuPlacement placement_;
  cudaStream_t stream_ = nullptr;
  cudaStream_t upload_stream_ = nullptr;
  std::unique_ptr<CachingAllocator> allocator_;
  std::string description_;
  std::string gpu_name_;
};

// The CUDA devices this process sees (after CUDA_VISIBLE_DEVICES), or
// kFailedPrecondition saying why there are none: GPU tests skip with it.
absl::StatusOr<int> VisibleCudaDevices();

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_CUDA_CUDA_DEVICE_H_

#include "runtime/tensor/cuda/cuda_device.h"

#include <cstdlib>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "runtime/base/status_macros.h"
#include "runtime/tensor/cuda/cuda_status.h"
#include "runtime/tensor/cuda/scoped_device.h"

namespace meshtrain {
namespace {

struct Registry {
  absl::Mutex mu;
  // Never destroyed: see the header.
  std::map<int, CudaDevice*> devices ABSL_GUARDED_BY(mu);
};

Registry& TheRegistry() {
  static Registry* registry = new Registry;
  return *registry;
}

}  // namespace

absl::StatusOr<int> VisibleCudaDevices() {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    (void)cudaGetLastError();
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    return CudaStatus(error, absl::StrCat("cudaGetDeviceCount (CUDA_VISIBLE_DEVICES=",
                                          visible == nullptr ? "<unset>" : visible, ")"));
  }
  if (count == 0) {
    return absl::FailedPreconditionError("cudaGetDeviceCount: no CUDA device is visible");
  }
  return count;
}

absl::StatusOr<CudaDevice*> CudaDevice::Get(Device device) {
  if (device.is_cpu()) {
    return absl::InvalidArgumentError(absl::StrCat(device.ToString(), " is not a GPU"));
  }
  Registry& registry = TheRegistry();
  absl::MutexLock lock(&registry.mu);
  auto it = registry.devices.find(device.index);
  if (it != registry.devices.end()) return it->second;
  MESHTRAIN_ASSIGN_OR_RETURN(int visible, VisibleCudaDevices());
  MESHTRAIN_ASSIGN_OR_RETURN(GpuPlacement placement,
                             PlaceGpu(FreezeGpuConfig(), device.index, visible));
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<CudaDevice> created, Create(device, placement));
  CudaDevice* raw = created.release();
  registry.devices[device.index] = raw;
  return raw;
}

absl::StatusOr<std::unique_ptr<CudaDevice>> CudaDevice::Create(Device device,
                                                               const GpuPlacement& placement) {
  auto d = std::unique_ptr<CudaDevice>(new CudaDevice);
  d->device_ = device;
  d->placement_ = placement;
  ScopedCudaDevice scoped(placement.physical);
  MESHTRAIN_RETURN_IF_ERROR(scoped.status());
  cudaDeviceProp props;
  MESHTRAIN_CUDA_RETURN_IF_ERROR(
      cudaGetDeviceProperties(&props, placement.physical),
      absl::StrCat("cudaGetDeviceProperties of CUDA device ", placement.physical));
  d->gpu_name_ = props.name;
  d->description_ =
      absl::StrCat(device.ToString(), " (", d->gpu_name_, ", CUDA device ", placement.physical);
  if (placement.slices > 1) {
    absl::StrAppend(&d->description_, ", slice ", placement.slice + 1, " of ", placement.slices);
  }
  absl::StrAppend(&d->description_, ")");
  int64_t limit = placement.memory_limit_bytes;
  if (limit == 0) {
    // The memory free now, shared by the slices; cuBLAS and NCCL need some of
    // it outside the allocator, so keep 5% back.
    size_t free_bytes = 0, total_bytes = 0;
    MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes),
                                   absl::StrCat("cudaMemGetInfo on ", d->description_));
    limit = static_cast<int64_t>(free_bytes / 100 * 95) / placement.slices;
  }
  MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&d->stream_, cudaStreamNonBlocking),
                                 absl::StrCat("creating the compute stream of ", d->description_));
  MESHTRAIN_CUDA_RETURN_IF_ERROR(
      cudaStreamCreateWithFlags(&d->upload_stream_, cudaStreamNonBlocking),
      absl::StrCat("creating the upload stream of ", d->description_));
  d->allocator_ = std::make_unique<CachingAllocator>(
      CachingAllocator::Options{device, placement.physical, limit, d->description_});
  return d;
}

}  // namespace meshtrain

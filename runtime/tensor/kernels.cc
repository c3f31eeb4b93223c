#include "runtime/tensor/kernels.h"

#include "absl/strings/str_cat.h"
#include "runtime/tensor/cpu_kernels.h"
#if MESHTRAIN_HAVE_CUDA
#include "runtime/tensor/cuda/cuda_kernels.h"
#endif

namespace meshtrain {

absl::StatusOr<std::unique_ptr<Kernels>> CreateKernels(Device device) {
  if (device.is_cpu()) return CreateCpuKernels(device);
#if MESHTRAIN_HAVE_CUDA
  return CreateCudaKernels(device);
#else
  return absl::FailedPreconditionError(absl::StrCat(
      device.ToString(), ": this meshtrain was built without CUDA; rebuild with the CUDA "
                         "toolkit installed (cmake -DMESHTRAIN_CUDA=ON) or use cpu devices"));
#endif
}

}  // namespace meshtrain

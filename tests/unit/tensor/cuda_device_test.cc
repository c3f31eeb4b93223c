// Device discovery on a machine without a GPU (or without a driver) says so
// instead of crashing: the static CUDA runtime opens the driver at the first
// call and reports its absence as an error. Label `unit`: runs everywhere, and
// checks whichever case the machine is.
#include "runtime/tensor/cuda/cuda_device.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/tensor/kernels.h"

namespace meshtrain {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

TEST(CudaDeviceTest, DiscoveryWithoutAGpuSaysSo) {
  absl::StatusOr<int> visible = VisibleCudaDevices();
  if (visible.ok()) {
    EXPECT_GT(*visible, 0);
    GTEST_SKIP() << *visible << " GPUs visible: the GPU tests cover this machine";
  }
  EXPECT_EQ(visible.status().code(), absl::StatusCode::kFailedPrecondition) << visible.status();
  // No driver, or no device: each names itself.
  EXPECT_THAT(visible.status().message(),
              AnyOf(HasSubstr("no NVIDIA driver"), HasSubstr("CUDA_VISIBLE_DEVICES"),
                    HasSubstr("no CUDA device")));
  // Asking for a GPU device fails the same way, without a crash.
  absl::StatusOr<std::unique_ptr<Kernels>> kernels = CreateKernels(Device::Gpu(0));
  ASSERT_FALSE(kernels.ok());
  EXPECT_EQ(kernels.status().code(), absl::StatusCode::kFailedPrecondition) << kernels.status();
}

}  // namespace
}  // namespace meshtrain

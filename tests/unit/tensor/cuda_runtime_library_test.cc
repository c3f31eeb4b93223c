// The CUDA runtime opened on first use: on a machine without a GPU (or without
// the CUDA libraries) discovery says so instead of crashing. Label `unit`: runs
// everywhere, and checks whichever case the machine is.
#include "runtime/tensor/cuda/cuda_runtime_library.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/tensor/cuda/cublas_library.h"
#include "runtime/tensor/cuda/cuda_device.h"
#include "runtime/tensor/cuda/cuda_status.h"
#include "runtime/tensor/kernels.h"

namespace meshtrain {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

TEST(CudaRuntimeLibraryTest, LoadsOrNamesTheMissingFile) {
  const absl::Status& cudart = LoadCudaRuntime();
  if (!cudart.ok()) {
    EXPECT_EQ(cudart.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(cudart.message(), HasSubstr("libcudart.so"));
    EXPECT_THAT(cudart.message(), HasSubstr("install the CUDA toolkit"));
    // Every CUDA error then names the missing file.
    EXPECT_THAT(CudaStatus(cudaErrorInsufficientDriver, "cudaMalloc").message(),
                HasSubstr("cudaMalloc: libcudart.so"));
  }
  const absl::Status& cublas = LoadCublas();
  if (!cublas.ok()) {
    EXPECT_EQ(cublas.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(cublas.message(), HasSubstr("libcublas.so"));
    EXPECT_THAT(CublasStatus(CUBLAS_STATUS_NOT_INITIALIZED, "cublasCreate").message(),
                HasSubstr("cublasCreate: libcublas.so"));
  }
}

TEST(CudaRuntimeLibraryTest, DiscoveryWithoutAGpuSaysSo) {
  absl::StatusOr<int> visible = VisibleCudaDevices();
  if (visible.ok()) {
    EXPECT_GT(*visible, 0);
    GTEST_SKIP() << *visible << " GPUs visible: the GPU tests cover this machine";
  }
  EXPECT_EQ(visible.status().code(), absl::StatusCode::kFailedPrecondition) << visible.status();
  // No libcudart, no driver, or no device: each names itself.
  EXPECT_THAT(visible.status().message(),
              AnyOf(HasSubstr("libcudart.so"), HasSubstr("no NVIDIA driver"),
                    HasSubstr("CUDA_VISIBLE_DEVICES"), HasSubstr("no CUDA device")));
  // Asking for a GPU device fails the same way, without a crash.
  absl::StatusOr<std::unique_ptr<Kernels>> kernels = CreateKernels(Device::Gpu(0));
  ASSERT_FALSE(kernels.ok());
  EXPECT_EQ(kernels.status().code(), absl::StatusCode::kFailedPrecondition) << kernels.status();
}

}  // namespace
}  // namespace meshtrain

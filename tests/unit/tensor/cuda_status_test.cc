// CUDA and cuBLAS codes to Status: runs without a GPU (label `unit`).
#include "runtime/tensor/cuda/cuda_status.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

TEST(CudaStatusTest, SuccessIsOk) {
  EXPECT_TRUE(CudaStatus(cudaSuccess, "x").ok());
  EXPECT_TRUE(CublasStatus(CUBLAS_STATUS_SUCCESS, "x").ok());
}

TEST(CudaStatusTest, CodesSayWhatToDo) {
  absl::Status oom = CudaStatus(cudaErrorMemoryAllocation, "cudaMalloc of 4096 bytes on gpu:1");
  EXPECT_EQ(oom.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(oom.message(),
              HasSubstr("cudaMalloc of 4096 bytes on gpu:1: cudaErrorMemoryAllocation"));
  EXPECT_THAT(oom.message(), HasSubstr("--gpu-memory-limit"));
  absl::Status none = CudaStatus(cudaErrorNoDevice, "cudaGetDeviceCount");
  EXPECT_EQ(none.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(none.message(), HasSubstr("CUDA_VISIBLE_DEVICES"));
  EXPECT_EQ(CudaStatus(cudaErrorInsufficientDriver, "init").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CudaStatus(cudaErrorNoKernelImageForDevice, "launch").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CudaStatus(cudaErrorIllegalAddress, "sync").code(), absl::StatusCode::kInternal);
}

TEST(CudaStatusTest, CublasCodes) {
  absl::Status alloc = CublasStatus(CUBLAS_STATUS_ALLOC_FAILED, "cublasCreate on gpu:0");
  EXPECT_EQ(alloc.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(alloc.message(), HasSubstr("cublasCreate on gpu:0: CUBLAS_STATUS_ALLOC_FAILED"));
  EXPECT_EQ(CublasStatus(CUBLAS_STATUS_NOT_INITIALIZED, "x").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CublasStatus(CUBLAS_STATUS_EXECUTION_FAILED, "x").code(), absl::StatusCode::kInternal);
}

TEST(CudaStatusTest, ReturnIfErrorMacroReturnsTheConvertedStatus) {
  auto f = [](cudaError_t e) -> absl::Status {
    MESHTRAIN_CUDA_RETURN_IF_ERROR(e, "step");
    return absl::OkStatus();
  };
  EXPECT_TRUE(f(cudaSuccess).ok());
  EXPECT_EQ(f(cudaErrorMemoryAllocation).code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace meshtrain

// cuBLAS opened on first use: where libcublas is missing, its errors name the
// file and what to install. Label `unit`: runs everywhere, and checks
// whichever case the machine is.
#include "runtime/tensor/cuda/cublas_library.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/tensor/cuda/cuda_status.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

TEST(CublasLibraryTest, LoadsOrNamesTheMissingFile) {
  const absl::Status& cublas = LoadCublas();
  if (cublas.ok()) GTEST_SKIP() << "libcublas loaded: the GPU tests cover its calls";
  EXPECT_EQ(cublas.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(cublas.message(), HasSubstr("libcublas.so"));
  EXPECT_THAT(CublasStatus(CUBLAS_STATUS_NOT_INITIALIZED, "cublasCreate").message(),
              HasSubstr("cublasCreate: libcublas.so"));
}

}  // namespace
}  // namespace meshtrain

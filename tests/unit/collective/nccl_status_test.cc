// NCCL codes to Status, and the wait's deadline: run without a GPU (label `unit`).
#include "runtime/collective/nccl/nccl_status.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

TEST(NcclStatusTest, CodesSayWhatToDo) {
  EXPECT_TRUE(NcclStatus(ncclSuccess, "x").ok());
  absl::Status remote = NcclStatus(ncclRemoteError, "nccl allreduce 'gradients' step 41");
  EXPECT_EQ(remote.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(remote.message(), HasSubstr("nccl allreduce 'gradients' step 41: "));
  EXPECT_THAT(remote.message(), HasSubstr("restart the job from its last checkpoint"));
  EXPECT_EQ(NcclStatus(ncclSystemError, "x").code(), absl::StatusCode::kUnavailable);
  absl::Status usage = NcclStatus(ncclInvalidUsage, "ncclCommInitAll");
  EXPECT_EQ(usage.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(usage.message(), HasSubstr("two ranks on one GPU"));
  EXPECT_EQ(NcclStatus(ncclInternalError, "x").code(), absl::StatusCode::kInternal);
  EXPECT_EQ(NcclStatus(ncclUnhandledCudaError, "x").code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace meshtrain

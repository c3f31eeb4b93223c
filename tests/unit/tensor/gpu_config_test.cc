#include "runtime/tensor/gpu_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

TEST(PlaceGpuTest, OneDevicePerGpuByDefault) {
  GpuConfig config;
  for (int i = 0; i < 3; ++i) {
    auto p = PlaceGpu(config, i, 3);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->physical, i);
    EXPECT_EQ(p->slice, 0);
    EXPECT_EQ(p->slices, 1);
    EXPECT_EQ(p->memory_limit_bytes, 0);
  }
}

TEST(PlaceGpuTest, LogicalGpusSliceOnePhysicalGpuAndShareTheLimit) {
  GpuConfig config;
  config.logical_per_physical = 2;
  config.memory_limit_bytes = int64_t{8} << 30;
  auto a = PlaceGpu(config, 0, 1);
  auto b = PlaceGpu(config, 1, 1);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->physical, 0);
  EXPECT_EQ(b->physical, 0);
  EXPECT_EQ(a->slice, 0);
  EXPECT_EQ(b->slice, 1);
  EXPECT_EQ(b->slices, 2);
  EXPECT_EQ(b->memory_limit_bytes, int64_t{4} << 30);
  // gpu:2 would need a second GPU.
  auto c = PlaceGpu(config, 2, 1);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(c.status().message(), HasSubstr("gpu:2 needs CUDA device 1 but 1 is visible"));
  EXPECT_THAT(c.status().message(), HasSubstr("--logical-gpus 2 gives gpu:0..gpu:1"));
  EXPECT_THAT(c.status().message(), HasSubstr("CUDA_VISIBLE_DEVICES"));
}

TEST(PlaceGpuTest, FirstPhysicalShiftsEveryDevice) {
  GpuConfig config;
  config.first_physical = 3;  // local rank 3 under mpirun
  auto p = PlaceGpu(config, 0, 8);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->physical, 3);
  auto beyond = PlaceGpu(config, 5, 8);
  EXPECT_EQ(beyond.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(beyond.status().message(), HasSubstr("local rank"));
}

TEST(PlaceGpuTest, NoVisibleDeviceAndBadConfigs) {
  EXPECT_EQ(PlaceGpu(GpuConfig{}, 0, 0).status().code(), absl::StatusCode::kFailedPrecondition);
  GpuConfig bad;
  bad.logical_per_physical = 0;
  EXPECT_EQ(PlaceGpu(bad, 0, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PlaceGpu(GpuConfig{}, -1, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseByteSizeTest, UnitsAndErrors) {
  EXPECT_EQ(*ParseByteSize("8GiB", "f"), int64_t{8} << 30);
  EXPECT_EQ(*ParseByteSize("512 MiB", "f"), int64_t{512} << 20);
  EXPECT_EQ(*ParseByteSize("1.5GB", "f"), 1500000000);
  EXPECT_EQ(*ParseByteSize("4096", "f"), 4096);
  EXPECT_EQ(*ParseByteSize("2k", "f"), 2048);
  EXPECT_EQ(*ParseByteSize("0", "f"), 0);
  for (const char* bad : {"", "GiB", "-1GiB", "eight", "1e30"}) {
    auto r = ParseByteSize(bad, "gpu-memory-limit");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("--gpu-memory-limit")) << bad;
  }
}

// The only test that touches the process's configuration.
TEST(GpuConfigTest, FrozenOnceAGpuIsPlaced) {
  GpuConfig two;
  two.logical_per_physical = 2;
  ASSERT_TRUE(SetGpuConfig(two).ok());
  EXPECT_EQ(CurrentGpuConfig().logical_per_physical, 2);
  GpuConfig bad;
  bad.memory_limit_bytes = -1;
  EXPECT_EQ(SetGpuConfig(bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FreezeGpuConfig().logical_per_physical, 2);
  EXPECT_TRUE(SetGpuConfig(two).ok()) << "the same configuration again is harmless";
  absl::Status changed = SetGpuConfig(GpuConfig{});
  EXPECT_EQ(changed.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(changed.message(), HasSubstr("after a GPU was used"));
  EXPECT_EQ(CurrentGpuConfig().logical_per_physical, 2);
}

}  // namespace
}  // namespace meshtrain

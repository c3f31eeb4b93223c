#include "training/gpu_setup.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

const std::vector<Device> kOneGpu = {Device::Gpu(0)};
const std::vector<Device> kTwoGpus = {Device::Gpu(0), Device::Gpu(1)};

TEST(GpuConfigForTest, DefaultsAndMemoryLimit) {
  GpuFlags flags;
  auto config = GpuConfigFor(flags, kOneGpu);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->logical_per_physical, 1);
  EXPECT_EQ(config->first_physical, 0);
  EXPECT_EQ(config->memory_limit_bytes, 0);
  flags.memory_limit = "8GiB";
  flags.logical_gpus = 2;
  config = GpuConfigFor(flags, kTwoGpus);
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->memory_limit_bytes, int64_t{8} << 30);
  EXPECT_EQ(config->logical_per_physical, 2);
}

TEST(GpuConfigForTest, BadFlagsAreNamed) {
  GpuFlags flags;
  flags.logical_gpus = 0;
  auto config = GpuConfigFor(flags, kOneGpu);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("--logical-gpus 0"));
  flags.logical_gpus = 1;
  flags.memory_limit = "lots";
  config = GpuConfigFor(flags, kOneGpu);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("--gpu-memory-limit 'lots'"));
}

TEST(GpuConfigForTest, MpirunRanksOfAHostTakeSuccessiveGpus) {
  GpuFlags flags;
  flags.local_rank = 3;
  EXPECT_EQ(GpuConfigFor(flags, kOneGpu)->first_physical, 3);
  EXPECT_EQ(GpuConfigFor(flags, kTwoGpus)->first_physical, 6);
  flags.logical_gpus = 2;  // gpu:0 and gpu:1 are one physical GPU
  EXPECT_EQ(GpuConfigFor(flags, kTwoGpus)->first_physical, 3);
  // CPU devices: nothing to offset.
  EXPECT_EQ(GpuConfigFor(flags, {Device::Cpu(0)})->first_physical, 0);
}

TEST(GpuConfigForTest, AWrapperThatIsolatedTheRankIsRecognised) {
  GpuFlags flags;
  flags.local_rank = 3;
  flags.visible_devices = "3";
  EXPECT_EQ(GpuConfigFor(flags, kOneGpu)->first_physical, 0);
  flags.visible_devices = "0,1,2,3";  // the whole host: offset by local rank
  EXPECT_EQ(GpuConfigFor(flags, kOneGpu)->first_physical, 3);
}

TEST(ConfigureGpusTest, GpuFlagsWithoutGpuDevicesAreRefused) {
  EXPECT_TRUE(ConfigureGpus(1, "", {Device::Cpu(0)}).ok());
  absl::Status s = ConfigureGpus(2, "", {Device::Cpu(0)});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("--logical-gpus and --gpu-memory-limit apply to GPU devices"));
}

}  // namespace
}  // namespace meshtrain

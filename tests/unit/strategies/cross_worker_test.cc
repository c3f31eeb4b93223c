#include "strategies/cross_worker.h"

#include "gtest/gtest.h"

namespace meshtrain {
namespace {

const std::vector<Device> kOneGpu = {Device::Gpu(0)};

TEST(UseNcclAcrossWorkersTest, ExplicitChoiceOrAutoOnGpus) {
  StrategyConfig config;
  config.communication = "nccl";
  EXPECT_TRUE(UseNcclAcrossWorkers(config, {Device::Cpu(0)}));
  config.communication = "ring";
  EXPECT_FALSE(UseNcclAcrossWorkers(config, kOneGpu));
  config.communication = "auto";
  EXPECT_FALSE(UseNcclAcrossWorkers(config, {Device::Cpu(0)}));
  EXPECT_FALSE(UseNcclAcrossWorkers(config, {Device::Cpu(0), Device::Gpu(0)}));
  EXPECT_EQ(UseNcclAcrossWorkers(config, kOneGpu), MESHTRAIN_HAVE_CUDA == 1);
}

TEST(UseHierarchyAcrossWorkersTest, ExplicitChoiceOrAutoWhereHostsHoldSeveralWorkers) {
  StrategyConfig config;
  const std::vector<std::string> two_by_two = {"h0", "h0", "h1", "h1"};
  EXPECT_TRUE(UseHierarchyAcrossWorkers(config, two_by_two));  // auto
  EXPECT_FALSE(UseHierarchyAcrossWorkers(config, {"h0", "h1"}));
  EXPECT_FALSE(UseHierarchyAcrossWorkers(config, {"h0", "h0"}));
  config.communication = "ring";
  EXPECT_FALSE(UseHierarchyAcrossWorkers(config, two_by_two));
  config.communication = "hierarchical";
  EXPECT_TRUE(UseHierarchyAcrossWorkers(config, {"h0", "h1"}));
}

}  // namespace
}  // namespace meshtrain

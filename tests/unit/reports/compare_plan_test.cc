#include "reports/compare_plan.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

TEST(ComparePlanTest, EachStrategyHasItsLaunch) {
  CompareShape shape;
  shape.workers = 3;
  shape.ps = 2;
  shape.devices = "4";
  auto one = PlanStrategyLaunch("one_device", shape);
  ASSERT_TRUE(one.ok());
  EXPECT_FALSE(one->cluster);
  EXPECT_EQ(one->devices, "cpu:0");
  auto mirrored = PlanStrategyLaunch("mirrored", shape);
  ASSERT_TRUE(mirrored.ok());
  EXPECT_FALSE(mirrored->cluster);
  EXPECT_EQ(mirrored->devices, "4");
  EXPECT_EQ(mirrored->description, "1 process, 4 replicas");
  auto central = PlanStrategyLaunch("central_storage", shape);
  ASSERT_TRUE(central.ok());
  EXPECT_EQ(central->devices, "4");
  auto mwm = PlanStrategyLaunch("multi_worker_mirrored", shape);
  ASSERT_TRUE(mwm.ok());
  EXPECT_TRUE(mwm->cluster);
  EXPECT_EQ(mwm->workers, 3);
  EXPECT_EQ(mwm->ps, 0);
  EXPECT_EQ(mwm->devices, "");  // the config's, per worker
  auto ps = PlanStrategyLaunch("parameter_server", shape);
  ASSERT_TRUE(ps.ok());
  EXPECT_TRUE(ps->cluster);
  EXPECT_EQ(ps->workers, 3);
  EXPECT_EQ(ps->ps, 2);
  EXPECT_EQ(ps->description, "3 workers + 2 ps");
}

TEST(ComparePlanTest, BadShapesAndNamesAreRejected) {
  CompareShape no_ps;
  no_ps.ps = 0;
  EXPECT_EQ(PlanStrategyLaunch("parameter_server", no_ps).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(PlanStrategyLaunch("multi_worker_mirrored", no_ps).ok());
  auto unknown = PlanStrategyLaunch("horovod", {});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(unknown.status().message(), "one_device")) << unknown.status();
}

TEST(ComparePlanTest, StrategyLists) {
  auto all = ParseStrategyList("one_device, mirrored,parameter_server");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, (std::vector<std::string>{"one_device", "mirrored", "parameter_server"}));
  EXPECT_FALSE(ParseStrategyList("mirrored,mirrored").ok());
  EXPECT_FALSE(ParseStrategyList("").ok());
  auto typo = ParseStrategyList("mirored");
  EXPECT_TRUE(absl::StrContains(typo.status().message(), "'mirored'")) << typo.status();
}

}  // namespace
}  // namespace meshtrain

#include "training/worker_reports.h"

#include "gtest/gtest.h"

namespace meshtrain {
namespace {

TEST(WorkerReportsTest, ClusterRateSumsTheWorkersOwnRates) {
  std::map<std::string, WorkerReport> reports = {{"worker:0", {"a", 0, 1000, 2.0}},
                                                 {"worker:1", {"a", 0, 600, 3.0}}};
  EXPECT_DOUBLE_EQ(ClusterSamplesPerSec(reports), 500.0 + 200.0);
  reports["worker:2"] = {"a", 0, 100, 0.0};  // never trained: no rate
  EXPECT_DOUBLE_EQ(ClusterSamplesPerSec(reports), 700.0);
}

TEST(WorkerReportsTest, LoneProcessReportsItselfAndItsMemory) {
  ClusterConfig local = ClusterConfig::Local();
  const WorkerReport mine{"deadbeef", PeakRssBytes(), 10, 1.0};
  EXPECT_GT(mine.peak_rss_bytes, 0);
  auto reports = ExchangeWorkerReports(nullptr, local, 0, mine, absl::Seconds(1));
  ASSERT_TRUE(reports.ok());
  ASSERT_EQ(reports->size(), 1u);
  EXPECT_EQ(reports->at("worker:0").checksum, "deadbeef");
}

}  // namespace
}  // namespace meshtrain

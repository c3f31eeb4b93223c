#include "runtime/collective/allreduce_benchmark.h"

#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "runtime/collective/ring_communicator.h"
#include "runtime/transport/in_process_transport.h"
#include "tests/unit/transport/run_on_ranks.h"

namespace meshtrain {
namespace {

TEST(AllReduceBenchmarkTest, EveryRankGetsTheSameRows) {
  const int n = 3;
  auto mesh = CreateInProcessMesh(n);
  AllReduceBenchmarkOptions options;
  options.sizes_bytes = {4096, 65536};
  options.min_time = absl::Milliseconds(5);
  options.min_iters = 5;
  options.max_iters = 50;
  std::vector<std::vector<AllReduceBenchmarkRow>> rows(n);
  auto statuses = testing::RunOnRanks(n, [&](int r) -> absl::Status {
    RingCommunicator comm(mesh[r].get());
    auto got = RunAllReduceBenchmark(comm, options);
    if (!got.ok()) return got.status();
    rows[r] = *got;
    return absl::OkStatus();
  });
  for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(rows[0].size(), 2u);
  for (const AllReduceBenchmarkRow& row : rows[0]) {
    EXPECT_GE(row.iters, 5);
    EXPECT_LE(row.iters, 50);
    EXPECT_GT(row.median_s, 0);
    EXPECT_LE(row.min_s, row.median_s);
    EXPECT_LE(row.median_s, row.p99_s);
    EXPECT_LE(row.p99_s, row.max_s);
    EXPECT_NEAR(row.busbw_gbps, row.algbw_gbps * 2.0 * (n - 1) / n, 1e-9);
    EXPECT_TRUE(absl::StrContains(FormatAllReduceBenchmarkRow(row), "KiB"));
  }
  for (int r = 1; r < n; ++r) {
    for (size_t i = 0; i < rows[0].size(); ++i) {
      EXPECT_EQ(rows[r][i].median_s, rows[0][i].median_s);  // max over ranks, per iteration
      EXPECT_EQ(rows[r][i].iters, rows[0][i].iters);
    }
  }
}

}  // namespace
}  // namespace meshtrain

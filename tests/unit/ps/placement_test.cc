// Placement and partitioning: round-robin, greedy, fixed shards, min/max shard
// bytes, and which partition holds each row.
#include "runtime/ps/placement.h"

#include <algorithm>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/ps/ps_test_cluster.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::Spec;

using ::testing::HasSubstr;

// The reference model's variables: MLP 784-300-100-10.
std::vector<VariableSpec> ReferenceModel() {
  return {Spec("dense_0/kernel", {784, 300}), Spec("dense_0/bias", {300}),
          Spec("dense_1/kernel", {300, 100}), Spec("dense_1/bias", {100}),
          Spec("dense_2/kernel", {100, 10}),  Spec("dense_2/bias", {10})};
}

PlacementOptions Options(int num_ps, PlacementPolicy policy = PlacementPolicy::kRoundRobin) {
  PlacementOptions options;
  options.num_ps = num_ps;
  options.policy = policy;
  return options;
}

// Every variable's rows are covered exactly once, in order, by its partitions.
void ExpectCoversEveryRowOnce(const Placement& placement, const std::vector<VariableSpec>& specs) {
  int64_t total = 0;
  for (int v = 0; v < static_cast<int>(specs.size()); ++v) {
    int64_t next = 0;
    for (const Partition& p : placement.PartitionsOf(v)) {
      EXPECT_EQ(p.variable, v);
      EXPECT_EQ(p.row_begin, next);
      EXPECT_GT(p.rows, 0);
      next = p.row_end();
      total += p.bytes;
    }
    EXPECT_EQ(next, specs[v].shape.dim(0)) << specs[v].name;
  }
  int64_t expected = 0;
  for (const VariableSpec& s : specs) expected += static_cast<int64_t>(s.bytes());
  EXPECT_EQ(total, expected);
  const std::vector<int64_t> bytes = placement.ps_bytes();
  int64_t sum = 0;
  for (int64_t b : bytes) sum += b;
  EXPECT_EQ(sum, expected);
}

TEST(PlacementTest, RoundRobinPlacesWholeVariablesInDeclarationOrder) {
  const std::vector<VariableSpec> specs = ReferenceModel();
  for (int num_ps : {1, 2, 3, 8}) {
    absl::StatusOr<Placement> placement = PlaceVariables(specs, Options(num_ps));
    ASSERT_TRUE(placement.ok()) << placement.status();
    ASSERT_EQ(placement->partitions().size(), specs.size());
    for (int v = 0; v < static_cast<int>(specs.size()); ++v) {
      ASSERT_EQ(placement->PartitionsOf(v).size(), 1u);
      EXPECT_EQ(placement->PartitionsOf(v)[0].ps, v % num_ps) << "num_ps " << num_ps;
    }
    ExpectCoversEveryRowOnce(*placement, specs);
  }
}

TEST(PlacementTest, GreedyPutsEachPartitionOnTheLeastLoadedPs) {
  // Largest first: 400 -> ps0, 300 -> ps1, 200 -> ps1 (300 < 400), 100 -> ps0.
  const std::vector<VariableSpec> specs = {Spec("a", {25}), Spec("b", {100}), Spec("c", {50}),
                                           Spec("d", {75})};
  absl::StatusOr<Placement> placement = PlaceVariables(specs, Options(2, PlacementPolicy::kGreedy));
  ASSERT_TRUE(placement.ok()) << placement.status();
  EXPECT_EQ(placement->PartitionsOf(1)[0].ps, 0);  // b, 400 B
  EXPECT_EQ(placement->PartitionsOf(3)[0].ps, 1);  // d, 300 B
  EXPECT_EQ(placement->PartitionsOf(2)[0].ps, 1);  // c, 200 B
  EXPECT_EQ(placement->PartitionsOf(0)[0].ps, 0);  // a, 100 B
  EXPECT_EQ(placement->ps_bytes(), (std::vector<int64_t>{500, 500}));
  // Round-robin on the same variables is lopsided: a, c on ps0; b, d on ps1.
  absl::StatusOr<Placement> rr = PlaceVariables(specs, Options(2));
  ASSERT_TRUE(rr.ok());
  EXPECT_EQ(rr->ps_bytes(), (std::vector<int64_t>{300, 700}));
}

TEST(PlacementTest, NumPartitionsFollowsTheShardOptions) {
  PartitionOptions none;
  EXPECT_EQ(NumPartitions(1 << 20, 1000, 2, none), 1);
  // fixed_shards, floored by min_shard_bytes.
  PartitionOptions fixed{.fixed_shards = 4, .min_shard_bytes = 1000, .max_shard_bytes = 0};
  EXPECT_EQ(NumPartitions(8000, 100, 2, fixed), 4);
  EXPECT_EQ(NumPartitions(2500, 100, 2, fixed), 2);  // 4 partitions would be 625 B < 1000
  EXPECT_EQ(NumPartitions(999, 100, 2, fixed), 1);   // a small variable stays whole
  EXPECT_EQ(NumPartitions(8000, 3, 2, fixed), 3);    // never more partitions than rows
  fixed.min_shard_bytes = 0;
  EXPECT_EQ(NumPartitions(10, 100, 2, fixed), 4);
  // max_shard_bytes, rounded up to a multiple of the ps count where rows allow.
  PartitionOptions max{.fixed_shards = 0, .min_shard_bytes = 256 << 10, .max_shard_bytes = 1000};
  EXPECT_EQ(NumPartitions(1000, 100, 2, max), 1);  // 10 B rows: all fit
  EXPECT_EQ(NumPartitions(1100, 100, 2, max), 2);  // 11 B rows: 90 per partition
  EXPECT_EQ(NumPartitions(2100, 100, 2, max), 4);  // 21 B rows: 3, rounded up to 4
  EXPECT_EQ(NumPartitions(2100, 100, 1, max), 3);
  EXPECT_EQ(NumPartitions(2100, 3, 2, max), 3);  // 4 would exceed the rows
  EXPECT_EQ(NumPartitions(5000, 2, 1, max), 2);  // a row larger than M is a partition
  EXPECT_EQ(NumPartitions(940800, 784, 2, {.max_shard_bytes = 65536}), 16);
}

TEST(PlacementTest, PartitionsNeverExceedMaxShardBytes) {
  const std::vector<VariableSpec> specs = ReferenceModel();
  for (int64_t max : {int64_t{4096}, int64_t{65536}, int64_t{300000}}) {
    for (int num_ps : {1, 2, 3}) {
      PlacementOptions options = Options(num_ps, PlacementPolicy::kGreedy);
      options.partitioning.max_shard_bytes = max;
      absl::StatusOr<Placement> placement = PlaceVariables(specs, options);
      ASSERT_TRUE(placement.ok()) << placement.status();
      ExpectCoversEveryRowOnce(*placement, specs);
      for (const Partition& p : placement->partitions()) {
        const int64_t row_bytes =
            static_cast<int64_t>(specs[p.variable].bytes()) / specs[p.variable].shape.dim(0);
        EXPECT_LE(p.bytes, std::max(max, row_bytes)) << specs[p.variable].name;
      }
    }
  }
}

// The acceptance criterion: greedy with 64 KiB partitions balances the
// reference model over 2 ps tasks within 10%.
TEST(PlacementTest, GreedyWithMaxShardBytesBalancesTheReferenceModel) {
  PlacementOptions options = Options(2, PlacementPolicy::kGreedy);
  options.partitioning.max_shard_bytes = 65536;
  absl::StatusOr<Placement> placement = PlaceVariables(ReferenceModel(), options);
  ASSERT_TRUE(placement.ok()) << placement.status();
  const std::vector<int64_t> bytes = placement->ps_bytes();
  const auto [lo, hi] = std::minmax_element(bytes.begin(), bytes.end());
  EXPECT_LE(static_cast<double>(*hi - *lo), 0.10 * static_cast<double>(*hi))
      << bytes[0] << " vs " << bytes[1];
  // dense_0/kernel spreads over both ps tasks.
  std::set<int> holders;
  for (const Partition& p : placement->PartitionsOf(0)) holders.insert(p.ps);
  EXPECT_EQ(holders, (std::set<int>{0, 1}));
  // Without partitioning the big kernel makes one ps hold almost everything.
  absl::StatusOr<Placement> whole =
      PlaceVariables(ReferenceModel(), Options(2, PlacementPolicy::kGreedy));
  ASSERT_TRUE(whole.ok());
  EXPECT_GT(whole->ps_bytes()[0], 5 * whole->ps_bytes()[1]);
}

TEST(PlacementTest, RowsMapToThePartitionHoldingThem) {
  const std::vector<VariableSpec> specs = {Spec("table", {1001, 4}, /*sparse=*/true),
                                           Spec("scalar", {})};
  for (int shards : {1, 2, 3, 7, 1001}) {
    PlacementOptions options = Options(3);
    options.partitioning = {.fixed_shards = shards, .min_shard_bytes = 0, .max_shard_bytes = 0};
    absl::StatusOr<Placement> placement = PlaceVariables(specs, options);
    ASSERT_TRUE(placement.ok()) << placement.status();
    ASSERT_EQ(placement->PartitionsOf(0).size(), static_cast<size_t>(shards));
    // Sizes differ by at most one row, earlier partitions larger.
    const int64_t small = 1001 / shards;
    for (const Partition& p : placement->PartitionsOf(0)) {
      EXPECT_EQ(p.rows, small + (p.index < 1001 % shards ? 1 : 0));
    }
    for (int64_t row = 0; row < 1001; ++row) {
      const Partition& p = placement->PartitionOfRow(0, row);
      EXPECT_LE(p.row_begin, row);
      EXPECT_LT(row, p.row_end());
    }
    EXPECT_EQ(placement->PartitionOfRow(1, 0).rows, 1);  // a scalar is one row
  }
}

TEST(PlacementTest, CreateRejectsPlansThatDoNotCoverTheModel) {
  const std::vector<VariableSpec> specs = {Spec("a", {10, 2}), Spec("b", {4})};
  // 10 rows x 8 B and 4 x 4 B.
  std::vector<Partition> good = {{0, 0, 0, 6, 48, 0}, {0, 1, 6, 4, 32, 1}, {1, 0, 0, 4, 16, 1}};
  ASSERT_TRUE(Placement::Create(specs, 2, good).ok());
  std::vector<Partition> gap = good;
  gap[1].row_begin = 7;
  EXPECT_THAT(Placement::Create(specs, 2, gap).status().message(), HasSubstr("does not follow"));
  std::vector<Partition> short_rows = {{0, 0, 0, 6, 48, 0}, {1, 0, 0, 4, 16, 1}};
  EXPECT_THAT(Placement::Create(specs, 2, short_rows).status().message(), HasSubstr("cover rows"));
  std::vector<Partition> bad_ps = good;
  bad_ps[2].ps = 2;
  EXPECT_THAT(Placement::Create(specs, 2, bad_ps).status().message(), HasSubstr("ps:2"));
  std::vector<Partition> extra = good;
  extra.push_back({2, 0, 0, 1, 4, 0});
  EXPECT_FALSE(Placement::Create(specs, 2, extra).ok());
}

TEST(PlacementTest, OptionsAreChecked) {
  EXPECT_THAT(PlaceVariables(ReferenceModel(), Options(0)).status().message(),
              HasSubstr("at least one ps task"));
  PlacementOptions bad = Options(2);
  bad.partitioning.fixed_shards = -1;
  EXPECT_FALSE(PlaceVariables(ReferenceModel(), bad).ok());
  bad = Options(2);
  bad.partitioning = {.fixed_shards = 2, .min_shard_bytes = 1000, .max_shard_bytes = 10};
  EXPECT_THAT(ValidatePlacementOptions(bad).message(), HasSubstr("exceeds max_shard_bytes"));
  EXPECT_THAT(ParsePlacementPolicy("random").status().message(),
              HasSubstr("round_robin or greedy"));
  EXPECT_EQ(*ParsePlacementPolicy("greedy"), PlacementPolicy::kGreedy);
}

TEST(PlacementTest, DescribeNamesEveryPartition) {
  PlacementOptions options = Options(2);
  options.partitioning.fixed_shards = 2;
  options.partitioning.min_shard_bytes = 0;
  const std::vector<VariableSpec> specs = {Spec("w", {4, 2})};
  absl::StatusOr<Placement> placement = PlaceVariables(specs, options);
  ASSERT_TRUE(placement.ok());
  EXPECT_EQ(placement->Describe(specs),
            "  w [4, 2] 32 B: ps:0 rows [0, 2), ps:1 rows [2, 4)\n  bytes per ps: ps:0 16 ps:1 16");
  // Over the ps tasks an elastic cluster kept (PsPlan::ps_tasks): named after the tasks.
  EXPECT_EQ(placement->Describe(specs, {2, 0}),
            "  w [4, 2] 32 B: ps:2 rows [0, 2), ps:0 rows [2, 4)\n  bytes per ps: ps:2 16 ps:0 16");
}

}  // namespace
}  // namespace meshtrain

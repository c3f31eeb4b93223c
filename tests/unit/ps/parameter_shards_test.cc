// The ps's shards and update rules: initial values, versions, staleness
// (bound, scaling, warm-up), synchronous steps with backup workers, sparse
// rows, requests that must be refused, snapshots and restores (values, slots,
// versions, across partitionings); plus the plan's JSON.
#include "runtime/ps/parameter_shards.h"

#include <cstring>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/checkpoint/checkpoint_reader.h"
#include "runtime/model/variable.h"
#include "tests/unit/checkpoint/temp_dir.h"
#include "tests/unit/ps/ps_test_cluster.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::CommitShards;
using ::meshtrain::testing::Spec;
using ::meshtrain::testing::TempDir;

using ::testing::HasSubstr;

// A plan with plain SGD at learning rate 1 (an update subtracts the gradient).
PsPlan MakePlan(std::vector<VariableSpec> specs, int num_ps, UpdateRules rules,
                int fixed_shards = 0) {
  PsPlan plan;
  plan.specs = std::move(specs);
  PlacementOptions placement;
  placement.num_ps = num_ps;
  placement.partitioning = {
      .fixed_shards = fixed_shards, .min_shard_bytes = 0, .max_shard_bytes = 0};
  plan.placement = *PlaceVariables(plan.specs, placement);
  plan.optimizer.type = "sgd";
  plan.optimizer.learning_rate = 1.0f;
  plan.seed = 7;
  plan.rules = rules;
  return plan;
}

UpdateRules Async(int workers) {
  UpdateRules rules;
  rules.num_workers = workers;
  return rules;
}

std::vector<float> ReadAll(ParameterShards& shards, int slot) {
  std::vector<float> out(static_cast<size_t>(shards.shape(slot).num_elements()));
  absl::StatusOr<int64_t> version =
      shards.Read(slot, absl::MakeSpan(out), 0, absl::InfiniteFuture());
  EXPECT_TRUE(version.ok()) << version.status();
  return out;
}

Tensor Filled(const Shape& shape, float value) {
  Tensor t(DType::kFloat32, shape);
  for (float& x : t.flat<float>()) x = value;
  return t;
}

TEST(ParameterShardsTest, PartitionsHoldTheirRowsOfTheSameInitialValues) {
  const PsPlan plan = MakePlan({Spec("w", {10, 3})}, 2, Async(1), /*fixed_shards=*/2);
  Tensor whole(DType::kFloat32, Shape{10, 3});
  InitializeVariable(plan.specs[0], plan.seed, 0, whole);
  for (int ps = 0; ps < 2; ++ps) {
    absl::StatusOr<std::unique_ptr<ParameterShards>> shards =
        ParameterShards::Create(plan, ps, nullptr);
    ASSERT_TRUE(shards.ok()) << shards.status();
    ASSERT_EQ((*shards)->num_slots(), 1);
    const Partition& p = (*shards)->partition(0);
    EXPECT_EQ(p.ps, ps);
    const std::vector<float> got = ReadAll(**shards, 0);
    ASSERT_EQ(got.size(), static_cast<size_t>(p.rows * 3));
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i], whole.data<float>()[p.row_begin * 3 + i])
          << "ps " << ps << " element " << i;
    }
    EXPECT_EQ((*shards)->version(0), 0);
  }
}

TEST(ParameterShardsTest, AsynchronousPushesApplyAndCountStaleness) {
  const PsPlan plan = MakePlan({Spec("w", {4})}, 1, Async(2));
  auto shards = *ParameterShards::Create(plan, 0, nullptr);
  const std::vector<float> before = ReadAll(*shards, 0);
  // Both workers read version 0; worker 0's gradient lands first.
  absl::StatusOr<PushOutcome> first = shards->Push(0, 0, Filled({4}, 1.0f), 0);
  absl::StatusOr<PushOutcome> second = shards->Push(1, 0, Filled({4}, 2.0f), 0);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->reason, PushOutcome::Reason::kApplied);
  EXPECT_EQ(first->staleness, 0);
  EXPECT_EQ(second->reason, PushOutcome::Reason::kApplied);
  EXPECT_EQ(second->staleness, 1);
  EXPECT_EQ(shards->version(0), 2);
  const std::vector<float> after = ReadAll(*shards, 0);
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(after[i], before[i] - 3.0f);
  const PushCounts counts = shards->stats().counts;
  EXPECT_EQ(counts.pushes, 2);
  EXPECT_EQ(counts.applied, 2);
  EXPECT_EQ(counts.dropped(), 0);
  EXPECT_EQ(counts.staleness_sum, 1);
  EXPECT_DOUBLE_EQ(counts.mean_staleness(), 0.5);
}

TEST(ParameterShardsTest, MaxStalenessDropsOlderGradients) {
  UpdateRules rules = Async(3);
  rules.max_staleness = 1;
  auto shards = *ParameterShards::Create(MakePlan({Spec("w", {2})}, 1, rules), 0, nullptr);
  ASSERT_TRUE(shards->Push(0, 0, Filled({2}, 1.0f), 0).ok());  // version 1
  ASSERT_TRUE(shards->Push(1, 0, Filled({2}, 1.0f), 0).ok());  // staleness 1: applied, version 2
  const std::vector<float> before = ReadAll(*shards, 0);
  absl::StatusOr<PushOutcome> old = shards->Push(2, 0, Filled({2}, 5.0f), 0);  // staleness 2
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->reason, PushOutcome::Reason::kStale);
  EXPECT_TRUE(old->dropped());
  EXPECT_EQ(old->staleness, 2);
  EXPECT_EQ(shards->version(0), 2);
  EXPECT_EQ(ReadAll(*shards, 0), before);
  EXPECT_EQ(shards->stats().counts.dropped_stale, 1);
  EXPECT_EQ(shards->stats().counts.applied, 2);
  // Without a bound the same gradient counts.
  auto unbounded = *ParameterShards::Create(MakePlan({Spec("w", {2})}, 1, Async(3)), 0, nullptr);
  ASSERT_TRUE(unbounded->Push(0, 0, Filled({2}, 1.0f), 0).ok());
  ASSERT_TRUE(unbounded->Push(1, 0, Filled({2}, 1.0f), 0).ok());
  EXPECT_EQ(unbounded->Push(2, 0, Filled({2}, 5.0f), 0)->reason, PushOutcome::Reason::kApplied);
  EXPECT_EQ(unbounded->stats().counts.dropped_stale, 0);
}

TEST(ParameterShardsTest, StalenessScalingDividesTheLearningRate) {
  UpdateRules rules = Async(2);
  rules.staleness_scaling = true;
  auto shards = *ParameterShards::Create(MakePlan({Spec("w", {3})}, 1, rules), 0, nullptr);
  ASSERT_TRUE(shards->Push(0, 0, Filled({3}, 0.0f), 0).ok());
  ASSERT_TRUE(shards->Push(0, 0, Filled({3}, 0.0f), 1).ok());
  const std::vector<float> before = ReadAll(*shards, 0);
  absl::StatusOr<PushOutcome> stale = shards->Push(1, 0, Filled({3}, 3.0f), 0);  // staleness 2
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(stale->reason, PushOutcome::Reason::kApplied);
  EXPECT_FLOAT_EQ(stale->lr_scale, 1.0f / 3.0f);
  const std::vector<float> after = ReadAll(*shards, 0);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(after[i], before[i] - 1.0f, 1e-6);  // 3 x lr / 3
  const PushCounts counts = shards->stats().counts;
  EXPECT_EQ(counts.scaled, 1);  // the two fresh pushes kept the full rate
  EXPECT_EQ(counts.applied, 3);
}

TEST(ParameterShardsTest, WarmupCountsOnlyTheChiefsGradients) {
  UpdateRules rules = Async(2);
  rules.warmup_steps = 2;
  auto shards = *ParameterShards::Create(MakePlan({Spec("w", {2})}, 1, rules), 0, nullptr);
  EXPECT_EQ(shards->Push(1, 0, Filled({2}, 1.0f), 0)->reason, PushOutcome::Reason::kWarmup);
  EXPECT_EQ(shards->version(0), 0);
  EXPECT_EQ(shards->Push(0, 0, Filled({2}, 1.0f), 0)->reason, PushOutcome::Reason::kApplied);
  EXPECT_EQ(shards->Push(1, 0, Filled({2}, 1.0f), 1)->reason, PushOutcome::Reason::kWarmup);
  EXPECT_EQ(shards->Push(0, 0, Filled({2}, 1.0f), 1)->reason, PushOutcome::Reason::kApplied);
  EXPECT_EQ(shards->Push(1, 0, Filled({2}, 1.0f), 2)->reason, PushOutcome::Reason::kApplied);
  const PushCounts counts = shards->stats().counts;
  EXPECT_EQ(counts.dropped_warmup, 2);
  EXPECT_EQ(counts.applied, 3);
}

TEST(ParameterShardsTest, ReadWaitsForAVersionUntilItsDeadlineOrStop) {
  auto shards = *ParameterShards::Create(MakePlan({Spec("w", {2})}, 1, Async(1)), 0, nullptr);
  std::vector<float> out(2);
  // Nobody pushes: the deadline ends the wait.
  absl::StatusOr<int64_t> late =
      shards->Read(0, absl::MakeSpan(out), 1, absl::Now() + absl::Milliseconds(50));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(late.status().message(), HasSubstr("did not reach 1"));
  // A push releases a waiting reader.
  absl::StatusOr<int64_t> waited;
  std::thread reader([&] {
    std::vector<float> values(2);
    waited = shards->Read(0, absl::MakeSpan(values), 1, absl::Now() + absl::Seconds(30));
  });
  ASSERT_TRUE(shards->Push(0, 0, Filled({2}, 1.0f), 0).ok());
  reader.join();
  ASSERT_TRUE(waited.ok()) << waited.status();
  EXPECT_EQ(*waited, 1);
  // Stop() ends waits at once.
  std::thread stopped([&] {
    std::vector<float> values(2);
    waited = shards->Read(0, absl::MakeSpan(values), 5, absl::Now() + absl::Seconds(30));
  });
  shards->Stop();
  stopped.join();
  EXPECT_EQ(waited.status().code(), absl::StatusCode::kUnavailable);
}

TEST(ParameterShardsTest, AbortEndsAWait) {
  AbortSignal abort;
  auto shards = *ParameterShards::Create(MakePlan({Spec("w", {2})}, 1, Async(1)), 0, &abort);
  absl::StatusOr<int64_t> waited;
  std::thread reader([&] {
    std::vector<float> values(2);
    waited = shards->Read(0, absl::MakeSpan(values), 3, absl::Now() + absl::Seconds(30));
  });
  abort.Abort(absl::AbortedError("worker:1 failed"));
  reader.join();
  EXPECT_EQ(waited.status().code(), absl::StatusCode::kAborted);
}

UpdateRules Sync(int workers, int replicas) {
  UpdateRules rules;
  rules.num_workers = workers;
  rules.sync_replicas = replicas;
  return rules;
}

TEST(ParameterShardsTest, SynchronousStepAveragesTheFirstGradientsAndDropsLateOnes) {
  auto shards = *ParameterShards::Create(MakePlan({Spec("w", {2})}, 1, Sync(3, 2)), 0, nullptr);
  const std::vector<float> before = ReadAll(*shards, 0);
  absl::StatusOr<PushOutcome> a = shards->Push(0, 0, Filled({2}, 1.0f), 0);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->reason, PushOutcome::Reason::kPending);
  EXPECT_EQ(shards->version(0), 0);
  // The same worker twice in one step counts once.
  EXPECT_EQ(shards->Push(0, 0, Filled({2}, 9.0f), 0)->reason, PushOutcome::Reason::kStale);
  absl::StatusOr<PushOutcome> b = shards->Push(1, 0, Filled({2}, 3.0f), 0);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->reason, PushOutcome::Reason::kApplied);
  EXPECT_EQ(shards->version(0), 1);
  // Each worker's gradient covers 1/3 of the global batch: the mean over the
  // two that came is (1 + 3) x 3 / 2 = 6.
  const std::vector<float> after = ReadAll(*shards, 0);
  for (int i = 0; i < 2; ++i) EXPECT_FLOAT_EQ(after[i], before[i] - 6.0f);
  // The backup worker's gradient for step 0 arrives late: dropped.
  absl::StatusOr<PushOutcome> late = shards->Push(2, 0, Filled({2}, 100.0f), 0);
  EXPECT_EQ(late->reason, PushOutcome::Reason::kStale);
  EXPECT_EQ(ReadAll(*shards, 0), after);
  const PushCounts counts = shards->stats().counts;
  EXPECT_EQ(counts.pushes, 4);
  EXPECT_EQ(counts.applied, 2);
  EXPECT_EQ(counts.dropped_stale, 2);
}

TEST(ParameterShardsTest, WorkersThatLeftNoLongerHoldUpASynchronousStep) {
  auto shards = *ParameterShards::Create(MakePlan({Spec("w", {2})}, 1, Sync(2, 2)), 0, nullptr);
  EXPECT_EQ(shards->Push(0, 0, Filled({2}, 1.0f), 0)->reason, PushOutcome::Reason::kPending);
  shards->WorkerLeft(1);
  EXPECT_EQ(shards->version(0), 1);
  EXPECT_EQ(shards->Push(0, 0, Filled({2}, 1.0f), 1)->reason, PushOutcome::Reason::kApplied);
  EXPECT_EQ(shards->version(0), 2);
}

TEST(ParameterShardsTest, SparseRowsAreReadAndUpdatedByIdInsideTheirPartition) {
  const PsPlan plan = MakePlan({Spec("table", {10, 2}, /*sparse=*/true)}, 2, Async(1), 2);
  auto shards = *ParameterShards::Create(plan, 1, nullptr);  // rows [5, 10)
  ASSERT_EQ(shards->partition(0).row_begin, 5);
  EXPECT_TRUE(shards->dense_slots().empty());
  const std::vector<float> before = ReadAll(*shards, 0);
  const std::vector<int64_t> ids = {9, 6};
  std::vector<float> rows(4);
  ASSERT_TRUE(shards->ReadRows(0, ids, absl::MakeSpan(rows), 0, absl::InfiniteFuture()).ok());
  EXPECT_EQ(rows[0], before[8]);  // row 9 = local row 4
  EXPECT_EQ(rows[3], before[3]);  // row 6 = local row 1, column 1
  const std::vector<float> grad = {1, 1, 2, 2};
  ASSERT_EQ(shards->PushRows(0, 0, ids, grad, 0)->reason, PushOutcome::Reason::kApplied);
  const std::vector<float> after = ReadAll(*shards, 0);
  for (int i = 0; i < 10; ++i) {
    const float change = i / 2 == 4 ? 1.0f : i / 2 == 1 ? 2.0f : 0.0f;
    EXPECT_FLOAT_EQ(after[i], before[i] - change) << i;
  }
  // Refused: rows of another partition, repeated ids, a dense push of the table.
  const std::vector<int64_t> outside = {4};
  EXPECT_THAT(
      shards->ReadRows(0, outside, absl::MakeSpan(rows).subspan(0, 2), 0, absl::InfiniteFuture())
          .status()
          .message(),
      HasSubstr("outside the partition's rows [5, 10)"));
  const std::vector<int64_t> twice = {7, 7};
  EXPECT_THAT(shards->PushRows(0, 0, twice, grad, 1).status().message(),
              HasSubstr("appears twice"));
  EXPECT_FALSE(shards->Push(0, 0, Filled({5, 2}, 1.0f), 1).ok());
  EXPECT_EQ(ReadAll(*shards, 0), after);
}

TEST(ParameterShardsTest, SynchronousSparseStepSumsOverlappingRows) {
  const PsPlan plan = MakePlan({Spec("table", {4, 1}, /*sparse=*/true)}, 1, Sync(2, 2));
  auto shards = *ParameterShards::Create(plan, 0, nullptr);
  const std::vector<float> before = ReadAll(*shards, 0);
  const std::vector<int64_t> a = {0, 2}, b = {2, 3};
  EXPECT_EQ(shards->PushRows(0, 0, a, {1, 1}, 0)->reason, PushOutcome::Reason::kPending);
  EXPECT_EQ(shards->PushRows(1, 0, b, {1, 1}, 0)->reason, PushOutcome::Reason::kApplied);
  const std::vector<float> after = ReadAll(*shards, 0);
  EXPECT_FLOAT_EQ(after[0], before[0] - 1.0f);
  EXPECT_FLOAT_EQ(after[1], before[1]);
  EXPECT_FLOAT_EQ(after[2], before[2] - 2.0f);
  EXPECT_FLOAT_EQ(after[3], before[3] - 1.0f);
}

TEST(ParameterShardsTest, MalformedRequestsAreRefusedAndChangeNothing) {
  auto shards = *ParameterShards::Create(MakePlan({Spec("w", {2, 2})}, 1, Async(2)), 0, nullptr);
  const std::vector<float> before = ReadAll(*shards, 0);
  EXPECT_THAT(shards->Push(0, 0, Filled({4}, 1.0f), 0).status().message(),
              HasSubstr("expected float32[2, 2]"));
  EXPECT_THAT(shards->Push(2, 0, Filled({2, 2}, 1.0f), 0).status().message(),
              HasSubstr("worker rank 2"));
  EXPECT_THAT(shards->Push(0, 0, Filled({2, 2}, 1.0f), 3).status().message(),
              HasSubstr("read version 3"));
  EXPECT_THAT(shards->Push(0, 0, Filled({2, 2}, 1.0f), -1).status().message(),
              HasSubstr("read version -1"));
  std::vector<float> small(3);
  EXPECT_FALSE(shards->Read(0, absl::MakeSpan(small), 0, absl::InfiniteFuture()).ok());
  absl::StatusOr<int> missing = shards->Find("v", 0);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("it holds: w/0"));
  EXPECT_EQ(shards->Find("w", 1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*shards->Find("w", 0), 0);
  EXPECT_EQ(ReadAll(*shards, 0), before);
  EXPECT_EQ(shards->version(0), 0);
  EXPECT_EQ(shards->stats().counts.pushes, 0);
}

TEST(ParameterShardsTest, ChecksumFollowsTheValues) {
  auto shards = *ParameterShards::Create(MakePlan({Spec("w", {2})}, 1, Async(1)), 0, nullptr);
  auto twin = *ParameterShards::Create(MakePlan({Spec("w", {2})}, 1, Async(1)), 0, nullptr);
  EXPECT_EQ(shards->Checksum(), twin->Checksum());
  ASSERT_TRUE(shards->Push(0, 0, Filled({2}, 1.0f), 0).ok());
  EXPECT_NE(shards->Checksum(), twin->Checksum());
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.bytes() == b.bytes() && std::memcmp(a.raw_data(), b.raw_data(), a.bytes()) == 0;
}

// Values, slots and update counts of two snapshots are equal, byte for byte.
void ExpectSameState(const CheckpointSnapshot& got, const CheckpointSnapshot& want) {
  EXPECT_EQ(got.slot_names, want.slot_names);
  ASSERT_EQ(got.entries.size(), want.entries.size());
  for (size_t i = 0; i < got.entries.size(); ++i) {
    const SnapshotEntry& g = got.entries[i];
    const SnapshotEntry& w = want.entries[i];
    EXPECT_EQ(g.name, w.name);
    EXPECT_EQ(g.row_begin, w.row_begin);
    EXPECT_EQ(g.updates, w.updates) << g.name << " from row " << g.row_begin;
    EXPECT_TRUE(SameBytes(g.value, w.value)) << g.name << " from row " << g.row_begin;
    ASSERT_EQ(g.slots.size(), w.slots.size());
    for (size_t k = 0; k < g.slots.size(); ++k) {
      EXPECT_TRUE(SameBytes(g.slots[k], w.slots[k])) << g.name << " slot " << got.slot_names[k];
    }
  }
}

std::unique_ptr<CheckpointReader> OpenCheckpoint(const std::string& dir) {
  absl::StatusOr<std::unique_ptr<CheckpointReader>> reader =
      CheckpointReader::Open(DefaultFileSystem(), dir);
  EXPECT_TRUE(reader.ok()) << reader.status();
  return reader.ok() ? std::move(*reader) : nullptr;
}

// Adam keeps two slots and reads the update count (bias correction), so a
// restore that lost either shows in the next update.
PsPlan AdamPlan(std::vector<VariableSpec> specs, int num_ps, UpdateRules rules, int fixed_shards) {
  PsPlan plan = MakePlan(std::move(specs), num_ps, rules, fixed_shards);
  plan.optimizer.type = "adam";
  plan.optimizer.learning_rate = 0.1f;
  return plan;
}

TEST(ParameterShardsTest, SnapshotHoldsEveryPartitionWithItsSlotsAndVersion) {
  const PsPlan plan = AdamPlan({Spec("w", {10, 3}), Spec("t", {8, 2}, true)}, 1, Async(1), 2);
  auto shards = *ParameterShards::Create(plan, 0, nullptr);
  ASSERT_EQ(shards->num_slots(), 4);
  ASSERT_TRUE(shards->Push(0, 0, Filled(shards->shape(0), 1.0f), 0).ok());
  ASSERT_TRUE(shards->Push(0, 0, Filled(shards->shape(0), 2.0f), 1).ok());
  const int64_t row = shards->partition(3).row_begin;
  ASSERT_TRUE(shards->PushRows(0, 3, std::vector<int64_t>{row}, {1.0f, 1.0f}, 0).ok());
  const CheckpointSnapshot snapshot = shards->Snapshot();
  EXPECT_EQ(snapshot.slot_names, (std::vector<std::string>{"m", "v"}));
  ASSERT_EQ(snapshot.entries.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    const SnapshotEntry& e = snapshot.entries[i];
    EXPECT_EQ(e.name, shards->spec(i).name);
    EXPECT_EQ(e.shape, shards->spec(i).shape);  // the whole variable's
    EXPECT_EQ(e.row_begin, shards->partition(i).row_begin);
    EXPECT_EQ(e.value.shape(), shards->shape(i));
    ASSERT_EQ(e.slots.size(), 2u);
    EXPECT_EQ(e.updates, shards->version(i));
    std::vector<float> value(static_cast<size_t>(shards->shape(i).num_elements()));
    ASSERT_TRUE(shards->Read(i, absl::MakeSpan(value), 0, absl::InfiniteFuture()).ok());
    EXPECT_EQ(std::memcmp(value.data(), e.value.raw_data(), e.value.bytes()), 0);
  }
  EXPECT_EQ(snapshot.entries[0].updates, 2);
  EXPECT_EQ(snapshot.entries[1].updates, 0);
  EXPECT_EQ(snapshot.entries[3].updates, 1);
  // Adam's first moment is non-zero where an update landed, zero elsewhere.
  EXPECT_NE(snapshot.entries[0].slots[0].flat<float>()[0], 0.0f);
  EXPECT_EQ(snapshot.entries[1].slots[0].flat<float>()[0], 0.0f);
  // A copy: later pushes do not change it.
  ASSERT_TRUE(shards->Push(0, 0, Filled(shards->shape(0), 1.0f), 2).ok());
  EXPECT_EQ(snapshot.entries[0].updates, 2);
  EXPECT_FALSE(SameBytes(snapshot.entries[0].value, shards->Snapshot().entries[0].value));
}

TEST(ParameterShardsTest, RestoreBringsBackValuesSlotsAndVersionsSoUpdatesContinueExactly) {
  TempDir tmp;
  const PsPlan plan = AdamPlan({Spec("w", {10, 3}), Spec("t", {8, 2}, true)}, 1, Async(1), 2);
  auto shards = *ParameterShards::Create(plan, 0, nullptr);
  for (int64_t v = 0; v < 3; ++v)
    ASSERT_TRUE(shards->Push(0, 0, Filled(shards->shape(0), 0.5f), v).ok());
  // An update of no rows is a version, and counts as Adam's step like any other.
  ASSERT_TRUE(shards->PushRows(0, 2, {}, {}, 0).ok());
  const int64_t row = shards->partition(2).row_begin;
  const CheckpointSnapshot saved = shards->Snapshot();
  const std::string dir = CommitShards(tmp.path(), 3, {shards.get()});
  std::unique_ptr<CheckpointReader> checkpoint = OpenCheckpoint(dir);
  ASSERT_NE(checkpoint, nullptr);
  // The next updates from the saved state: what a restored shard must reproduce.
  auto next_updates = [row](ParameterShards& s) {
    ASSERT_TRUE(s.Push(0, 0, Filled(s.shape(0), 1.0f), 3).ok());
    ASSERT_TRUE(s.PushRows(0, 2, std::vector<int64_t>{row}, {1.0f, -1.0f}, 1).ok());
  };
  next_updates(*shards);
  const CheckpointSnapshot next = shards->Snapshot();
  for (int64_t v = 4; v < 9; ++v)
    ASSERT_TRUE(shards->Push(0, 0, Filled(shards->shape(0), 2.0f), v).ok());

  ASSERT_TRUE(shards->Restore(*checkpoint).ok());
  ExpectSameState(shards->Snapshot(), saved);
  EXPECT_EQ(shards->version(0), 3);
  EXPECT_EQ(shards->version(2), 1);
  next_updates(*shards);
  ExpectSameState(shards->Snapshot(), next);
  // A fresh ps (a restarted task) restores to the same state.
  auto fresh = *ParameterShards::Create(plan, 0, nullptr);
  ASSERT_TRUE(fresh->Restore(*checkpoint).ok());
  ExpectSameState(fresh->Snapshot(), saved);
  next_updates(*fresh);
  ExpectSameState(fresh->Snapshot(), next);
  EXPECT_EQ(fresh->Checksum(), shards->Checksum());
  // A read from before the restore's version is a malformed push now.
  EXPECT_EQ(fresh->Push(0, 0, Filled(fresh->shape(0), 1.0f), 7).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ParameterShardsTest, RestoreForgetsAPendingSynchronousStep) {
  TempDir tmp;
  const PsPlan plan = MakePlan({Spec("w", {2})}, 1, Sync(2, 2));
  auto shards = *ParameterShards::Create(plan, 0, nullptr);
  std::unique_ptr<CheckpointReader> checkpoint =
      OpenCheckpoint(CommitShards(tmp.path(), 0, {shards.get()}));
  ASSERT_NE(checkpoint, nullptr);
  const std::vector<float> before = ReadAll(*shards, 0);
  EXPECT_EQ(shards->Push(0, 0, Filled({2}, 100.0f), 0)->reason, PushOutcome::Reason::kPending);
  ASSERT_TRUE(shards->Restore(*checkpoint).ok());
  // Worker 0 may contribute again, and the step is the mean of the two new gradients only.
  EXPECT_EQ(shards->Push(0, 0, Filled({2}, 1.0f), 0)->reason, PushOutcome::Reason::kPending);
  EXPECT_EQ(shards->Push(1, 0, Filled({2}, 3.0f), 0)->reason, PushOutcome::Reason::kApplied);
  EXPECT_EQ(shards->version(0), 1);
  const std::vector<float> after = ReadAll(*shards, 0);
  for (int i = 0; i < 2; ++i)
    EXPECT_FLOAT_EQ(after[i], before[i] - 4.0f);  // (1 + 3) x 2 workers / 2
}

TEST(ParameterShardsTest, RestoreWakesAReaderWaitingForAVersion) {
  TempDir tmp;
  const PsPlan plan = MakePlan({Spec("w", {2})}, 1, Async(1));
  auto ahead = *ParameterShards::Create(plan, 0, nullptr);
  for (int64_t v = 0; v < 2; ++v) ASSERT_TRUE(ahead->Push(0, 0, Filled({2}, 1.0f), v).ok());
  std::unique_ptr<CheckpointReader> checkpoint =
      OpenCheckpoint(CommitShards(tmp.path(), 2, {ahead.get()}));
  ASSERT_NE(checkpoint, nullptr);
  auto behind = *ParameterShards::Create(plan, 0, nullptr);
  absl::StatusOr<int64_t> read;
  std::vector<float> out(2);
  std::thread reader(
      [&] { read = behind->Read(0, absl::MakeSpan(out), 2, absl::Now() + absl::Seconds(30)); });
  ASSERT_TRUE(behind->Restore(*checkpoint).ok());
  reader.join();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 2);
  EXPECT_EQ(out, ReadAll(*ahead, 0));
}

TEST(ParameterShardsTest, RestoreReadsACheckpointOfAnotherPartitioning) {
  TempDir tmp;
  // Written whole, by one ps...
  const PsPlan whole_plan = AdamPlan({Spec("w", {10, 3}), Spec("t", {8, 2}, true)}, 1, Async(1), 1);
  auto whole = *ParameterShards::Create(whole_plan, 0, nullptr);
  ASSERT_EQ(whole->num_slots(), 2);
  for (int64_t v = 0; v < 2; ++v) ASSERT_TRUE(whole->Push(0, 0, Filled({10, 3}, 0.5f), v).ok());
  ASSERT_TRUE(whole->PushRows(0, 1, std::vector<int64_t>{1, 6}, {1, 1, 2, 2}, 0).ok());
  const CheckpointSnapshot saved = whole->Snapshot();
  std::unique_ptr<CheckpointReader> checkpoint =
      OpenCheckpoint(CommitShards(tmp.path(), 2, {whole.get()}));
  ASSERT_NE(checkpoint, nullptr);
  // ...restored into two partitions of each variable on two ps tasks.
  const PsPlan split_plan = AdamPlan(whole_plan.specs, 2, Async(1), 2);
  int restored_rows = 0;
  for (int ps = 0; ps < 2; ++ps) {
    auto split = *ParameterShards::Create(split_plan, ps, nullptr);
    ASSERT_TRUE(split->Restore(*checkpoint).ok());
    const CheckpointSnapshot got = split->Snapshot();
    for (const SnapshotEntry& e : got.entries) {
      const SnapshotEntry& w = saved.entries[e.name == "w" ? 0 : 1];
      const size_t cols = static_cast<size_t>(e.shape.row_elements());
      const size_t offset = static_cast<size_t>(e.row_begin) * cols * sizeof(float);
      EXPECT_EQ(std::memcmp(e.value.raw_data(),
                            static_cast<const char*>(w.value.raw_data()) + offset, e.value.bytes()),
                0)
          << e.name << " from row " << e.row_begin;
      for (size_t k = 0; k < e.slots.size(); ++k) {
        EXPECT_EQ(std::memcmp(e.slots[k].raw_data(),
                              static_cast<const char*>(w.slots[k].raw_data()) + offset,
                              e.slots[k].bytes()),
                  0)
            << e.name << " slot " << k;
      }
      EXPECT_EQ(e.updates, w.updates) << e.name;
      restored_rows += static_cast<int>(e.value.rows());
    }
  }
  EXPECT_EQ(restored_rows, 10 + 8);
}

TEST(ParameterShardsTest, RestoreOfAnotherModelIsNotFoundAndChangesNothing) {
  TempDir tmp;
  auto other = *ParameterShards::Create(MakePlan({Spec("w", {4})}, 1, Async(1)), 0, nullptr);
  std::unique_ptr<CheckpointReader> checkpoint =
      OpenCheckpoint(CommitShards(tmp.path(), 0, {other.get()}));
  ASSERT_NE(checkpoint, nullptr);
  // "w" is in the checkpoint, "extra" is not: neither changes.
  auto shards = *ParameterShards::Create(
      MakePlan({Spec("w", {4}), Spec("extra", {3})}, 1, Async(1)), 0, nullptr);
  ASSERT_TRUE(shards->Push(0, 0, Filled({4}, 1.0f), 0).ok());
  const CheckpointSnapshot before = shards->Snapshot();
  const absl::Status status = shards->Restore(*checkpoint);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("no variable extra"));
  ExpectSameState(shards->Snapshot(), before);
  // A variable of another shape is refused the same way.
  auto reshaped = *ParameterShards::Create(MakePlan({Spec("w", {2, 2})}, 1, Async(1)), 0, nullptr);
  EXPECT_EQ(reshaped->Restore(*checkpoint).code(), absl::StatusCode::kInvalidArgument);
}

TEST(PsPlanTest, JsonRoundTripAndModelCheck) {
  UpdateRules rules = Async(3);
  rules.max_staleness = 2;
  rules.staleness_scaling = true;
  PsPlan plan = MakePlan({Spec("w", {6, 2}), Spec("t", {100, 4}, true)}, 2, rules, 3);
  plan.optimizer.momentum = 0.9f;
  plan.data_path = "grpc";
  absl::StatusOr<PsPlan> back = PsPlan::FromJson(plan.ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToJson(), plan.ToJson());
  EXPECT_EQ(back->placement.partitions().size(), plan.placement.partitions().size());
  EXPECT_EQ(back->rules.max_staleness, 2);
  EXPECT_TRUE(back->specs[1].sparse);
  EXPECT_EQ(back->data_path, "grpc");
  EXPECT_TRUE(back->CheckModel(plan.specs).ok());
  std::vector<VariableSpec> other = plan.specs;
  other[0].shape = Shape{6, 3};
  EXPECT_THAT(back->CheckModel(other).message(), HasSubstr("w[6, 3]"));
  EXPECT_FALSE(PsPlan::FromJson("{").ok());
  EXPECT_FALSE(PsPlan::FromJson("{\"variables\": 3}").ok());
}

// An elastic cluster without ps:0 (docs/fault_tolerance.md 5.10): one slot, held by ps:1.
TEST(PsPlanTest, TheSlotsOfAPlanOverTheSurvivingPsTasks) {
  PsPlan plan = MakePlan({Spec("w", {6, 2})}, 1, Async(2));
  EXPECT_EQ(plan.TaskOf(0), 0);  // no list: slot i is ps:i
  EXPECT_EQ(plan.SlotOf(1), -1);
  plan.ps_tasks = {1};
  absl::StatusOr<PsPlan> back = PsPlan::FromJson(plan.ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ps_tasks, std::vector<int>{1});
  EXPECT_EQ(back->TaskOf(0), 1);
  EXPECT_EQ(back->SlotOf(1), 0);
  EXPECT_EQ(back->SlotOf(0), -1);
  // A plan without the list (written before it existed) means 0..num_ps-1.
  nlohmann::json old = nlohmann::json::parse(plan.ToJson());
  old.erase("ps_tasks");
  back = PsPlan::FromJson(old.dump());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ps_tasks, std::vector<int>{0});
  for (const nlohmann::json& bad : {nlohmann::json::array({1, 2}), nlohmann::json::array({-1})}) {
    nlohmann::json j = nlohmann::json::parse(plan.ToJson());
    j["ps_tasks"] = bad;
    EXPECT_THAT(PsPlan::FromJson(j.dump()).status().message(), HasSubstr("ps_tasks")) << bad;
  }
}

TEST(UpdateRulesTest, InconsistentRulesAreRefused) {
  UpdateRules rules = Sync(2, 3);
  EXPECT_THAT(ValidateUpdateRules(rules).message(), HasSubstr("sync_replicas: 3 with 2"));
  rules = Sync(4, 3);
  rules.max_staleness = 1;
  EXPECT_THAT(ValidateUpdateRules(rules).message(), HasSubstr("no stale gradients"));
  rules = Async(2);
  rules.max_staleness = -2;
  EXPECT_FALSE(ValidateUpdateRules(rules).ok());
}

}  // namespace
}  // namespace meshtrain

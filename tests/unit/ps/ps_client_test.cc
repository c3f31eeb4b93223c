// A worker's client against in-process ps tasks, over gRPC and over dense
// links: values and updates match a local VariableStore bit for bit, rows come
// from the partitions holding them, synchronous steps with a backup worker
// run at the speed of the fast workers, and the ps tasks save their shards
// into one checkpoint (also while the worker trains) and restore them.
#include "runtime/ps/ps_client.h"

#include <cstring>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/base/file_system.h"
#include "runtime/base/status_macros.h"
#include "runtime/checkpoint/checkpoint_commit.h"
#include "runtime/optim/variable_store.h"
#include "runtime/transport/wire_codec.h"
#include "tests/unit/ps/ps_test_cluster.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::Spec;

using ::meshtrain::testing::PsTestCluster;

PsPlan TwoPsPlan() {
  PsPlan plan;
  plan.specs = {Spec("kernel", {6, 3}), Spec("bias", {3}), Spec("table", {20, 2}, true)};
  PlacementOptions placement;
  placement.num_ps = 2;
  placement.partitioning = {.fixed_shards = 2, .min_shard_bytes = 0, .max_shard_bytes = 0};
  plan.placement = *PlaceVariables(plan.specs, placement);
  plan.optimizer.learning_rate = 0.1f;
  plan.optimizer.momentum = 0.9f;
  plan.seed = 11;
  plan.rules.num_workers = 1;
  return plan;
}

Tensor Ramp(const Shape& shape, float scale) {
  Tensor t(DType::kFloat32, shape);
  float x = 0;
  for (float& v : t.flat<float>()) v = (x += 1) * scale;
  return t;
}

Tensor Ids(std::vector<int64_t> ids) {
  Tensor t(DType::kInt64, Shape{static_cast<int64_t>(ids.size())});
  std::copy(ids.begin(), ids.end(), t.data<int64_t>());
  return t;
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.bytes() == b.bytes() && std::memcmp(a.raw_data(), b.raw_data(), a.bytes()) == 0;
}

// The plan's variables in one local store, to replay the updates a ps applies.
struct LocalStore {
  explicit LocalStore(const PsPlan& plan)
      : kernels(*CreateKernels(Device::Cpu(0))),
        optimizer(*Optimizer::Create(plan.optimizer)),
        store(*kernels, *optimizer) {
    for (const VariableSpec& spec : plan.specs) EXPECT_TRUE(store.Add(spec).ok());
    EXPECT_TRUE(store.Initialize(plan.seed).ok());
  }
  std::unique_ptr<Kernels> kernels;
  std::unique_ptr<Optimizer> optimizer;
  VariableStore store;
};

class PsClientTest : public ::testing::TestWithParam<bool> {};

TEST_P(PsClientTest, UpdatesMatchALocalStoreBitForBit) {
  const PsPlan plan = TwoPsPlan();
  // Every variable is split over both ps tasks.
  for (int v = 0; v < 3; ++v) ASSERT_EQ(plan.placement.PartitionsOf(v).size(), 2u);
  PsTestCluster cluster(plan);
  std::unique_ptr<PsClient> client = cluster.Client(0, /*links=*/GetParam());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->data_path(), GetParam() ? "in_process" : "grpc");

  LocalStore reference(plan);
  Kernels* kernels = reference.kernels.get();
  VariableStore& local = reference.store;

  std::vector<Tensor> values = {Tensor(DType::kFloat32, Shape{6, 3}),
                                Tensor(DType::kFloat32, Shape{3}), Tensor()};
  ASSERT_TRUE(client->PullDense(absl::MakeSpan(values)).ok());
  EXPECT_TRUE(SameBytes(values[0], local.entry(0).value));
  EXPECT_TRUE(SameBytes(values[1], local.entry(1).value));

  for (int step = 0; step < 3; ++step) {
    // Rows from both partitions of the table, out of order.
    const Tensor ids = Ids({15, 1, 9 + step});
    absl::StatusOr<Tensor> rows = client->PullRows(2, ids);
    ASSERT_TRUE(rows.ok()) << rows.status();
    Tensor expected(DType::kFloat32, Shape{3, 2});
    kernels->GatherRows(local.entry(2).value, ids, expected);
    EXPECT_TRUE(SameBytes(*rows, expected)) << "step " << step;

    std::vector<Tensor> grads = {Ramp({6, 3}, 0.01f * (step + 1)), Ramp({3}, -0.1f), Tensor()};
    const Tensor row_grads = Ramp({3, 2}, 0.5f);
    std::vector<SparseGradient> sparse = {{2, ids, row_grads}};
    PushCounts counts;
    ASSERT_TRUE(client->Push(grads, sparse, absl::MakeSpan(values), &counts).ok());
    // Two dense partitions per variable, one table partition per touched ps.
    EXPECT_EQ(counts.pushes, 6);
    EXPECT_EQ(counts.applied, 6);
    local.Apply(0, grads[0]);
    local.Apply(1, grads[1]);
    ASSERT_TRUE(local.ApplySparse(2, ids, row_grads).ok());
    EXPECT_TRUE(SameBytes(values[0], local.entry(0).value)) << "step " << step;
    EXPECT_TRUE(SameBytes(values[1], local.entry(1).value)) << "step " << step;
  }
  absl::StatusOr<Tensor> all_rows = client->PullRows(2, Ids({0, 19, 10, 9, 11, 1, 15}));
  ASSERT_TRUE(all_rows.ok());
  Tensor expected(DType::kFloat32, Shape{7, 2});
  kernels->GatherRows(local.entry(2).value, Ids({0, 19, 10, 9, 11, 1, 15}), expected);
  EXPECT_TRUE(SameBytes(*all_rows, expected));
  EXPECT_FALSE(client->PullRows(2, Ids({20})).ok());
  EXPECT_FALSE(client->PullRows(0, Ids({1})).ok());  // dense: pulled whole

  absl::StatusOr<std::vector<PsTaskStats>> stats = client->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->size(), 2u);
  EXPECT_EQ((*stats)[0].stats.counts.pushes + (*stats)[1].stats.counts.pushes, 18);
  EXPECT_EQ((*stats)[0].stats.value_bytes + (*stats)[1].stats.value_bytes, (18 + 3 + 40) * 4);
  EXPECT_EQ((*stats)[0].checksum.size(), 8u);
  EXPECT_EQ((*stats)[0].stats.active_workers, 1);
  // The counters alone (what a waiting chief polls): no checksum read.
  absl::StatusOr<std::vector<PsTaskStats>> counters = client->Stats(/*with_checksum=*/false);
  ASSERT_TRUE(counters.ok()) << counters.status();
  EXPECT_EQ((*counters)[0].stats.counts.pushes, (*stats)[0].stats.counts.pushes);
  EXPECT_EQ((*counters)[0].checksum, "");
  ASSERT_TRUE(client->Leave().ok());
  // After leaving, pulls still work (over gRPC); pushes do not.
  ASSERT_TRUE(client->PullDense(absl::MakeSpan(values)).ok());
  EXPECT_TRUE(SameBytes(values[0], local.entry(0).value));
  PushCounts counts;
  EXPECT_FALSE(
      client->Push({Tensor(), Tensor(), Tensor()}, {}, absl::MakeSpan(values), &counts).ok());
}

// `t` as it looks after one trip over `dtype`, partition by partition of
// variable `v` (float16's scale is per message, one message per partition).
Tensor OverTheWire(const PsPlan& plan, int v, const Tensor& t, WireDtype dtype) {
  Tensor out(DType::kFloat32, t.shape());
  const int64_t cols = t.shape().rank() == 0 ? 1 : t.shape().row_elements();
  for (const Partition& p : plan.placement.PartitionsOf(v)) {
    absl::Span<const float> in = t.flat<float>().subspan(p.row_begin * cols, p.rows * cols);
    std::vector<std::byte> wire(WireBytes(dtype, in.size()));
    EncodeWire(dtype, in, absl::MakeSpan(wire));
    EXPECT_TRUE(
        DecodeWire(dtype, wire, out.flat<float>().subspan(p.row_begin * cols, in.size()), false)
            .ok());
  }
  return out;
}

// 16 bits on the wire: the ps applies the rounded gradient to its float32
// values, and the worker receives the rounded values; on both data paths.
TEST_P(PsClientTest, SixteenBitWireAppliesRoundedGradientsToFloat32Values) {
  for (WireDtype dtype : {WireDtype::kBFloat16, WireDtype::kFloat16}) {
    PsPlan plan = TwoPsPlan();
    plan.wire_dtype = dtype;
    PsTestCluster cluster(plan);
    std::unique_ptr<PsClient> client = cluster.Client(0, /*links=*/GetParam());
    ASSERT_NE(client, nullptr);
    LocalStore reference(plan);
    VariableStore& local = reference.store;
    std::vector<Tensor> values = {Tensor(DType::kFloat32, Shape{6, 3}),
                                  Tensor(DType::kFloat32, Shape{3}), Tensor()};
    ASSERT_TRUE(client->PullDense(absl::MakeSpan(values)).ok());
    for (int v = 0; v < 2; ++v) {
      EXPECT_TRUE(SameBytes(values[v], OverTheWire(plan, v, local.entry(v).value, dtype)));
    }
    for (int step = 0; step < 3; ++step) {
      // 1/3 is not a 16-bit number: the gradients are really rounded.
      std::vector<Tensor> grads = {Ramp({6, 3}, 0.01f / 3 * (step + 1)), Ramp({3}, -0.1f / 3),
                                   Tensor()};
      PushCounts counts;
      ASSERT_TRUE(client->Push(grads, {}, absl::MakeSpan(values), &counts).ok());
      for (int v = 0; v < 2; ++v) {
        const Tensor rounded = OverTheWire(plan, v, grads[v], dtype);
        EXPECT_FALSE(SameBytes(rounded, grads[v]));
        local.Apply(v, rounded);
        EXPECT_TRUE(SameBytes(values[v], OverTheWire(plan, v, local.entry(v).value, dtype)))
            << WireDtypeName(dtype) << " step " << step << " variable " << v;
      }
    }
    ASSERT_TRUE(client->Leave().ok());
  }
}

// The ps tasks' checksums, in task order.
std::vector<std::string> Checksums(PsClient& client) {
  std::vector<std::string> sums;
  absl::StatusOr<std::vector<PsTaskStats>> stats = client.Stats();
  EXPECT_TRUE(stats.ok()) << stats.status();
  for (const PsTaskStats& s : stats.ok() ? *stats : std::vector<PsTaskStats>{})
    sums.push_back(s.checksum);
  return sums;
}

// One dense step of `client` (kernel and bias of TwoPsPlan); the pushes' counts.
PushCounts DenseStep(PsClient& client, std::vector<Tensor>& values, float scale) {
  std::vector<Tensor> grads = {Ramp({6, 3}, scale), Ramp({3}, scale), Tensor()};
  PushCounts counts;
  const absl::Status pushed = client.Push(grads, {}, absl::MakeSpan(values), &counts);
  EXPECT_TRUE(pushed.ok()) << pushed;
  return counts;
}

TEST_P(PsClientTest, PsTasksSaveTheirShardsAndRestoreThem) {
  PsPlan plan = TwoPsPlan();
  plan.rules.num_workers = 2;
  PsTestCluster cluster(plan);
  std::unique_ptr<PsClient> chief = cluster.Client(0, GetParam());
  std::unique_ptr<PsClient> other = cluster.Client(1, GetParam());
  ASSERT_NE(chief, nullptr);
  ASSERT_NE(other, nullptr);
  std::vector<Tensor> values = {Tensor(DType::kFloat32, Shape{6, 3}),
                                Tensor(DType::kFloat32, Shape{3}), Tensor()};
  std::vector<Tensor> other_values = {Tensor(DType::kFloat32, Shape{6, 3}),
                                      Tensor(DType::kFloat32, Shape{3}), Tensor()};
  ASSERT_TRUE(chief->PullDense(absl::MakeSpan(values)).ok());
  ASSERT_TRUE(other->PullDense(absl::MakeSpan(other_values)).ok());
  for (int step = 0; step < 3; ++step) DenseStep(*chief, values, 0.01f);

  FileSystem& fs = DefaultFileSystem();
  const std::string dir = *PrepareCheckpointDir(fs, cluster.model_dir(), 3);
  absl::StatusOr<std::vector<PartRecord>> parts = chief->SaveShards(dir);
  ASSERT_TRUE(parts.ok()) << parts.status();
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].file.name, "ps-00000-of-00002.safetensors");
  EXPECT_EQ((*parts)[1].file.name, "ps-00001-of-00002.safetensors");
  Manifest manifest;
  manifest.step = 3;
  manifest.slot_names = {"momentum"};
  ASSERT_TRUE(CommitCheckpoint(fs, cluster.model_dir(), manifest, *parts, 0).ok());
  const std::vector<std::string> saved = Checksums(*chief);
  const Tensor saved_kernel = values[0].Clone();

  for (int step = 0; step < 4; ++step) DenseStep(*chief, values, 0.02f);
  DenseStep(*other, other_values, 0.03f);
  ASSERT_NE(Checksums(*chief), saved);
  ASSERT_TRUE(chief->RestoreShards(dir).ok());
  EXPECT_EQ(Checksums(*chief), saved);
  EXPECT_EQ(cluster.shards(0).version(0), 3);
  // The chief forgot its versions; another worker forgets its own. Both pull
  // the restored values and push from them without staleness.
  other->ForgetVersions();
  ASSERT_TRUE(chief->PullDense(absl::MakeSpan(values)).ok());
  ASSERT_TRUE(other->PullDense(absl::MakeSpan(other_values)).ok());
  EXPECT_TRUE(SameBytes(values[0], saved_kernel));
  EXPECT_TRUE(SameBytes(other_values[0], saved_kernel));
  const PushCounts chief_counts = DenseStep(*chief, values, 0.01f);
  EXPECT_EQ(chief_counts.applied, 4);
  EXPECT_EQ(chief_counts.staleness_sum, 0);
  const PushCounts other_counts = DenseStep(*other, other_values, 0.01f);
  EXPECT_EQ(other_counts.applied, 4);
  EXPECT_EQ(other_counts.staleness_sum,
            4);  // one update (the chief's) since its pull, per partition
  EXPECT_EQ(cluster.shards(0).version(0), 5);

  // Errors name the ps task and the directory.
  const std::string missing = JoinPath(cluster.model_dir(), "ckpt-77");
  absl::StatusOr<std::vector<PartRecord>> failed = chief->SaveShards(missing);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(failed.status().message()), ::testing::HasSubstr("ps:0 ("));
  EXPECT_THAT(std::string(failed.status().message()), ::testing::HasSubstr(missing));
  const absl::Status not_committed = chief->RestoreShards(missing);
  EXPECT_EQ(not_committed.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(not_committed.message()), ::testing::HasSubstr("restore shards from"));
}

TEST(PsClientRestoreTest, ASynchronousWorkerForgetsItsVersionsAfterARestoreElsewhere) {
  PsPlan plan;
  plan.specs = {Spec("table", {20, 2}, /*sparse=*/true)};
  plan.placement = *PlaceVariables(plan.specs, PlacementOptions{});
  plan.optimizer.learning_rate = 0.1f;
  plan.rules.num_workers = 2;
  plan.rules.sync_replicas = 1;
  PsTestCluster cluster(plan);
  std::unique_ptr<PsClient> chief = cluster.Client(0, /*links=*/false);
  std::unique_ptr<PsClient> other = cluster.Client(1, /*links=*/false);
  FileSystem& fs = DefaultFileSystem();
  const std::string dir = *PrepareCheckpointDir(fs, cluster.model_dir(), 0);
  absl::StatusOr<std::vector<PartRecord>> parts = chief->SaveShards(dir);
  ASSERT_TRUE(parts.ok()) << parts.status();
  ASSERT_TRUE(CommitCheckpoint(fs, cluster.model_dir(), Manifest(), *parts, 0)
                  .ok());  // plain SGD: no slots
  const Tensor ids = Ids({1, 2});
  std::vector<Tensor> values(1);
  auto step = [&]() -> absl::Status {
    absl::StatusOr<Tensor> rows = other->PullRows(0, ids);
    if (!rows.ok()) return rows.status();
    std::vector<SparseGradient> sparse = {{0, ids, Ramp({2, 2}, 0.1f)}};
    PushCounts counts;
    MESHTRAIN_RETURN_IF_ERROR(other->Push({Tensor()}, sparse, absl::MakeSpan(values), &counts));
    return counts.applied == 1 ? absl::OkStatus() : absl::InternalError("not applied");
  };
  for (int s = 0; s < 3; ++s) ASSERT_TRUE(step().ok());
  ASSERT_EQ(cluster.shards(0).version(0), 3);
  // Its next pull would wait for version 3, which the restored ps (at 0)
  // reaches only with pushes that wait for that pull.
  const absl::Status restored = chief->RestoreShards(dir);
  ASSERT_TRUE(restored.ok()) << restored;
  ASSERT_EQ(cluster.shards(0).version(0), 0);
  other->ForgetVersions();
  const absl::Status resumed = step();
  EXPECT_TRUE(resumed.ok()) << resumed;
  EXPECT_EQ(cluster.shards(0).version(0), 1);
}

TEST_P(PsClientTest, SaveShardsRunsOnAnotherThreadWhileTheWorkerPushes) {
  const PsPlan plan = TwoPsPlan();
  PsTestCluster cluster(plan);
  std::unique_ptr<PsClient> client = cluster.Client(0, GetParam());
  ASSERT_NE(client, nullptr);
  std::vector<Tensor> values = {Tensor(DType::kFloat32, Shape{6, 3}),
                                Tensor(DType::kFloat32, Shape{3}), Tensor()};
  ASSERT_TRUE(client->PullDense(absl::MakeSpan(values)).ok());
  FileSystem& fs = DefaultFileSystem();
  constexpr int kSaves = 5;
  std::vector<std::string> dirs;
  for (int i = 0; i < kSaves; ++i)
    dirs.push_back(*PrepareCheckpointDir(fs, cluster.model_dir(), i + 1));
  std::vector<absl::StatusOr<std::vector<PartRecord>>> saved(kSaves);
  std::thread saver([&] {
    for (int i = 0; i < kSaves; ++i) saved[i] = client->SaveShards(dirs[i]);
  });
  for (int step = 0; step < 20; ++step) DenseStep(*client, values, 0.01f);
  saver.join();
  // Every save produced a complete checkpoint (each partition copied whole,
  // under its lock) that commits and restores.
  for (int i = 0; i < kSaves; ++i) {
    ASSERT_TRUE(saved[i].ok()) << saved[i].status();
    Manifest manifest;
    manifest.step = i + 1;
    manifest.slot_names = {"momentum"};
    ASSERT_TRUE(CommitCheckpoint(fs, cluster.model_dir(), manifest, *saved[i], 0).ok());
  }
  ASSERT_TRUE(client->RestoreShards(dirs[kSaves - 1]).ok());
  ASSERT_TRUE(client->PullDense(absl::MakeSpan(values)).ok());
  EXPECT_EQ(DenseStep(*client, values, 0.01f).applied, 4);
}

INSTANTIATE_TEST_SUITE_P(GrpcAndLinks, PsClientTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Links" : "Grpc";
                         });

// Three workers, worker 2 slowed by a delay before each push. Returns how long
// the fast workers took for `steps` steps. The straggler pulls before the fast
// workers start, so its first gradients are computed from version 0; with a
// backup worker (sync_replicas < 3) it pushes them only once the fast workers
// have made a step, so they are late however the machine schedules threads.
absl::Duration RunSynchronousSteps(int sync_replicas, int steps, absl::Duration slow_delay,
                                   PushCounts* slow_counts, int64_t* final_version) {
  PsPlan plan;
  plan.specs = {Spec("w", {64, 16})};
  plan.placement = *PlaceVariables(plan.specs, PlacementOptions{});
  plan.optimizer.learning_rate = 0.01f;
  plan.rules.num_workers = 3;
  plan.rules.sync_replicas = sync_replicas;
  PsTestCluster cluster(plan);
  std::vector<std::unique_ptr<PsClient>> clients;
  for (int w = 0; w < 3; ++w) clients.push_back(cluster.Client(w, /*links=*/true));
  const bool backup = sync_replicas < 3;
  absl::Duration fast_time;
  absl::Mutex mu;
  absl::Notification straggler_pulled;
  std::vector<std::thread> workers;
  for (int w = 0; w < 3; ++w) {
    workers.emplace_back([&, w] {
      PsClient& client = *clients[w];
      std::vector<Tensor> values = {Tensor(DType::kFloat32, Shape{64, 16})};
      std::vector<Tensor> grads = {Ramp({64, 16}, 1e-4f)};
      PushCounts counts;
      if (w != 2) {
        ASSERT_TRUE(straggler_pulled.WaitForNotificationWithTimeout(absl::Seconds(30)));
      }
      const absl::Time start = absl::Now();
      ASSERT_TRUE(client.PullDense(absl::MakeSpan(values)).ok());
      if (w == 2) straggler_pulled.Notify();
      for (int step = 0; step < steps; ++step) {
        if (w == 2) {
          absl::SleepFor(slow_delay);  // the straggler, slowed on purpose
          const absl::Time deadline = absl::Now() + absl::Seconds(30);
          while (backup && step == 0 && cluster.shards(0).version(0) == 0) {
            ASSERT_LT(absl::Now(), deadline) << "the fast workers made no step";
            absl::SleepFor(absl::Milliseconds(1));
          }
        }
        absl::Status pushed = client.Push(grads, {}, absl::MakeSpan(values), &counts);
        ASSERT_TRUE(pushed.ok()) << "worker " << w << " step " << step << ": " << pushed;
      }
      ASSERT_TRUE(client.Leave().ok());
      absl::MutexLock lock(&mu);
      if (w == 2) {
        *slow_counts = counts;
      } else {
        fast_time = std::max(fast_time, absl::Now() - start);
      }
    });
  }
  for (std::thread& t : workers) t.join();
  *final_version = cluster.shards(0).version(0);
  return fast_time;
}

TEST(PsSyncReplicasTest, ABackupWorkerLetsStepsCompleteAtTheSpeedOfTheFastWorkers) {
  constexpr int kSteps = 12;
  const absl::Duration delay = absl::Milliseconds(100);
  PushCounts slow;
  int64_t version = 0;
  // sync_replicas = workers - 1: the two fast workers make every step.
  const absl::Duration with_backup = RunSynchronousSteps(2, kSteps, delay, &slow, &version);
  EXPECT_LT(with_backup, kSteps * delay / 2)
      << "the fast workers waited for the slow one: " << absl::FormatDuration(with_backup);
  // Each fast step applied once; the straggler's late gradients were dropped
  // (once the fast workers left, its own pushes make steps alone).
  EXPECT_GE(version, kSteps);
  EXPECT_GT(slow.dropped_stale, 0);
  // Without a backup worker every step waits for the straggler.
  const absl::Duration without = RunSynchronousSteps(3, kSteps, delay, &slow, &version);
  EXPECT_GE(without, (kSteps - 1) * delay);
  EXPECT_EQ(slow.dropped_stale, 0);
  EXPECT_EQ(version, kSteps);
}

}  // namespace
}  // namespace meshtrain

// ParameterServerStrategy against in-process ps tasks: with one worker it
// computes the update one_device computes, bit for bit, for a dense and for a
// sparse model (the ps tasks apply the same kernels to their partitions); a
// worker other than the chief waits for the chief's warm-up steps; the ps
// tasks write a checkpoint that one_device restores exactly, and that brings
// the ps tasks back (chief) and every worker's versions with them.
#include "strategies/parameter_server.h"

#include <atomic>
#include <cstring>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/checkpoint/checkpoint_commit.h"
#include "runtime/checkpoint/model_dir.h"
#include "runtime/data/synthetic.h"
#include "runtime/model/model.h"
#include "runtime/optim/optimizer.h"
#include "strategies/one_device.h"
#include "tests/unit/ps/ps_test_cluster.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::PsTestCluster;

constexpr int64_t kBatch = 32;
constexpr int kSteps = 5;

struct Job {
  Dataset data;
  ModelConfig model_config;
  ModelShape shape;
  OptimizerConfig optimizer;
};

Job DenseJob() {
  Job job;
  SyntheticOptions options;
  options.num_examples = kBatch * kSteps;
  options.num_features = 12;
  options.num_classes = 3;
  job.data = MakeSyntheticClassification(options);
  job.model_config.hidden_units = {16, 8};
  job.shape = ModelShape{12, 3};
  job.optimizer.learning_rate = 0.1f;
  job.optimizer.momentum = 0.9f;
  return job;
}

Job SparseJob() {
  Job job;
  SyntheticCtrOptions options;
  options.num_examples = kBatch * kSteps;
  options.num_fields = 4;
  options.vocabulary = 50;
  options.hash_buckets = 300;
  job.data = MakeSyntheticCtr(options);
  job.model_config.type = "embedding_ctr";
  job.model_config.embedding_rows = 300;
  job.model_config.embedding_dim = 4;
  job.shape = ModelShape{4, 0};
  job.optimizer.learning_rate = 0.5f;
  job.optimizer.momentum = 0.9f;
  return job;
}

Batch StepBatch(const Dataset& data, int step) {
  return Batch{data.inputs.Slice(step * kBatch, (step + 1) * kBatch),
               data.labels.Slice(step * kBatch, (step + 1) * kBatch)};
}

// Trains kSteps; returns every variable's final value, read through the strategy.
std::vector<Tensor> Train(const Job& job, Strategy& strategy) {
  auto model = CreateModel(job.model_config, job.shape, strategy);
  EXPECT_TRUE(model.ok()) << model.status();
  absl::Status built = strategy.Build();
  EXPECT_TRUE(built.ok()) << built;
  StepFn step = [&](ReplicaContext& ctx, const Batch& slice, float scale) {
    return (*model)->ComputeGradients(ctx, slice, scale);
  };
  for (int s = 0; s < kSteps; ++s) {
    absl::StatusOr<StepResult> result = strategy.Run(step, StepBatch(job.data, s), kBatch);
    EXPECT_TRUE(result.ok()) << result.status();
    EXPECT_TRUE(result->applied);
  }
  EXPECT_TRUE(strategy.Finish().ok());
  std::vector<Tensor> values;
  EXPECT_TRUE(strategy
                  .Read([&](ReplicaContext& ctx) -> absl::Status {
                    for (VariableId id = 0;
                         id < static_cast<VariableId>((*model)->variables().size()); ++id) {
                      const VariableSpec& spec = (*model)->variables()[id];
                      if (!spec.sparse) {
                        values.push_back(ctx.Value(id).Clone());
                        continue;
                      }
                      Tensor ids(DType::kInt64, Shape{spec.shape.dim(0)});
                      for (int64_t r = 0; r < spec.shape.dim(0); ++r) ids.data<int64_t>()[r] = r;
                      absl::StatusOr<Tensor> rows = ctx.ReadRows(id, ids);
                      if (!rows.ok()) return rows.status();
                      values.push_back(*rows);
                    }
                    return absl::OkStatus();
                  })
                  .ok());
  return values;
}

std::vector<VariableSpec> Specs(const Job& job) {
  struct Collect : VariableCreator {
    absl::StatusOr<VariableId> CreateVariable(const VariableSpec& spec) override {
      specs.push_back(spec);
      return static_cast<VariableId>(specs.size() - 1);
    }
    std::vector<VariableSpec> specs;
  } collect;
  EXPECT_TRUE(CreateModel(job.model_config, job.shape, collect).ok());
  return collect.specs;
}

PsPlan PlanFor(const Job& job, int num_ps, int num_workers, int64_t warmup_steps = 0) {
  PsPlan plan;
  plan.specs = Specs(job);
  PlacementOptions placement;
  placement.num_ps = num_ps;
  placement.partitioning = {.fixed_shards = 2, .min_shard_bytes = 0, .max_shard_bytes = 0};
  plan.placement = *PlaceVariables(plan.specs, placement);
  plan.optimizer = job.optimizer;
  plan.seed = 1234;
  plan.rules.num_workers = num_workers;
  plan.rules.warmup_steps = warmup_steps;
  return plan;
}

std::unique_ptr<ParameterServerStrategy> PsStrategy(PsTestCluster& cluster, int rank, int workers,
                                                    bool links, int64_t warmup_steps = 0) {
  ParameterServerStrategy::Options options;
  options.worker_rank = rank;
  options.num_workers = workers;
  options.warmup_steps = warmup_steps;
  options.connect = [&cluster, rank, links](const std::vector<VariableSpec>&) {
    return absl::StatusOr<std::unique_ptr<PsClient>>(cluster.Client(rank, links));
  };
  return *ParameterServerStrategy::Create(std::move(options));
}

void ExpectSameAsOneDevice(const Job& job, bool links) {
  const PsPlan plan = PlanFor(job, 2, 1);
  PsTestCluster cluster(plan);
  std::unique_ptr<ParameterServerStrategy> ps = PsStrategy(cluster, 0, 1, links);
  const std::vector<Tensor> got = Train(job, *ps);
  EXPECT_EQ(ps->counts().dropped(), 0);
  EXPECT_EQ(ps->counts().staleness_sum, 0);  // one worker: never stale

  std::unique_ptr<Optimizer> optimizer = *Optimizer::Create(job.optimizer);
  std::unique_ptr<OneDeviceStrategy> one =
      *OneDeviceStrategy::Create(Device::Cpu(0), *optimizer, plan.seed);
  const std::vector<Tensor> want = Train(job, *one);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].bytes(), want[i].bytes()) << plan.specs[i].name;
    EXPECT_EQ(std::memcmp(got[i].raw_data(), want[i].raw_data(), got[i].bytes()), 0)
        << plan.specs[i].name << " differs from one_device";
  }
}

TEST(ParameterServerStrategyTest, OneWorkerComputesWhatOneDeviceComputes) {
  ExpectSameAsOneDevice(DenseJob(), /*links=*/true);
  ExpectSameAsOneDevice(DenseJob(), /*links=*/false);
}

TEST(ParameterServerStrategyTest, SparseModelMatchesOneDeviceToo) {
  ExpectSameAsOneDevice(SparseJob(), /*links=*/true);
}

TEST(ParameterServerStrategyTest, InputShardAndReplicas) {
  PsTestCluster cluster(PlanFor(DenseJob(), 1, 3));
  std::unique_ptr<ParameterServerStrategy> ps = PsStrategy(cluster, 2, 3, true);
  EXPECT_EQ(ps->input_shard().num_shards, 3);
  EXPECT_EQ(ps->input_shard().shard_index, 2);
  EXPECT_EQ(ps->num_replicas_in_sync(), 3);
  ParameterServerStrategy::Options none;
  EXPECT_EQ(ParameterServerStrategy::Create(none).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ParameterServerStrategyTest, OtherWorkersWaitForTheChiefsWarmup) {
  constexpr int64_t kWarmup = 3;
  const Job job = DenseJob();
  PsTestCluster cluster(PlanFor(job, 1, 2, kWarmup));
  std::unique_ptr<ParameterServerStrategy> chief = PsStrategy(cluster, 0, 2, true, kWarmup);
  std::unique_ptr<ParameterServerStrategy> other = PsStrategy(cluster, 1, 2, true, kWarmup);
  auto chief_model = *CreateModel(job.model_config, job.shape, *chief);
  auto other_model = *CreateModel(job.model_config, job.shape, *other);
  ASSERT_TRUE(chief->Build().ok());
  ASSERT_TRUE(other->Build().ok());
  absl::StatusOr<StepResult> first;
  std::thread worker([&] {
    StepFn step = [&](ReplicaContext& ctx, const Batch& slice, float scale) {
      return other_model->ComputeGradients(ctx, slice, scale);
    };
    first = other->Run(step, StepBatch(job.data, 0), kBatch);
  });
  StepFn step = [&](ReplicaContext& ctx, const Batch& slice, float scale) {
    return chief_model->ComputeGradients(ctx, slice, scale);
  };
  for (int s = 0; s < kWarmup; ++s)
    ASSERT_TRUE(chief->Run(step, StepBatch(job.data, s), kBatch).ok());
  worker.join();
  ASSERT_TRUE(first.ok()) << first.status();
  // The worker waited for the chief's updates instead of pushing into the
  // warm-up: its first gradient counted, and was computed from the values
  // after them (read at version 3, not at Build()'s 0: no staleness).
  EXPECT_TRUE(first->applied);
  EXPECT_EQ(other->counts().dropped_warmup, 0);
  EXPECT_EQ(other->counts().staleness_sum, 0);
  EXPECT_EQ(other->counts().applied, other->counts().pushes);
  EXPECT_GE(cluster.shards(0).version(0), kWarmup + 1);
}

// Runs steps [from, to) of the job (batches wrap around the data).
void RunSteps(const Job& job, Model& model, Strategy& strategy, int from, int to) {
  StepFn step = [&](ReplicaContext& ctx, const Batch& slice, float scale) {
    return model.ComputeGradients(ctx, slice, scale);
  };
  for (int s = from; s < to; ++s) {
    absl::StatusOr<StepResult> result = strategy.Run(step, StepBatch(job.data, s % kSteps), kBatch);
    ASSERT_TRUE(result.ok()) << "step " << s << ": " << result.status();
  }
}

TEST(ParameterServerStrategyTest, TheChiefFinishesOnlyWhenEveryWorkerHasLeft) {
  const Job job = DenseJob();
  PsTestCluster cluster(PlanFor(job, 1, 2));
  std::unique_ptr<ParameterServerStrategy> chief = PsStrategy(cluster, 0, 2, true);
  std::unique_ptr<ParameterServerStrategy> other = PsStrategy(cluster, 1, 2, true);
  auto chief_model = *CreateModel(job.model_config, job.shape, *chief);
  auto other_model = *CreateModel(job.model_config, job.shape, *other);
  ASSERT_TRUE(chief->Build().ok());
  ASSERT_TRUE(other->Build().ok());
  RunSteps(job, *chief_model, *chief, 0, 2);
  std::atomic<bool> finished{false};
  absl::Status chief_finish;
  std::thread chief_thread([&] {
    chief_finish = chief->Finish();
    finished = true;
  });
  // The other worker still trains: the chief's Finish waits for it.
  RunSteps(job, *other_model, *other, 0, 3);
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(finished);
  const int64_t version = cluster.shards(0).version(0);
  ASSERT_TRUE(other->Finish().ok());
  chief_thread.join();
  ASSERT_TRUE(chief_finish.ok()) << chief_finish;
  EXPECT_EQ(version, 5);  // both workers' updates were in before the chief went on
}

// Every variable's value, read through the strategy (dense models).
std::vector<Tensor> DenseValues(Strategy& strategy, const Model& model) {
  std::vector<Tensor> values;
  const absl::Status read = strategy.Read([&](ReplicaContext& ctx) -> absl::Status {
    for (VariableId id = 0; id < static_cast<VariableId>(model.variables().size()); ++id) {
      values.push_back(ctx.Value(id).Clone());
    }
    return absl::OkStatus();
  });
  EXPECT_TRUE(read.ok()) << read;
  return values;
}

void ExpectSameValues(const std::vector<Tensor>& got, const std::vector<Tensor>& want,
                      const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].bytes(), want[i].bytes()) << what << ", variable " << i;
    EXPECT_EQ(std::memcmp(got[i].raw_data(), want[i].raw_data(), got[i].bytes()), 0)
        << what << ", variable " << i;
  }
}

// Writes `strategy`'s checkpoint of `step` into `model_dir` as the saver does.
absl::Status Save(Strategy& strategy, const std::string& model_dir, int64_t step) {
  absl::StatusOr<std::unique_ptr<CheckpointJob>> job = strategy.PrepareCheckpoint();
  if (!job.ok()) return job.status();
  Manifest manifest;
  manifest.step = step;
  manifest.strategy = strategy.name();
  manifest.num_ps = 2;
  manifest.optimizer = "sgd";
  return WriteCheckpoint(DefaultFileSystem(), model_dir, manifest, **job, 0);
}

TEST(ParameterServerStrategyTest, PsTasksWriteACheckpointThatOneDeviceAndThePsTasksRestore) {
  const Job job = DenseJob();
  const PsPlan plan = PlanFor(job, 2, 1);
  PsTestCluster cluster(plan);
  std::unique_ptr<ParameterServerStrategy> ps = PsStrategy(cluster, 0, 1, /*links=*/true);
  auto model = *CreateModel(job.model_config, job.shape, *ps);
  ASSERT_TRUE(ps->Build().ok());
  RunSteps(job, *model, *ps, 0, 3);

  absl::StatusOr<std::unique_ptr<CheckpointJob>> prepared = ps->PrepareCheckpoint();
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  EXPECT_EQ((*prepared)->slot_names(), std::vector<std::string>{"momentum"});
  int64_t value_bytes = 0;
  for (const Partition& p : plan.placement.partitions()) value_bytes += p.bytes;
  EXPECT_EQ((*prepared)->bytes(), 2 * value_bytes);  // values and momentum
  ASSERT_TRUE(Save(*ps, cluster.model_dir(), 3).ok());
  const std::string saved_checksum = *ps->ParameterChecksum();
  const std::vector<Tensor> saved = DenseValues(*ps, *model);
  absl::StatusOr<std::unique_ptr<CheckpointReader>> checkpoint =
      CheckpointReader::Open(DefaultFileSystem(), CheckpointPath(cluster.model_dir(), 3));
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  const Manifest& manifest = (*checkpoint)->manifest();
  ASSERT_EQ(manifest.files.size(), 2u);
  EXPECT_EQ(manifest.files[0].name, "ps-00000-of-00002.safetensors");
  EXPECT_EQ(manifest.files[1].name, "ps-00001-of-00002.safetensors");
  EXPECT_EQ(*(*checkpoint)->Updates("dense_0/kernel", 0), 3);
  // Where training would go from here.
  RunSteps(job, *model, *ps, 3, 5);
  const std::string later_checksum = *ps->ParameterChecksum();
  const std::vector<Tensor> later = DenseValues(*ps, *model);
  ASSERT_NE(later_checksum, saved_checksum);

  // (a) one_device restores exactly the ps tasks' values and momentum: it
  // holds the saved values and continues to the same ones.
  std::unique_ptr<Optimizer> optimizer = *Optimizer::Create(job.optimizer);
  std::unique_ptr<OneDeviceStrategy> one =
      *OneDeviceStrategy::Create(Device::Cpu(0), *optimizer, plan.seed);
  auto one_model = *CreateModel(job.model_config, job.shape, *one);
  ASSERT_TRUE(one->Build().ok());
  ASSERT_TRUE(one->Restore(**checkpoint).ok());
  ExpectSameValues(DenseValues(*one, *one_model), saved, "one_device after its restore");
  RunSteps(job, *one_model, *one, 3, 5);
  ExpectSameValues(DenseValues(*one, *one_model), later, "one_device two steps after its restore");

  // (b) The chief's restore brings the ps tasks back; training resumes bit
  // for bit (its first step computes from the values the restore pulled).
  RunSteps(job, *model, *ps, 5, 7);
  ASSERT_TRUE(ps->Restore(**checkpoint).ok());
  EXPECT_EQ(*ps->ParameterChecksum(), saved_checksum);
  RunSteps(job, *model, *ps, 3, 5);
  EXPECT_EQ(*ps->ParameterChecksum(), later_checksum);
  ExpectSameValues(DenseValues(*ps, *model), later, "parameter_server two steps after its restore");
}

TEST(ParameterServerStrategyTest, TheChiefRestoresThePsTasksAndTheOthersReadTheRestoredValues) {
  const Job job = DenseJob();
  PsTestCluster cluster(PlanFor(job, 2, 2));
  std::unique_ptr<ParameterServerStrategy> chief = PsStrategy(cluster, 0, 2, /*links=*/true);
  std::unique_ptr<ParameterServerStrategy> other = PsStrategy(cluster, 1, 2, /*links=*/false);
  auto chief_model = *CreateModel(job.model_config, job.shape, *chief);
  auto other_model = *CreateModel(job.model_config, job.shape, *other);
  ASSERT_TRUE(chief->Build().ok());
  ASSERT_TRUE(other->Build().ok());
  RunSteps(job, *chief_model, *chief, 0, 2);
  // The saver writes on its own thread while the chief keeps training.
  absl::Status saved;
  absl::StatusOr<std::unique_ptr<CheckpointJob>> prepared = chief->PrepareCheckpoint();
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  std::thread saver([&] {
    Manifest manifest;
    manifest.step = 2;
    saved = WriteCheckpoint(DefaultFileSystem(), cluster.model_dir(), manifest, **prepared, 0);
  });
  RunSteps(job, *chief_model, *chief, 2, 4);
  saver.join();
  ASSERT_TRUE(saved.ok()) << saved;
  RunSteps(job, *other_model, *other, 0, 1);
  absl::StatusOr<std::unique_ptr<CheckpointReader>> checkpoint =
      CheckpointReader::Open(DefaultFileSystem(), CheckpointPath(cluster.model_dir(), 2));
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();

  // Only the chief restores the ps tasks; the other worker forgets the
  // versions it read (now ahead of the ps tasks') and pulls.
  ASSERT_TRUE(chief->Restore(**checkpoint).ok());
  const std::string restored = *chief->ParameterChecksum();
  ASSERT_TRUE(other->Restore(**checkpoint).ok());
  EXPECT_EQ(*other->ParameterChecksum(),
            restored);  // the other's restore changed nothing on the ps
  const PushCounts before = other->counts();
  RunSteps(job, *other_model, *other, 1, 2);
  // Its step was computed from the restored values (no staleness) and applied.
  EXPECT_GT(other->counts().pushes, before.pushes);
  EXPECT_EQ(other->counts().applied - before.applied, other->counts().pushes - before.pushes);
  EXPECT_EQ(other->counts().staleness_sum, before.staleness_sum);
  EXPECT_NE(*chief->ParameterChecksum(), restored);
}

}  // namespace
}  // namespace meshtrain

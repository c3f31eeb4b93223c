// Checkpoints through the Strategy interface: what one strategy writes another
// restores exactly (values, slots, update counts), and a resumed run continues
// bit for bit as if it had never stopped.
#include "strategies/store_checkpoint.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/checkpoint/checkpoint_commit.h"
#include "runtime/checkpoint/model_dir.h"
#include "runtime/data/synthetic.h"
#include "runtime/model/model.h"
#include "runtime/tensor/cpu_kernels.h"
#include "strategies/central_storage.h"
#include "strategies/mirrored.h"
#include "strategies/one_device.h"
#include "tests/unit/checkpoint/temp_dir.h"

namespace meshtrain {
namespace {

constexpr int64_t kBatch = 64;
constexpr uint64_t kSeed = 5;

using ::meshtrain::testing::TempDir;

struct Job {
  Dataset data =
      MakeSyntheticClassification({.num_examples = 1024, .num_features = 16, .num_classes = 4});
  ModelConfig model_config{.type = "mlp", .hidden_units = {12}};
  std::unique_ptr<Optimizer> optimizer =
      *Optimizer::Create({.type = "adam", .learning_rate = 0.01f});
};

struct Trainer {
  std::unique_ptr<Strategy> strategy;
  std::unique_ptr<Model> model;
};

Trainer Make(Job& job, const std::string& kind) {
  Trainer t;
  if (kind == "one_device") {
    t.strategy = *OneDeviceStrategy::Create(Device::Cpu(0), *job.optimizer, kSeed);
  } else if (kind == "mirrored") {
    MirroredStrategy::Options options;
    options.devices = {Device::Cpu(0), Device::Cpu(1)};
    options.optimizer = job.optimizer.get();
    options.seed = kSeed;
    t.strategy = *MirroredStrategy::Create(std::move(options));
  } else {
    CentralStorageStrategy::Options options;
    options.compute_devices = {Device::Cpu(0), Device::Cpu(1)};
    options.optimizer = job.optimizer.get();
    options.seed = kSeed;
    t.strategy = *CentralStorageStrategy::Create(std::move(options));
  }
  t.model = *CreateModel(job.model_config, {16, 4}, *t.strategy);
  EXPECT_TRUE(t.strategy->Build().ok());
  return t;
}

void Train(Job& job, Trainer& t, int64_t from, int64_t to) {
  StepFn step = [&t](ReplicaContext& ctx, const Batch& slice, float scale) {
    return t.model->ComputeGradients(ctx, slice, scale);
  };
  for (int64_t s = from; s < to; ++s) {
    const int64_t begin = (s * kBatch) % job.data.size();
    Batch batch{job.data.inputs.Slice(begin, begin + kBatch),
                job.data.labels.Slice(begin, begin + kBatch)};
    ASSERT_TRUE(t.strategy->Run(step, batch, kBatch).ok());
  }
}

std::string Save(Trainer& t, const std::string& dir, int64_t step) {
  auto job = t.strategy->PrepareCheckpoint();
  EXPECT_TRUE(job.ok()) << job.status();
  Manifest manifest;
  manifest.step = step;
  manifest.strategy = t.strategy->name();
  manifest.optimizer = "adam";
  EXPECT_TRUE(WriteCheckpoint(DefaultFileSystem(), dir, manifest, **job, 0).ok());
  return CheckpointPath(dir, step);
}

TEST(StoreCheckpointTest, OneDeviceResumesBitForBit) {
  Job job;
  TempDir tmp;
  Trainer straight = Make(job, "one_device");
  Train(job, straight, 0, 5);
  const std::string ckpt = Save(straight, tmp.path(), 5);
  Train(job, straight, 5, 12);

  Trainer resumed = Make(job, "one_device");
  EXPECT_NE(*resumed.strategy->ParameterChecksum(), *straight.strategy->ParameterChecksum());
  auto reader = CheckpointReader::Open(DefaultFileSystem(), ckpt);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_THAT((*reader)->manifest().slot_names, ::testing::ElementsAre("m", "v"));
  ASSERT_TRUE(resumed.strategy->Restore(**reader).ok());
  // Adam's bias correction reads the update count: a resume that lost it
  // would drift from here.
  EXPECT_EQ(*(*reader)->Updates("dense_0/kernel", 0), 5);
  Train(job, resumed, 5, 12);
  EXPECT_EQ(*resumed.strategy->ParameterChecksum(), *straight.strategy->ParameterChecksum());
}

TEST(StoreCheckpointTest, EveryStrategyRestoresWhatAnotherWrote) {
  Job job;
  TempDir tmp;
  Trainer writer = Make(job, "mirrored");
  Train(job, writer, 0, 4);
  const std::string expected = *writer.strategy->ParameterChecksum();
  const std::string ckpt = Save(writer, tmp.path(), 4);
  auto reader = CheckpointReader::Open(DefaultFileSystem(), ckpt);
  ASSERT_TRUE(reader.ok()) << reader.status();
  for (const std::string kind : {"one_device", "mirrored", "central_storage"}) {
    SCOPED_TRACE(kind);
    Trainer t = Make(job, kind);
    ASSERT_TRUE(t.strategy->Restore(**reader).ok());
    EXPECT_EQ(*t.strategy->ParameterChecksum(), expected);
    if (kind == "mirrored") {
      auto& mirrored = static_cast<MirroredStrategy&>(*t.strategy);
      EXPECT_EQ(mirrored.store(1).Checksum(), expected);
      EXPECT_EQ(mirrored.store(1).entry(0).updates, 4);
    }
    // And it trains on from there.
    Train(job, t, 4, 6);
    EXPECT_NE(*t.strategy->ParameterChecksum(), expected);
  }
}

// A store of row partitions (as a ps shard holds them) restores from a
// checkpoint of whole variables, and its own snapshot restores into one device.
TEST(StoreCheckpointTest, PartitionedStoresRestoreAcrossLayouts) {
  Job job;
  TempDir tmp;
  Trainer writer = Make(job, "one_device");
  Train(job, writer, 0, 3);
  auto reader = CheckpointReader::Open(DefaultFileSystem(), Save(writer, tmp.path(), 3));
  ASSERT_TRUE(reader.ok());

  auto kernels = CreateCpuKernels(Device::Cpu(0));
  VariableStore parts(*kernels, *job.optimizer);
  for (const VariableSpec& spec : writer.model->variables()) {
    const int64_t rows = spec.shape.dim(0);
    ASSERT_TRUE(parts.Add(spec, 0, rows / 3).ok());
    ASSERT_TRUE(parts.Add(spec, rows / 3).ok());
  }
  ASSERT_TRUE(parts.Initialize(kSeed).ok());
  ASSERT_TRUE(RestoreStore(**reader, parts).ok());

  auto snapshot = SnapshotStore(parts);
  ASSERT_TRUE(snapshot.ok());
  LocalSnapshotJob partitioned(std::move(*snapshot));
  Manifest manifest;
  manifest.step = 4;
  manifest.optimizer = "adam";
  ASSERT_TRUE(WriteCheckpoint(DefaultFileSystem(), tmp.path(), manifest, partitioned, 0).ok());
  auto again = CheckpointReader::Open(DefaultFileSystem(), CheckpointPath(tmp.path(), 4));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->Find("dense_0/kernel")->partitions.size(), 2u);
  Trainer t = Make(job, "one_device");
  ASSERT_TRUE(t.strategy->Restore(**again).ok());
  EXPECT_EQ(*t.strategy->ParameterChecksum(), *writer.strategy->ParameterChecksum());
}

// Writes `pending` as a checkpoint and returns the checksum of one device
// restored from it.
std::string RestoredChecksum(Job& job, std::unique_ptr<CheckpointJob>& pending) {
  TempDir tmp;
  Manifest manifest;
  manifest.step = 1;
  manifest.optimizer = "adam";
  EXPECT_TRUE(WriteCheckpoint(DefaultFileSystem(), tmp.path(), manifest, *pending, 0).ok());
  pending.reset();
  Trainer restored = Make(job, "one_device");
  auto reader = CheckpointReader::Open(DefaultFileSystem(), CheckpointPath(tmp.path(), 1));
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return "";
  EXPECT_TRUE(restored.strategy->Restore(**reader).ok());
  return *restored.strategy->ParameterChecksum();
}

// A deferred snapshot is copied once, by the saver's thread or by the next
// step's update (whichever comes first); either way the checkpoint holds the
// step boundary, not the values after the step.
TEST(StoreCheckpointTest, ADeferredSnapshotHoldsTheStepBoundaryWhoeverCopiesIt) {
  for (const std::string kind : {"one_device", "mirrored", "central_storage"}) {
    for (const bool saver_first : {true, false}) {
      SCOPED_TRACE(kind + (saver_first ? ": the saver copies" : ": the step copies"));
      Job job;
      Trainer t = Make(job, kind);
      Train(job, t, 0, 3);
      const std::string at_boundary = *t.strategy->ParameterChecksum();
      auto pending = t.strategy->PrepareCheckpoint();
      ASSERT_TRUE(pending.ok());
      if (saver_first) ASSERT_TRUE((*pending)->Capture().ok());
      Train(job, t, 3, 4);
      EXPECT_NE(*t.strategy->ParameterChecksum(), at_boundary);
      EXPECT_EQ(RestoredChecksum(job, *pending), at_boundary);
    }
  }
}

// The saver's thread and the step race for the copy; one of them makes it.
TEST(StoreCheckpointTest, TheCopyIsMadeOnceWhenTheSaverAndTheStepRace) {
  Job job;
  Trainer t = Make(job, "mirrored");
  Train(job, t, 0, 2);
  for (int round = 0; round < 20; ++round) {
    const std::string at_boundary = *t.strategy->ParameterChecksum();
    auto pending = t.strategy->PrepareCheckpoint();
    ASSERT_TRUE(pending.ok());
    std::thread saver([&] { EXPECT_TRUE((*pending)->Capture().ok()); });
    Train(job, t, 2 + round, 3 + round);
    saver.join();
    ASSERT_EQ(RestoredChecksum(job, *pending), at_boundary) << "round " << round;
  }
}

TEST(StoreCheckpointTest, AMissingVariableIsNamed) {
  Job job;
  TempDir tmp;
  Trainer writer = Make(job, "one_device");
  auto reader = CheckpointReader::Open(DefaultFileSystem(), Save(writer, tmp.path(), 1));
  ASSERT_TRUE(reader.ok());
  job.model_config.hidden_units = {12, 4};  // dense_1 keeps its shape; dense_2 is new
  Trainer bigger = Make(job, "one_device");
  absl::Status s = bigger.strategy->Restore(**reader);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("dense_2/kernel"));
}

}  // namespace
}  // namespace meshtrain

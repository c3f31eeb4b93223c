// CheckpointSaver: saves fall due by steps, never make a step wait for a write
// in flight (they are deferred instead), SaveNow waits and commits, and a
// strategy without checkpoints trains on.
#include "training/checkpoint_saver.h"

#include <unistd.h>

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/checkpoint/fault_injection_file_system.h"
#include "runtime/checkpoint/model_dir.h"
#include "runtime/model/model.h"
#include "strategies/one_device.h"
#include "tests/unit/checkpoint/temp_dir.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::TempDir;

StepRecord Step(int64_t step) {
  const absl::Time now = absl::Now();
  return StepRecord{step, InputPosition{0, step}, 64, nullptr, now - absl::Milliseconds(1), now};
}

TEST(CheckpointSaverTest, DefersSavesWhileOneIsWritingAndCommitsTheFinalOne) {
  TempDir tmp;
  auto optimizer = *Optimizer::Create({.type = "sgd", .learning_rate = 0.1f, .momentum = 0.9f});
  auto strategy = *OneDeviceStrategy::Create(Device::Cpu(0), *optimizer, 3);
  auto model = *CreateModel({.type = "mlp", .hidden_units = {8}}, {4, 3}, *strategy);
  ASSERT_TRUE(strategy->Build().ok());
  // Each fsync sleeps: one save lasts a good part of a second.
  FaultInjectionFileSystem slow(DefaultFileSystem(), {.sync_delay = absl::Milliseconds(60)});
  CheckpointSaverOptions options;
  options.model_dir = tmp.path();
  options.every_steps = 1;
  options.fs = &slow;
  options.tasks = {"worker:0"};
  options.base.optimizer = "sgd";
  options.meta = [] { return nlohmann::json{{"restarts", 0}}; };
  CheckpointSaver saver(*strategy, options);
  saver.Start();
  for (int64_t s = 1; s <= 5; ++s) {
    const absl::Time before = absl::Now();
    ASSERT_TRUE(saver.OnStepEnd(Step(s)).ok());
    // The step boundary never waits for the disk.
    EXPECT_LT(absl::Now() - before, absl::Milliseconds(50)) << "step " << s;
  }
  ASSERT_TRUE(saver.SaveNow(5, {0, 5}, /*final=*/true).ok());
  EXPECT_EQ(saver.last_committed(), 5);
  const CheckpointStats stats = saver.stats();
  EXPECT_EQ(stats.saves, 2);  // step 1, then the final one
  EXPECT_EQ(stats.deferred, 4);
  EXPECT_EQ(stats.failures, 0);
  auto latest = FindLatestCheckpoint(DefaultFileSystem(), tmp.path());
  ASSERT_TRUE(latest.ok());
  ASSERT_NE(latest->reader, nullptr);
  EXPECT_EQ(latest->reader->step(), 5);
  EXPECT_TRUE(latest->reader->manifest().final);
  EXPECT_EQ(latest->reader->manifest().task_inputs.at("worker:0").step, 5);
  EXPECT_EQ(latest->reader->manifest().meta["restarts"], 0);
  saver.Stop();
}

TEST(CheckpointSaverTest, AFullDiskIsRetriedAtTheNextIntervalWhileTrainingGoesOn) {
  TempDir tmp;
  auto optimizer = *Optimizer::Create({.type = "sgd", .learning_rate = 0.1f, .momentum = 0.9f});
  auto strategy = *OneDeviceStrategy::Create(Device::Cpu(0), *optimizer, 3);
  auto model = *CreateModel({.type = "mlp", .hidden_units = {8}}, {4, 3}, *strategy);
  ASSERT_TRUE(strategy->Build().ok());
  FaultInjectionFileSystem full(DefaultFileSystem(), {.free_bytes = 100});
  CheckpointSaverOptions options;
  options.model_dir = tmp.path();
  options.every_steps = 2;
  options.fs = &full;
  options.tasks = {"worker:0"};
  CheckpointSaver saver(*strategy, options);
  saver.Start();
  ASSERT_TRUE(saver.OnStepEnd(Step(1)).ok());
  ASSERT_TRUE(saver.OnStepEnd(Step(2)).ok());  // due: written in the background, fails
  // SaveNow waits for that write, then fails the same way and says why.
  const absl::Status status = saver.SaveNow(3, {0, 3}, /*final=*/false);
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  const std::string message(status.message());
  EXPECT_THAT(message, ::testing::HasSubstr("no space left in " + tmp.path()));
  EXPECT_THAT(message, ::testing::HasSubstr("needs about"));
  EXPECT_THAT(message, ::testing::HasSubstr("100 are free"));
  EXPECT_THAT(message, ::testing::HasSubstr("--model-dir"));
  EXPECT_EQ(saver.stats().failures, 2);
  EXPECT_EQ(saver.last_committed(), -1);
  EXPECT_FALSE(full.Exists(CheckpointPath(tmp.path(), 2)));
  EXPECT_FALSE(full.Exists(CheckpointPath(tmp.path(), 3)));
  // Space comes back: the next interval (step 5) commits.
  full.SetFreeBytes(-1);
  ASSERT_TRUE(saver.OnStepEnd(Step(4)).ok());
  ASSERT_TRUE(saver.OnStepEnd(Step(5)).ok());
  saver.Stop();  // the write in flight finishes
  EXPECT_EQ(saver.last_committed(), 5);
  EXPECT_EQ(saver.stats().saves, 1);
  EXPECT_EQ(saver.stats().failures, 2);
}

// A strategy of another kind, not checkpointing yet.
class NoCheckpoints final : public Strategy {
 public:
  absl::StatusOr<VariableId> CreateVariable(const VariableSpec&) override { return 0; }
  std::string name() const override { return "no_checkpoints"; }
  int num_replicas_in_sync() const override { return 1; }
  InputShard input_shard() const override { return {}; }
  absl::Status Build() override { return absl::OkStatus(); }
  absl::StatusOr<StepResult> Run(const StepFn&, const Batch&, int64_t) override {
    return StepResult();
  }
  absl::Status Read(const std::function<absl::Status(ReplicaContext&)>&) override {
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ParameterChecksum() override { return std::string("0"); }
  void Describe(nlohmann::json&) const override {}
};

TEST(CheckpointSaverTest, AStrategyWithoutCheckpointsTrainsOn) {
  TempDir tmp;
  NoCheckpoints strategy;
  CheckpointSaverOptions options;
  options.model_dir = tmp.path();
  options.every_steps = 1;
  CheckpointSaver saver(strategy, options);
  saver.Start();
  EXPECT_TRUE(saver.OnStepEnd(Step(1)).ok());
  EXPECT_TRUE(saver.SaveNow(1, {0, 1}, true).ok());
  EXPECT_EQ(saver.last_committed(), -1);
  EXPECT_TRUE(ListCheckpointDirs(DefaultFileSystem(), tmp.path())->empty());
}

}  // namespace
}  // namespace meshtrain

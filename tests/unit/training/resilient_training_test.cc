// Resilient training on a lone process: checkpoints, a resume from the newest
// one, and a corrupt newest checkpoint skipped for the one before it. (The
// recoveries of a cluster are tested on real processes:
// tests/integration/test_fault_tolerance.py and test_ps_fault_tolerance.py.)
#include "training/resilient_training.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/base/abort_signal.h"
#include "runtime/optim/optimizer.h"
#include "strategies/strategy_builder.h"
#include "training/job_config.h"
#include "training/job_data.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

// 512 examples in global batches of 64: 8 steps an epoch.
constexpr char kJob[] = R"({
  "name": "resilience_test",
  "data": {"dataset": "synthetic", "train_examples": 512, "test_examples": 128, "features": 8,
           "num_classes": 3},
  "model": {"type": "mlp", "hidden_units": [8]},
  "optimizer": {"type": "sgd", "learning_rate": 0.05, "momentum": 0.9},
  "training": {"global_batch_size": 64, "epochs": 2, "seed": 3},
  "strategy": {"name": "one_device"}
})";

class ResilientTrainingTest : public ::testing::Test {
 protected:
  // A directory of this test's own: ctest runs the cases of this binary in
  // parallel processes, which must not share one.
  ResilientTrainingTest()
      : model_dir_(::testing::TempDir() + "/resilient_training_test_" +
                   ::testing::UnitTest::GetInstance()->current_test_info()->name()) {
    std::filesystem::remove_all(model_dir_);
    job_ = *ParseJobConfig(kJob, "test job");
    data_ = *LoadJobData(job_.data, job_.training.seed);
    optimizer_ = *Optimizer::Create(job_.optimizer);
  }

  // A lone process's run of `epochs`, checkpointing every 5 steps.
  absl::StatusOr<ResilientRun> Train(int64_t epochs, bool restore_existing = true) {
    job_.training.epochs = epochs;
    auto strategies = StrategyBuilder::Create(job_.strategy);
    if (!strategies.ok()) return strategies.status();
    strategies_ = *std::move(strategies);
    TrainingTask task;
    task.job = &job_;
    task.cluster = &cluster_;
    task.abort = &abort_;
    task.data = &data_;
    task.optimizer = optimizer_.get();
    task.strategies = strategies_.get();
    task.training.epochs = epochs;
    task.training.global_batch_size = job_.training.global_batch_size;
    task.training.seed = job_.training.seed;
    ResilienceOptions options;
    options.model_dir = model_dir_;
    options.checkpoint_every_steps = 5;
    options.restore_existing = restore_existing;
    return RunResilientTraining(task, options);
  }

  // Flips a byte in every tensor file of ckpt-`step`.
  void CorruptTensorFiles(int64_t step) {
    const std::string dir = model_dir_ + "/ckpt-" + std::to_string(step);
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.path().extension() != ".safetensors") continue;
      std::fstream file(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
      file.seekg(-1, std::ios::end);
      const char last = static_cast<char>(file.get());
      file.seekp(-1, std::ios::end);
      file.put(static_cast<char>(last ^ 0x01));
    }
  }

  std::string model_dir_;
  JobConfig job_;
  JobData data_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<StrategyBuilder> strategies_;
  ClusterConfig cluster_ = ClusterConfig::Local();
  AbortSignal abort_;
};

TEST_F(ResilientTrainingTest, ResumesFromTheNewestCheckpoint) {
  auto first = Train(1);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->report.final_step, 8);
  EXPECT_TRUE(first->fault_tolerance["restored_from_step"].is_null()) << first->fault_tolerance;
  // Every 5 steps, and the final one.
  EXPECT_TRUE(std::filesystem::exists(model_dir_ + "/ckpt-5/index.json"));
  EXPECT_TRUE(std::filesystem::exists(model_dir_ + "/ckpt-8/index.json"));

  auto second = Train(2);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->fault_tolerance["restored_from_step"], 8) << second->fault_tolerance;
  EXPECT_EQ(second->report.final_step, 16);
  ASSERT_EQ(second->report.epochs.size(), 1u);  // only epoch 2 ran
  EXPECT_EQ(second->report.epochs[0].epoch, 2);
  EXPECT_TRUE(std::filesystem::exists(model_dir_ + "/ckpt-16/index.json"));
}

TEST_F(ResilientTrainingTest, ACorruptNewestCheckpointIsSkippedForTheOneBefore) {
  ASSERT_TRUE(Train(1).ok());
  CorruptTensorFiles(8);
  auto resumed = Train(2);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->fault_tolerance["restored_from_step"], 5) << resumed->fault_tolerance;
  EXPECT_EQ(resumed->report.final_step, 16);
}

// Training once started from scratch, exit 0, when every checkpoint was corrupt.
TEST_F(ResilientTrainingTest, EveryCheckpointCorruptIsRefusedNamingTheFiles) {
  ASSERT_TRUE(Train(1).ok());
  CorruptTensorFiles(5);
  CorruptTensorFiles(8);
  auto refused = Train(2);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
  const std::string message(refused.status().message());
  EXPECT_THAT(message, HasSubstr("every checkpoint in " + model_dir_ + " is corrupt"));
  EXPECT_THAT(message, HasSubstr(model_dir_ + "/ckpt-8/"));
  EXPECT_THAT(message, HasSubstr(model_dir_ + "/ckpt-5/"));
  EXPECT_THAT(message, HasSubstr("--restore none"));
  EXPECT_TRUE(std::filesystem::exists(model_dir_ + "/ckpt-8/index.json"));  // nothing deleted
}

TEST_F(ResilientTrainingTest, RestoreNoneStartsFromTheInitialValues) {
  ASSERT_TRUE(Train(1).ok());
  CorruptTensorFiles(8);
  auto fresh = Train(2, /*restore_existing=*/false);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_TRUE(fresh->fault_tolerance["restored_from_step"].is_null()) << fresh->fault_tolerance;
  EXPECT_EQ(fresh->report.final_step, 16);
  ASSERT_EQ(fresh->report.epochs.size(), 2u);  // both epochs ran
}

TEST_F(ResilientTrainingTest, AManifestWhoseStepDisagreesWithItsDirectoryIsNotRestored) {
  ASSERT_TRUE(Train(1).ok());
  std::filesystem::rename(model_dir_ + "/ckpt-8", model_dir_ + "/ckpt-30");
  auto resumed = Train(2);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->fault_tolerance["restored_from_step"], 5) << resumed->fault_tolerance;
}

}  // namespace
}  // namespace meshtrain

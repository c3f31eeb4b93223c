// The training loop on one process: OneDevice and Mirrored (two CPU replicas)
// strategies, a small MLP on a synthetic task. One device is deterministic, so
// the figures asserted below are the same on every run.
#include "training/training_loop.h"

#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/data/synthetic.h"
#include "runtime/model/model.h"
#include "runtime/optim/optimizer.h"
#include "strategies/mirrored.h"
#include "strategies/one_device.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kExamples = 600;
constexpr int64_t kBatch = 64;  // 10 steps an epoch, the last of 24 examples

Dataset Data(Split split) {
  SyntheticOptions options;
  options.num_examples = split == Split::kTrain ? kExamples : 300;
  options.num_features = 12;
  options.num_classes = 3;
  options.seed = 7;
  options.split = split;
  return MakeSyntheticClassification(options);
}

// Records what the loop tells its observers; fails at `fail_at_step` if set.
class Recorder final : public TrainingObserver {
 public:
  absl::Status OnStepEnd(const StepRecord& step) override {
    steps.push_back(step.global_step);
    last_next = step.next;
    batch_sizes.push_back(step.global_batch_size);
    if (step.global_step == fail_at_step) return absl::ResourceExhaustedError("disk full");
    return absl::OkStatus();
  }
  absl::Status OnEpochEnd(const EpochRecord& epoch) override {
    epochs.push_back(epoch.epoch);
    return absl::OkStatus();
  }

  int64_t fail_at_step = -1;
  std::vector<int64_t> steps;
  std::vector<int64_t> batch_sizes;
  std::vector<int64_t> epochs;
  InputPosition last_next;
};

struct Job {
  Dataset train = Data(Split::kTrain);
  Dataset test = Data(Split::kTest);
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<Strategy> strategy;
  std::unique_ptr<Model> model;

  explicit Job(int replicas = 1) {
    OptimizerConfig config;
    config.learning_rate = 0.1f;
    config.momentum = 0.9f;
    optimizer = *Optimizer::Create(config);
    if (replicas == 1) {
      strategy = *OneDeviceStrategy::Create(Device::Cpu(0), *optimizer, /*seed=*/3);
    } else {
      MirroredStrategy::Options options;
      for (int r = 0; r < replicas; ++r) options.devices.push_back(Device::Cpu(r));
      options.optimizer = optimizer.get();
      options.seed = 3;
      strategy = *MirroredStrategy::Create(std::move(options));
    }
    ModelConfig model_config;
    model_config.hidden_units = {16};
    model = *CreateModel(model_config, ModelShape{12, 3}, *strategy);
    EXPECT_TRUE(strategy->Build().ok());
  }

  absl::StatusOr<TrainingReport> Run(TrainingOptions options) {
    options.global_batch_size = kBatch;
    options.seed = 11;
    return RunTraining(*strategy, *model, train, &test, options);
  }
};

TEST(TrainingLoopTest, EveryStepOnceEveryEpochEvaluatedAndTheModelLearns) {
  Job job;
  Recorder recorder;
  TrainingOptions options;
  options.epochs = 3;
  options.observers = {&recorder};
  auto report = job.Run(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->final_step, 30);
  ASSERT_EQ(report->epochs.size(), 3u);
  for (const EpochRecord& epoch : report->epochs) EXPECT_EQ(epoch.steps, 10);
  EXPECT_EQ(recorder.epochs, (std::vector<int64_t>{1, 2, 3}));
  ASSERT_EQ(recorder.steps.size(), 30u);
  for (int64_t i = 0; i < 30; ++i) EXPECT_EQ(recorder.steps[i], i + 1);
  // The last step of an epoch is the remainder; the input then stands at the next epoch.
  EXPECT_EQ(recorder.batch_sizes[9], kExamples - 9 * kBatch);
  EXPECT_EQ(recorder.last_next, (InputPosition{3, 0}));
  EXPECT_EQ(report->samples, 3 * kExamples);
  EXPECT_EQ(report->examples, 3 * kExamples);
  // A learnable task: the loss falls and the test accuracy is far above chance (1/3).
  EXPECT_LT(report->epochs[2].train_loss, report->epochs[0].train_loss);
  EXPECT_GT(report->test_accuracy, 0.6);
  EXPECT_EQ(report->test_accuracy, report->epochs.back().test_accuracy);
}

TEST(TrainingLoopTest, ResumesAtItsPositionAndStopsAtMaxSteps) {
  Job job;
  Recorder recorder;
  TrainingOptions options;
  options.epochs = 3;
  options.start = InputPosition{1, 3};  // 13 steps done
  options.max_steps = 25;
  options.observers = {&recorder};
  auto report = job.Run(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->final_step, 25);
  ASSERT_FALSE(recorder.steps.empty());
  EXPECT_EQ(recorder.steps.front(), 14);
  EXPECT_EQ(recorder.steps.back(), 25);
  EXPECT_EQ(recorder.last_next, (InputPosition{2, 5}));
  // Epoch 2 (7 of its steps here) ended, and so did epoch 3 at max_steps, 5 steps in.
  EXPECT_EQ(recorder.epochs, (std::vector<int64_t>{2, 3}));
  ASSERT_EQ(report->epochs.size(), 2u);
  EXPECT_EQ(report->epochs[0].steps, 7);
  EXPECT_EQ(report->epochs[1].steps, 5);
}

TEST(TrainingLoopTest, ProgressReportsSayWhereTheLoopIsAndHowLongItsStepsTook) {
  Job job;
  TrainingOptions options;
  options.epochs = 2;
  options.progress_interval = absl::ZeroDuration();  // after every step
  std::vector<ProgressRecord> reports;
  options.on_progress = [&](const ProgressRecord& p) { reports.push_back(p); };
  auto report = job.Run(options);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(reports.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(reports[i].epoch, 1 + i / 10);
    EXPECT_EQ(reports[i].step, 1 + i % 10);
    EXPECT_EQ(reports[i].steps_per_epoch, 10);
    EXPECT_EQ(reports[i].window_steps, 1);  // each report covers the steps since the last
    EXPECT_GT(reports[i].step_time, absl::ZeroDuration());
    EXPECT_LE(reports[i].communicate_time, reports[i].step_time);
    EXPECT_GT(reports[i].loss, 0);
  }
}

TEST(TrainingLoopTest, AnObserversErrorStopsTrainingWithIt) {
  Job job;
  Recorder recorder;
  recorder.fail_at_step = 4;
  TrainingOptions options;
  options.epochs = 2;
  options.observers = {&recorder};
  auto report = job.Run(options);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(report.status().message()), HasSubstr("disk full"));
  EXPECT_EQ(recorder.steps.size(), 4u);
}

TEST(TrainingLoopTest, TwoReplicasSplitEachGlobalBatch) {
  Job job(/*replicas=*/2);
  TrainingOptions options;
  options.epochs = 1;
  auto report = job.Run(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->final_step, 10);
  EXPECT_EQ(report->examples, kExamples);  // both replicas' shards, once
  EXPECT_GT(report->test_accuracy, 0.4);
}

TEST(TrainingLoopTest, ABatchNoReplicaCountDividesIsRefused) {
  Job job(/*replicas=*/2);
  TrainingOptions options;
  options.global_batch_size = 63;
  auto report = RunTraining(*job.strategy, *job.model, job.train, &job.test, options);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument) << report.status();
}

TEST(TrainingLoopTest, TooFewExamplesForOneBatchWithDropRemainderIsRefused) {
  Job job;
  TrainingOptions options;
  options.global_batch_size = kExamples + 1;
  options.drop_remainder = true;
  auto report = RunTraining(*job.strategy, *job.model, job.train, &job.test, options);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(report.status().message()),
              HasSubstr("global batch size 601 is larger than the training set (600 examples)"));
}

// --global-batch-size 1000000000000 was once accepted silently.
TEST(TrainingLoopTest, GlobalBatchLargerThanTheDatasetIsRefusedNamingBoth) {
  Job job;
  TrainingOptions options;
  options.global_batch_size = 1000000000000;
  options.drop_remainder = false;
  auto report = RunTraining(*job.strategy, *job.model, job.train, &job.test, options);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(report.status().message()),
              HasSubstr("global batch size 1000000000000 is larger than the training set (600 "
                        "examples); choose a global batch of at most 600"));
  options.global_batch_size = kExamples;
  EXPECT_TRUE(RunTraining(*job.strategy, *job.model, job.train, &job.test, options).ok());
}

// Under the file policy a worker walks its own examples in whole batches; the
// agreed count caps its epoch, and each step reports the global batch.
TEST(TrainingLoopTest, OwnFilesRunTheAgreedWholeBatches) {
  Job job;
  Recorder recorder;
  TrainingOptions options;
  options.epochs = 2;
  options.observers = {&recorder};
  options.own_files = OwnFilesOptions{};  // one input worker: 600 / 64 = 9 whole batches
  auto report = job.Run(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->final_step, 18);
  EXPECT_EQ(report->examples, 18 * kBatch);
  for (int64_t size : recorder.batch_sizes) EXPECT_EQ(size, kBatch);

  Job agreed;
  int64_t offered = -1;
  options.own_files->agree_steps_per_epoch = [&](int64_t full_batches) -> absl::StatusOr<int64_t> {
    offered = full_batches;
    return 7;  // another worker holds fewer
  };
  recorder = Recorder();
  options.observers = {&recorder};
  report = agreed.Run(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(offered, 9);
  EXPECT_EQ(report->final_step, 14);
  EXPECT_EQ(recorder.last_next, (InputPosition{2, 0}));
  EXPECT_GT(report->test_accuracy, 0.5);
}

TEST(TrainingLoopTest, OwnFilesMustBeTheStrategysInputShard) {
  Job job;
  TrainingOptions options;
  options.own_files = OwnFilesOptions{.num_input_workers = 2, .worker_index = 1};
  auto report = job.Run(options);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(
      std::string(report.status().message()),
      HasSubstr("chosen for input worker 1 of 2 but the strategy reads input shard 0 of 1"));
  Job agreed;
  options.own_files = OwnFilesOptions{};
  options.own_files->agree_steps_per_epoch = [](int64_t) -> absl::StatusOr<int64_t> {
    return absl::DeadlineExceededError("no count from worker:1");
  };
  report = agreed.Run(options);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(TrainingLoopTest, OwnFilesSmallerThanAWorkersBatchAreRefused) {
  Job job;
  TrainingOptions options;
  options.global_batch_size = kExamples + 1;
  options.own_files = OwnFilesOptions{};
  EXPECT_THAT(std::string(ValidateTrainingShape(*job.strategy, job.train, options).message()),
              HasSubstr("holds 600 examples, less than its batch of 601"));
}

TEST(TrainingLoopTest, AnUnevenGlobalBatchIsRefusedUnlessElastic) {
  Job job(/*replicas=*/3);
  TrainingOptions options;
  options.global_batch_size = 256;
  EXPECT_THAT(std::string(ValidateTrainingShape(*job.strategy, job.train, options).message()),
              HasSubstr("does not divide by 3"));
  options.uneven_batches = true;  // elastic: the global batch is kept on any number of workers
  EXPECT_TRUE(ValidateTrainingShape(*job.strategy, job.train, options).ok());
  options.global_batch_size = 2;
  EXPECT_THAT(std::string(ValidateTrainingShape(*job.strategy, job.train, options).message()),
              HasSubstr("smaller than the 3 replicas"));
}

}  // namespace
}  // namespace meshtrain

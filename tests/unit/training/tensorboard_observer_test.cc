#include "training/tensorboard_observer.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "proto/tensorboard_event.pb.h"
#include "runtime/checkpoint/fault_injection_file_system.h"
#include "runtime/data/tfrecord.h"
#include "summaries/event_writer.h"
#include "tests/unit/test_files.h"

namespace meshtrain {
namespace {

TEST(TensorBoardObserverTest, StepLossAndEpochScalars) {
  const std::string dir = testing::FreshTempDir("tensorboard_observer_test");
  std::string path;
  {
    auto writer = EventWriter::Create(dir);
    ASSERT_TRUE(writer.ok());
    path = (*writer)->path();
    TensorBoardObserver observer(writer->get(), *LearningRateSchedule::Create(0.05, {}),
                                 /*evaluates=*/true);
    StepResult result;
    result.loss.loss_sum = 12.8;
    result.examples = 256;
    StepRecord step;
    step.global_step = 1;
    step.result = &result;
    step.end = absl::Now();
    ASSERT_TRUE(observer.OnStepEnd(step).ok());
    EpochRecord epoch;
    epoch.epoch = 1;
    epoch.test_accuracy = 0.8;
    epoch.samples_per_sec = 1000;
    ASSERT_TRUE(observer.OnEpochEnd(epoch).ok());
    // OnEpochEnd flushed: everything is readable before the writer closes.
    std::map<std::string, float> seen;
    auto records = ParseTfRecords(testing::ReadWholeFile(path));
    ASSERT_TRUE(records.ok()) << records.status();
    for (const std::string& r : *records) {
      tensorboard::Event e;
      ASSERT_TRUE(e.ParseFromString(r));
      if (e.has_summary()) seen[e.summary().value(0).tag()] = e.summary().value(0).simple_value();
    }
    EXPECT_FLOAT_EQ(seen["train/loss"], 0.05f);
    EXPECT_FLOAT_EQ(seen["test/accuracy"], 0.8f);
    EXPECT_FLOAT_EQ(seen["perf/samples_per_sec"], 1000.0f);
    EXPECT_FLOAT_EQ(seen["optimizer/learning_rate"], 0.05f);
    EXPECT_EQ(seen.count("train/accuracy"), 1u);
  }
}

std::map<std::string, float> ReadScalars(const std::string& path) {
  std::map<std::string, float> seen;
  auto records = ParseTfRecords(testing::ReadWholeFile(path));
  EXPECT_TRUE(records.ok()) << records.status();  // whole records only, even after a failure
  if (!records.ok()) return seen;
  for (const std::string& r : *records) {
    tensorboard::Event e;
    EXPECT_TRUE(e.ParseFromString(r));
    if (e.has_summary()) seen[e.summary().value(0).tag()] = e.summary().value(0).simple_value();
  }
  return seen;
}

TEST(TensorBoardObserverTest, AFullDiskIsAWarningAndWritingResumesWhenThereIsRoom) {
  const std::string dir = testing::FreshTempDir("tensorboard_observer_full_disk_test");
  FaultInjectionFileSystem full(DefaultFileSystem(), {});
  auto writer = EventWriter::Create(dir, &full);
  ASSERT_TRUE(writer.ok()) << writer.status();
  TensorBoardObserver observer(writer->get(), *LearningRateSchedule::Create(0.05, {}),
                               /*evaluates=*/false);
  StepResult result;
  result.loss.loss_sum = 1;
  result.examples = 1;
  StepRecord step;
  step.result = &result;
  full.SetFreeBytes(20);  // less than one flush: the write fails part-way
  for (int64_t s = 1; s <= 3; ++s) {
    step.global_step = s;
    EXPECT_TRUE(observer.OnStepEnd(step).ok());
  }
  EpochRecord epoch;
  epoch.samples_per_sec = 1000;
  EXPECT_TRUE(observer.OnEpochEnd(epoch).ok());  // the flush fails: a warning
  EXPECT_EQ(observer.failures(), 1);
  EXPECT_GT((*writer)->dropped_records(), 0);
  EXPECT_TRUE(ReadScalars((*writer)->path()).empty());
  // Room again: the next epoch's events land after the last whole record.
  full.SetFreeBytes(-1);
  epoch.samples_per_sec = 2000;
  EXPECT_TRUE(observer.OnEpochEnd(epoch).ok());
  EXPECT_EQ(observer.failures(), 1);
  EXPECT_FLOAT_EQ(ReadScalars((*writer)->path())["perf/samples_per_sec"], 2000.0f);
}

TEST(TensorBoardObserverTest, AnEventFileThatCannotStartIsRemoved) {
  const std::string dir = testing::FreshTempDir("tensorboard_observer_no_space_test");
  FaultInjectionFileSystem full(DefaultFileSystem(), {.free_bytes = 0});
  auto writer = EventWriter::Create(dir, &full);
  EXPECT_TRUE(absl::IsResourceExhausted(writer.status())) << writer.status();
  EXPECT_TRUE(std::filesystem::is_empty(dir));
}

}  // namespace
}  // namespace meshtrain

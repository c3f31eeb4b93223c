#include "summaries/event_writer.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "training/tensorboard_observer.h"
#include "summaries/tfrecord.h"
#include "proto/tensorboard_event.pb.h"
#include "runtime/base/crc32c.h"

namespace meshtrain {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

uint64_t LittleEndian(const std::string& bytes, size_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

// The records of a TFRecord file, checking both CRCs of each.
std::vector<std::string> Records(const std::string& bytes) {
  std::vector<std::string> records;
  size_t at = 0;
  while (at < bytes.size()) {
    EXPECT_GE(bytes.size() - at, 16u) << "truncated record at " << at;
    if (bytes.size() - at < 16) break;
    const uint64_t length = LittleEndian(bytes, at, 8);
    EXPECT_EQ(LittleEndian(bytes, at + 8, 4), crc32c::Mask(crc32c::Value(bytes.data() + at, 8)));
    const std::string data = bytes.substr(at + 12, length);
    EXPECT_EQ(LittleEndian(bytes, at + 12 + length, 4), crc32c::Mask(crc32c::Value(data.data(), data.size())));
    records.push_back(data);
    at += 16 + length;
  }
  return records;
}

std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

TEST(TfRecordTest, FramesLengthDataAndMaskedCrcs) {
  std::string out;
  AppendTfRecord("123456789", &out);
  ASSERT_EQ(out.size(), 8u + 4 + 9 + 4);
  EXPECT_EQ(LittleEndian(out, 0, 8), 9u);
  EXPECT_EQ(out.substr(12, 9), "123456789");
  // CRC32C("123456789") is 0xe3069283 (RFC 3720); masked as TFRecord does.
  const uint32_t crc = 0xe3069283u;
  EXPECT_EQ(LittleEndian(out, 21, 4), static_cast<uint32_t>(((crc >> 15) | (crc << 17)) + 0xa282ead8u));
}

TEST(EventWriterTest, FileVersionThenOneEventPerScalar) {
  const std::string dir = FreshDir("event_writer_test");
  std::string path;
  {
    auto writer = EventWriter::Create(dir);
    ASSERT_TRUE(writer.ok()) << writer.status();
    path = (*writer)->path();
    EXPECT_EQ(std::filesystem::path(path).parent_path(), std::filesystem::path(dir));
    EXPECT_EQ(std::filesystem::path(path).filename().string().rfind("events.out.tfevents.", 0), 0u);
    ASSERT_TRUE((*writer)->WriteScalar("train/loss", 7, 0.25, absl::FromUnixSeconds(1000)).ok());
    ASSERT_TRUE((*writer)->WriteScalar("test/accuracy", 9, 0.875).ok());
  }  // the destructor flushes
  const std::vector<std::string> records = Records(ReadFile(path));
  ASSERT_EQ(records.size(), 3u);
  tensorboard::Event event;
  ASSERT_TRUE(event.ParseFromString(records[0]));
  EXPECT_EQ(event.file_version(), "brain.Event:2");
  ASSERT_TRUE(event.ParseFromString(records[1]));
  EXPECT_EQ(event.step(), 7);
  EXPECT_DOUBLE_EQ(event.wall_time(), 1000.0);
  ASSERT_EQ(event.summary().value_size(), 1);
  EXPECT_EQ(event.summary().value(0).tag(), "train/loss");
  EXPECT_FLOAT_EQ(event.summary().value(0).simple_value(), 0.25f);
  ASSERT_TRUE(event.ParseFromString(records[2]));
  EXPECT_EQ(event.summary().value(0).tag(), "test/accuracy");
  EXPECT_FLOAT_EQ(event.summary().value(0).simple_value(), 0.875f);
}

TEST(EventWriterTest, TwoWritersInOneDirectoryGetTwoFiles) {
  const std::string dir = FreshDir("event_writer_two");
  auto a = EventWriter::Create(dir);
  auto b = EventWriter::Create(dir);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)->path(), (*b)->path());
}

TEST(EventWriterTest, UnwritableDirectoryIsAnError) {
  auto writer = EventWriter::Create("/proc/meshtrain-cannot-create");
  EXPECT_FALSE(writer.ok());
}

TEST(TensorBoardObserverTest, StepLossAndEpochScalars) {
  const std::string dir = FreshDir("tensorboard_observer_test");
  std::string path;
  {
    auto writer = EventWriter::Create(dir);
    ASSERT_TRUE(writer.ok());
    path = (*writer)->path();
    TensorBoardObserver observer(writer->get(), 0.05, /*evaluates=*/true);
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
    for (const std::string& r : Records(ReadFile(path))) {
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

}  // namespace
}  // namespace meshtrain

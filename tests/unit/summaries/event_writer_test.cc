#include "summaries/event_writer.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proto/tensorboard_event.pb.h"
#include "runtime/data/tfrecord.h"
#include "tests/unit/test_files.h"

namespace meshtrain {
namespace {

uint64_t LittleEndian(const std::string& bytes, size_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

// The records of the file at `path`, both CRCs of each checked.
std::vector<std::string> Records(const std::string& path) {
  auto records = ParseTfRecords(testing::ReadWholeFile(path));
  EXPECT_TRUE(records.ok()) << records.status();
  return records.ok() ? *records : std::vector<std::string>{};
}

TEST(TfRecordTest, FramesLengthDataAndMaskedCrcs) {
  std::string out;
  AppendTfRecord("123456789", &out);
  ASSERT_EQ(out.size(), 8u + 4 + 9 + 4);
  EXPECT_EQ(LittleEndian(out, 0, 8), 9u);
  EXPECT_EQ(out.substr(12, 9), "123456789");
  // CRC32C("123456789") is 0xe3069283 (RFC 3720); masked as TFRecord does.
  const uint32_t crc = 0xe3069283u;
  EXPECT_EQ(LittleEndian(out, 21, 4),
            static_cast<uint32_t>(((crc >> 15) | (crc << 17)) + 0xa282ead8u));
}

TEST(EventWriterTest, FileVersionThenOneEventPerScalar) {
  const std::string dir = testing::FreshTempDir("event_writer_test");
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
  const std::vector<std::string> records = Records(path);
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
  const std::string dir = testing::FreshTempDir("event_writer_two");
  auto a = EventWriter::Create(dir);
  auto b = EventWriter::Create(dir);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)->path(), (*b)->path());
}

TEST(EventWriterTest, UnwritableDirectoryIsAnError) {
  auto writer = EventWriter::Create("/proc/meshtrain-cannot-create");
  EXPECT_FALSE(writer.ok());
}

TEST(TfRecordTest, ParsesWhatItFramed) {
  std::string out;
  AppendTfRecord("first", &out);
  AppendTfRecord("", &out);
  AppendTfRecord(std::string(1000, 'x'), &out);
  auto records = ParseTfRecords(out);
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, (std::vector<std::string>{"first", "", std::string(1000, 'x')}));
}

TEST(TfRecordTest, CorruptOrTruncatedFilesAreDataLoss) {
  std::string good;
  AppendTfRecord("payload", &good);
  std::string flipped_data = good;
  flipped_data[14] ^= 1;
  std::string flipped_length = good;
  flipped_length[0] ^= 1;
  for (const std::string& bad : {flipped_data, flipped_length, good.substr(0, good.size() - 1),
                                 good + std::string(5, '\0')}) {
    auto records = ParseTfRecords(bad);
    ASSERT_FALSE(records.ok());
    EXPECT_EQ(records.status().code(), absl::StatusCode::kDataLoss) << records.status();
  }
}

}  // namespace
}  // namespace meshtrain

// TFRecord files of tf.train.Example: a record framed byte for byte as
// TensorFlow frames it reads back, plain and GZIP; the writer's shards read
// back in order; every corruption (a bad CRC, a truncated record, a record
// that is no Example, a missing feature, a wrong feature type, a label out of
// range, inputs of different sizes) is an error naming the file and record.
#include "runtime/data/tfrecord_dataset.h"

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/example.pb.h"
#include "runtime/base/crc32c.h"
#include "runtime/data/tfrecord.h"
#include "tests/unit/data/test_files.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteGzFile;
using testing::WritePlainFile;

// What tf.io.TFRecordWriter writes for one record: the length (uint64, little
// endian), the masked CRC32C of those 8 bytes, the data, its masked CRC32C.
std::string TensorFlowFrame(absl::string_view data) {
  auto put = [](std::string& out, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  std::string out;
  put(out, data.size(), 8);
  put(out, crc32c::Mask(crc32c::Value(out.data(), 8)), 4);
  out.append(data.data(), data.size());
  put(out, crc32c::Mask(crc32c::Value(data.data(), data.size())), 4);
  return out;
}

std::string ExampleBytes(const std::string& image, int64_t label) {
  example::Example e;
  auto& f = *e.mutable_features()->mutable_feature();
  f["image"].mutable_bytes_list()->add_value(image);
  f["label"].mutable_int64_list()->add_value(label);
  return e.SerializeAsString();
}

ExampleSpec Spec() {
  ExampleSpec spec;
  spec.divisor = 255.0f;
  spec.num_classes = 10;
  return spec;
}

TEST(TfRecordDatasetTest, ReadsRecordsFramedAsTensorFlowFramesThemPlainOrGzip) {
  TempDir dir;
  const std::string bytes = TensorFlowFrame(ExampleBytes(std::string("\x00\xff\x33", 3), 7)) +
                            TensorFlowFrame(ExampleBytes(std::string("\x01\x02\x03", 3), 2));
  WritePlainFile(dir.File("a.tfrecord"), bytes);
  WriteGzFile(dir.File("b.tfrecord.gz"), bytes);
  for (const char* name : {"a.tfrecord", "b.tfrecord.gz"}) {
    auto data = LoadTfRecordDataset({dir.File(name)}, Spec(), "t");
    ASSERT_TRUE(data.ok()) << data.status();
    ASSERT_EQ(data->size(), 2);
    EXPECT_EQ(data->inputs.shape().row_elements(), 3);
    EXPECT_EQ(data->inputs.dtype(), DType::kUInt8);  // bytes stay bytes
    const Batch batch = DatasetRows(*data, 0, data->size());
    const float* x = batch.inputs.data<float>();
    EXPECT_EQ(x[0], 0.0f);
    EXPECT_EQ(x[1], 1.0f);
    EXPECT_EQ(x[2], static_cast<float>(0x33) / 255.0f);
    EXPECT_EQ(data->labels.data<int32_t>()[0], 7);
    EXPECT_EQ(data->labels.data<int32_t>()[1], 2);
  }
}

TEST(TfRecordDatasetTest, ShardsReadBackInTheirFirstOrder) {
  TempDir dir;
  constexpr int kRows = 23;
  constexpr int kWidth = 4;
  Dataset source;
  source.name = "source";
  source.inputs = Tensor(DType::kUInt8, Shape{kRows, kWidth});
  source.labels = Tensor(DType::kInt32, Shape{kRows});
  uint8_t* inputs = source.inputs.data<uint8_t>();
  int32_t* labels = source.labels.data<int32_t>();
  for (int i = 0; i < kRows * kWidth; ++i) inputs[i] = static_cast<uint8_t>(i * 7);
  for (int i = 0; i < kRows; ++i) labels[i] = i % 10;
  for (bool gzip : {false, true}) {
    auto paths = WriteTfRecordShards(source, Spec(), dir.File(gzip ? "gz" : "plain"), 5, gzip);
    ASSERT_TRUE(paths.ok()) << paths.status();
    ASSERT_EQ(paths->size(), 5u);
    EXPECT_THAT((*paths)[2],
                HasSubstr(gzip ? "-00002-of-00005.tfrecord.gz" : "-00002-of-00005.tfrecord"));
    auto files = ExpandFilePattern(dir.File(gzip ? "gz-*" : "plain-*"));
    ASSERT_TRUE(files.ok());
    EXPECT_EQ(*files, *paths);
    auto data = LoadTfRecordDataset(*files, Spec(), "t");
    ASSERT_TRUE(data.ok()) << data.status();
    ASSERT_EQ(data->size(), kRows);
    for (int i = 0; i < kRows * kWidth; ++i) {
      ASSERT_EQ(data->inputs.data<uint8_t>()[i], inputs[i]) << i;
    }
    for (int i = 0; i < kRows; ++i) ASSERT_EQ(data->labels.data<int32_t>()[i], labels[i]);
  }
  EXPECT_EQ(ExpandFilePattern(dir.File("none-*")).status().code(), absl::StatusCode::kNotFound);
}

// The error loading `bytes` as the file "f.tfrecord".
std::string ErrorOf(const std::string& bytes, ExampleSpec spec = Spec()) {
  TempDir dir;
  WritePlainFile(dir.File("f.tfrecord"), bytes);
  auto data = LoadTfRecordDataset({dir.File("f.tfrecord")}, spec, "t");
  EXPECT_FALSE(data.ok());
  return std::string(data.status().message());
}

TEST(TfRecordDatasetTest, EveryCorruptionNamesTheFileAndRecord) {
  const std::string good = TensorFlowFrame(ExampleBytes("abc", 1));
  std::string bad_data_crc = good + good;
  bad_data_crc[bad_data_crc.size() - 1] ^= 1;
  EXPECT_THAT(ErrorOf(bad_data_crc),
              HasSubstr("f.tfrecord: record 1 (at byte 52): the data's CRC"));
  std::string bad_length_crc = good;
  bad_length_crc[9] ^= 1;
  EXPECT_THAT(ErrorOf(bad_length_crc), HasSubstr("record 0 (at byte 0): the length's CRC"));
  EXPECT_THAT(ErrorOf(good + good.substr(0, 20)),
              HasSubstr("record 1 (at byte 52): the file ends"));
  EXPECT_THAT(ErrorOf(good.substr(0, 5)), HasSubstr("into the record's 12-byte header"));
  EXPECT_THAT(ErrorOf(TensorFlowFrame("\xff\xff\xff")),
              HasSubstr("record 0: not a tf.train.Example"));

  example::Example wrong_type;
  (*wrong_type.mutable_features()->mutable_feature())["image"].mutable_bytes_list()->add_value(
      "abc");
  (*wrong_type.mutable_features()->mutable_feature())["label"].mutable_float_list()->add_value(1);
  EXPECT_THAT(ErrorOf(TensorFlowFrame(wrong_type.SerializeAsString())),
              HasSubstr("feature 'label' is not an int64 list of one value"));
  example::Example missing;
  (*missing.mutable_features()->mutable_feature())["pixels"].mutable_bytes_list()->add_value("abc");
  EXPECT_THAT(ErrorOf(TensorFlowFrame(missing.SerializeAsString())),
              HasSubstr("no feature 'image' (it has: 'pixels')"));
  EXPECT_THAT(ErrorOf(TensorFlowFrame(ExampleBytes("abc", 10))),
              HasSubstr("label 10 is not a class in [0, 10)"));
  EXPECT_THAT(ErrorOf(good + TensorFlowFrame(ExampleBytes("abcd", 1))),
              HasSubstr("record 1: feature 'image' holds 4 values; the first record holds 3"));
  example::Example floats;
  auto& float_features = *floats.mutable_features()->mutable_feature();
  for (float v : {1.0f, 2.0f, 3.0f}) float_features["image"].mutable_float_list()->add_value(v);
  float_features["label"].mutable_int64_list()->add_value(1);
  EXPECT_THAT(ErrorOf(good + TensorFlowFrame(floats.SerializeAsString())),
              HasSubstr("record 1: feature 'image' is a number list feature, but in the first "
                        "record it is a bytes feature"));
  EXPECT_THAT(ErrorOf(""), HasSubstr("hold no record"));
}

TEST(TfRecordDatasetTest, AHugeLengthIsRefusedBeforeAnythingIsAllocated) {
  std::string frame;
  const uint64_t length = uint64_t{1} << 40;
  for (int i = 0; i < 8; ++i) frame.push_back(static_cast<char>((length >> (8 * i)) & 0xff));
  const uint32_t crc = crc32c::Mask(crc32c::Value(frame.data(), 8));
  for (int i = 0; i < 4; ++i) frame.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  EXPECT_THAT(ErrorOf(frame), HasSubstr("is over the limit"));
}

}  // namespace
}  // namespace meshtrain

// `meshtrain data convert`'s logic: IDX, CSV and NumPy sources written as
// TFRecord shards read back into the very batches the source gives with the
// same divisor (so training from either ends with the same parameters); the
// bytes-or-floats rule; the flags each source needs.
#include "runtime/data/tfrecord_conversion.h"

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/data/csv_dataset.h"
#include "runtime/data/npy_file.h"
#include "runtime/data/tfrecord_dataset.h"
#include "tests/unit/data/npy_files.h"
#include "tests/unit/data/test_files.h"
#include "tests/unit/data/zip_files.h"

namespace meshtrain {
namespace {

using testing::Bytes;
using ::testing::HasSubstr;
using testing::Npy;
using testing::TempDir;
using testing::WriteGzFile;
using testing::WritePlainFile;
using testing::Zip;

constexpr float kDivisor = 3.0f;

// The shards under `dir` for `split`, loaded as a job would with kDivisor.
Dataset LoadShards(const std::string& dir, Split split, int num_classes) {
  auto files = ExpandFilePattern(absl::StrCat(dir, "/", SplitName(split), "-*"));
  EXPECT_TRUE(files.ok()) << files.status();
  ExampleSpec spec;
  spec.divisor = kDivisor;
  spec.num_classes = num_classes;
  auto data = LoadTfRecordDataset(*files, spec, "shards");
  EXPECT_TRUE(data.ok()) << data.status();
  return data.ok() ? *std::move(data) : Dataset{};
}

// Every batch value of `a` and `b` equal to the bit.
void ExpectSameBatches(const Dataset& a, const Dataset& b) {
  ASSERT_EQ(a.size(), b.size());
  const Batch x = DatasetRows(a, 0, a.size());
  const Batch y = DatasetRows(b, 0, b.size());
  ASSERT_EQ(x.inputs.shape().row_elements(), y.inputs.shape().row_elements());
  ASSERT_EQ(x.inputs.dtype(), DType::kFloat32);
  ASSERT_EQ(y.inputs.dtype(), DType::kFloat32);
  EXPECT_EQ(std::memcmp(x.inputs.raw_data(), y.inputs.raw_data(), x.inputs.bytes()), 0);
  EXPECT_EQ(std::memcmp(x.labels.raw_data(), y.labels.raw_data(), x.labels.bytes()), 0);
}

absl::StatusOr<std::vector<ConvertedSplit>> Convert(const ConversionSource& source,
                                                    const std::string& out, int shards = 3) {
  TfRecordOutput output;
  output.dir = out;
  output.shards = shards;
  return ConvertToTfRecord(source, output);
}

TEST(TfRecordConversionTest, CsvFloatsAndBytesComeBackAsTheCsvReaderReadsThem) {
  TempDir dir;
  // Fractions (a float list) and integers in 0..255 (bytes).
  WritePlainFile(dir.File("f.csv"), "a,label,b\n0.1,1,-2.5e3\n1e-7,0,3.3333333\n7,2,255\n");
  WritePlainFile(dir.File("i-1.csv"), "a,label,b\n0,1,255\n17.0,0,3\n");
  WriteGzFile(dir.File("i-2.csv"), "a,label,b\n200,2,1\n");
  for (const auto& [glob, bytes] : {std::pair{"f.csv", false}, std::pair{"i-*.csv", true}}) {
    ConversionSource source;
    source.format = "csv";
    source.train_files = dir.File(glob);
    const std::string out = dir.File(bytes ? "bytes" : "floats");
    auto converted = Convert(source, out);
    ASSERT_TRUE(converted.ok()) << converted.status();
    ASSERT_EQ(converted->size(), 1u);  // no test files named
    EXPECT_EQ((*converted)[0].bytes_input, bytes);
    EXPECT_EQ((*converted)[0].examples, 3);
    EXPECT_EQ((*converted)[0].paths.size(), 3u);
    CsvSpec spec;
    spec.divisor = kDivisor;
    spec.num_classes = 3;
    auto files = ExpandFilePattern(source.train_files);
    ASSERT_TRUE(files.ok());
    auto csv = LoadCsvDataset(*files, spec, "csv");
    ASSERT_TRUE(csv.ok()) << csv.status();
    const Dataset shards = LoadShards(out, Split::kTrain, 3);
    EXPECT_EQ(shards.inputs.dtype(), bytes ? DType::kUInt8 : DType::kFloat32);
    ExpectSameBatches(*csv, shards);
  }
}

TEST(TfRecordConversionTest, NpyBytesStayBytesAndOtherDtypesBecomeFloats) {
  TempDir dir;
  WritePlainFile(dir.File("x.npy"),
                 Npy("{'descr': '|u1', 'fortran_order': False, 'shape': (4, 2), }",
                     Bytes<uint8_t>({0, 1, 2, 3, 250, 251, 254, 255})));
  const std::string y = Npy("{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }",
                            Bytes<int64_t>({1, 0, 4, 2}));
  WritePlainFile(dir.File("y.npy"), y);
  // The test split in a deflated archive, as np.savez_compressed writes it.
  WritePlainFile(dir.File("t.npz"),
                 Zip({{"x.npy",
                       Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4, 1), }",
                           Bytes<double>({0.1, 1e30, -7.0, 3.0})),
                       true},
                      {"y.npy", y, true}}));
  ConversionSource source;
  source.format = "npy";
  source.train_inputs = dir.File("x.npy");
  source.train_labels = dir.File("y.npy");
  source.test_inputs = dir.File("t.npz:x");
  source.test_labels = dir.File("t.npz:y");
  source.num_classes = 5;
  auto converted = Convert(source, dir.File("out"), 2);
  ASSERT_TRUE(converted.ok()) << converted.status();
  ASSERT_EQ(converted->size(), 2u);
  EXPECT_TRUE((*converted)[0].bytes_input);
  EXPECT_FALSE((*converted)[1].bytes_input);
  for (const Split split : {Split::kTrain, Split::kTest}) {
    const bool train = split == Split::kTrain;
    auto npy = LoadNpyDataset(train ? source.train_inputs : source.test_inputs,
                              train ? source.train_labels : source.test_labels, kDivisor, 5, "npy");
    ASSERT_TRUE(npy.ok()) << npy.status();
    ExpectSameBatches(*npy, LoadShards(dir.File("out"), split, 5));
  }
  // num_classes bounds the labels, naming the file.
  source.num_classes = 4;
  EXPECT_THAT(Convert(source, dir.File("out")).status().message(),
              HasSubstr("y.npy: label 2 (4) is not a class in [0, 4)"));
}

TEST(TfRecordConversionTest, IdxPixelsBecomeBytes) {
  TempDir dir;
  const std::string images =
      std::string("\0\0\x08\x03\0\0\0\x02\0\0\0\x01\0\0\0\x03", 16) + "\x01\x02\x03\xfd\xfe\xff";
  const std::string labels = std::string("\0\0\x08\x01\0\0\0\x02", 8) + "\x09\x04";
  for (const char* prefix : {"train", "t10k"}) {
    WritePlainFile(dir.File(absl::StrCat(prefix, "-images-idx3-ubyte")), images);
    WriteGzFile(dir.File(absl::StrCat(prefix, "-labels-idx1-ubyte.gz")), labels);
  }
  ConversionSource source;
  source.format = "idx";
  source.dir = dir.path();
  auto converted = Convert(source, dir.File("out"), 2);
  ASSERT_TRUE(converted.ok()) << converted.status();
  ASSERT_EQ(converted->size(), 2u);
  EXPECT_EQ((*converted)[1].split, Split::kTest);
  EXPECT_TRUE((*converted)[1].bytes_input);
  const Dataset shards = LoadShards(dir.File("out"), Split::kTest, 10);
  ASSERT_EQ(shards.size(), 2);
  EXPECT_EQ(shards.inputs.data<uint8_t>()[5], 0xff);
  EXPECT_EQ(shards.labels.data<int32_t>()[1], 4);
}

TEST(TfRecordConversionTest, OnlyWholeBytesNarrow) {
  auto narrows = [](std::vector<float> values) {
    Dataset data;
    data.inputs = Tensor(DType::kFloat32, Shape{1, static_cast<int64_t>(values.size())});
    std::memcpy(data.inputs.raw_data(), values.data(), values.size() * sizeof(float));
    const bool narrowed = NarrowToBytes(data);
    EXPECT_EQ(data.inputs.dtype(), narrowed ? DType::kUInt8 : DType::kFloat32);
    return narrowed;
  };
  EXPECT_TRUE(narrows({0.0f, 1.0f, 255.0f}));
  EXPECT_FALSE(narrows({0.0f, 1.5f}));
  EXPECT_FALSE(narrows({256.0f}));
  EXPECT_FALSE(narrows({-1.0f}));
  EXPECT_FALSE(narrows({-0.0f}));  // it would come back as +0
  EXPECT_FALSE(narrows({std::nanf("")}));
}

TEST(TfRecordConversionTest, EachSourceNamesTheFlagsItNeeds) {
  ConversionSource source;
  source.format = "parquet";
  EXPECT_THAT(ConversionSplits(source).status().message(),
              HasSubstr("--from 'parquet': the converter reads idx"));
  source.format = "idx";
  EXPECT_THAT(ConversionSplits(source).status().message(), HasSubstr("needs --dir"));
  source.format = "csv";
  EXPECT_THAT(ConversionSplits(source).status().message(), HasSubstr("needs --train-files"));
  source.format = "npy";
  source.train_inputs = "x.npy";
  EXPECT_THAT(ConversionSplits(source).status().message(),
              HasSubstr("needs --train-inputs and --train-labels"));
  source.train_labels = "y.npy";
  source.test_inputs = "tx.npy";
  EXPECT_THAT(ConversionSplits(source).status().message(),
              HasSubstr("both --test-inputs and --test-labels"));
  source.test_labels = "ty.npy";
  EXPECT_EQ(ConversionSplits(source)->size(), 2u);
}

}  // namespace
}  // namespace meshtrain

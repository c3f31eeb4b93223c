#include "runtime/data/fashion_mnist.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/base/logging.h"
#include "runtime/data/idx_file.h"
#include "tests/unit/data/test_files.h"
#include "tests/unit/require.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::TempDir;
using ::meshtrain::testing::WriteGzFile;
using ::meshtrain::testing::WritePlainFile;
using ::testing::HasSubstr;

constexpr int kExamples = 5;

std::vector<uint8_t> Pixels(int n) {
  std::vector<uint8_t> pixels(static_cast<size_t>(n) * 784);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i % 256);
  return pixels;
}

// A small valid split in `dir` (gzip by default), images then labels.
void WriteSplit(const TempDir& dir, absl::string_view prefix, bool gzip = true) {
  const std::vector<uint8_t> labels = {9, 0, 3, 3, 7};
  const auto write = gzip ? WriteGzFile : WritePlainFile;
  const std::string ext = gzip ? ".gz" : "";
  write(dir.File(absl::StrCat(prefix, "-images-idx3-ubyte", ext)),
        EncodeIdx({kExamples, 28, 28}, Pixels(kExamples)));
  write(dir.File(absl::StrCat(prefix, "-labels-idx1-ubyte", ext)), EncodeIdx({kExamples}, labels));
}

void ExpectSmallSplit(const Dataset& d) {
  ASSERT_EQ(d.inputs.shape(), (Shape{kExamples, 784}));
  ASSERT_EQ(d.labels.shape(), (Shape{kExamples}));
  EXPECT_EQ(d.num_classes, 10);
  EXPECT_TRUE(ValidateDataset(d).ok());
  // Stored as the file's bytes; a batch holds them scaled to [0, 1].
  EXPECT_EQ(d.inputs.dtype(), DType::kUInt8);
  const std::vector<uint8_t> pixels = Pixels(kExamples);
  const Batch batch = DatasetRows(d, 0, d.size());
  const float* inputs = batch.inputs.data<float>();
  for (size_t i = 0; i < pixels.size(); ++i) {
    ASSERT_EQ(inputs[i], pixels[i] / 255.0f) << "pixel " << i;
  }
  EXPECT_EQ(inputs[255], 1.0f);
  EXPECT_EQ(inputs[0], 0.0f);
  const int32_t* labels = d.labels.data<int32_t>();
  EXPECT_EQ(std::vector<int32_t>(labels, labels + kExamples),
            (std::vector<int32_t>{9, 0, 3, 3, 7}));
}

TEST(FashionMnistTest, LoadsGeneratedGzipSplits) {
  TempDir dir;
  WriteSplit(dir, "train");
  WriteSplit(dir, "t10k");
  for (Split split : {Split::kTrain, Split::kTest}) {
    absl::StatusOr<Dataset> d = LoadFashionMnist(dir.path(), split);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->name, absl::StrCat("fashion-mnist/", SplitName(split)));
    ExpectSmallSplit(*d);
  }
}

TEST(FashionMnistTest, AcceptsUncompressedFilesWhenGzipAbsent) {
  TempDir dir;
  WriteSplit(dir, "t10k", /*gzip=*/false);
  absl::StatusOr<Dataset> d = LoadFashionMnist(dir.path(), Split::kTest);
  ASSERT_TRUE(d.ok()) << d.status();
  ExpectSmallSplit(*d);
}

TEST(FashionMnistTest, MissingFileNamesPathAndInstallHint) {
  TempDir dir;
  absl::StatusOr<Dataset> d = LoadFashionMnist(dir.path(), Split::kTrain);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(d.status().message(), HasSubstr(dir.File("train-images-idx3-ubyte.gz")));
  EXPECT_THAT(d.status().message(),
              HasSubstr("install it with: apt-get install dataset-fashion-mnist"));

  WriteSplit(dir, "train");
  ASSERT_EQ(unlink(dir.File("train-labels-idx1-ubyte.gz").c_str()), 0);
  d = LoadFashionMnist(dir.path(), Split::kTrain);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(d.status().message(), HasSubstr(dir.File("train-labels-idx1-ubyte.gz")));
}

struct BadSplit {
  std::string name;
  std::string images;  // file contents, before compression
  std::string labels;
  std::string bad_file;  // which path the message must name
  std::string fault;
};

TEST(FashionMnistTest, MalformedFilesAreDataLossNamingPathAndFault) {
  const std::string images = EncodeIdx({kExamples, 28, 28}, Pixels(kExamples));
  const std::string labels = EncodeIdx({kExamples}, std::vector<uint8_t>{1, 2, 3, 4, 5});
  std::string bad_magic = images;
  bad_magic[1] = 0x08;
  const std::string images_file = "train-images-idx3-ubyte.gz";
  const std::string labels_file = "train-labels-idx1-ubyte.gz";
  const std::vector<BadSplit> cases = {
      {"bad magic", bad_magic, labels, images_file, "bad magic"},
      {"truncated", images.substr(0, images.size() - 100), labels, images_file, "truncated"},
      {"wrong dims", EncodeIdx({kExamples, 28, 27}, std::vector<uint8_t>(kExamples * 28 * 27)),
       labels, images_file, "expected [n, 28, 28]"},
      {"labels not 1-d", images, EncodeIdx({kExamples, 1}, {1, 2, 3, 4, 5}), labels_file,
       "expected [n]"},
      {"count mismatch", images, EncodeIdx({kExamples - 1}, {1, 2, 3, 4}), labels_file,
       "5 images but"},
      {"label out of range", images, EncodeIdx({kExamples}, {1, 2, 10, 4, 5}), labels_file,
       "label 10 of example 2"},
  };
  for (const BadSplit& c : cases) {
    TempDir dir;
    WriteGzFile(dir.File(images_file), c.images);
    WriteGzFile(dir.File(labels_file), c.labels);
    absl::StatusOr<Dataset> d = LoadFashionMnist(dir.path(), Split::kTrain);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss) << c.name << ": " << d.status();
    EXPECT_THAT(d.status().message(), HasSubstr(dir.File(c.bad_file))) << c.name;
    EXPECT_THAT(d.status().message(), HasSubstr(c.fault)) << c.name;
  }
}

// The real files, where Debian's dataset-fashion-mnist package is installed.
TEST(FashionMnistTest, RealDatasetHasTheDocumentedShape) {
  MESHTRAIN_REQUIRE_OR_SKIP(access(std::string(kFashionMnistDir).c_str(), F_OK) == 0,
                            kFashionMnistDir << " is absent (install it with: apt-get install "
                                                "dataset-fashion-mnist)");
  struct Expected {
    Split split;
    int64_t examples;
  };
  for (const Expected& e : {Expected{Split::kTrain, 60000}, Expected{Split::kTest, 10000}}) {
    const absl::Time begin = absl::Now();
    absl::StatusOr<Dataset> d = LoadFashionMnist(kFashionMnistDir, e.split);
    const absl::Duration took = absl::Now() - begin;
    ASSERT_TRUE(d.ok()) << d.status();
    MESHTRAIN_LOG(INFO) << "loaded " << d->name << " in " << absl::FormatDuration(took);
    ASSERT_EQ(d->inputs.shape(), (Shape{e.examples, 784}));
    ASSERT_EQ(d->labels.shape(), (Shape{e.examples}));
    const auto pixels = d->inputs.flat<uint8_t>();
    const auto [low, high] = std::minmax_element(pixels.begin(), pixels.end());
    EXPECT_EQ(*low, 0);
    EXPECT_EQ(*high, 255);
    EXPECT_EQ(d->input_divisor, 255.0f);
    std::array<int64_t, 10> histogram{};
    for (int32_t label : d->labels.flat<int32_t>()) {
      ASSERT_TRUE(label >= 0 && label < 10) << label;
      ++histogram[label];
    }
    for (int c = 0; c < 10; ++c) EXPECT_EQ(histogram[c], e.examples / 10) << "class " << c;
  }
}

}  // namespace
}  // namespace meshtrain

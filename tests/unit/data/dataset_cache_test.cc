// The dataset cache: TFRecord files decoded once into mapped .npy arrays give
// the very batches of a load into memory (bytes and number-list inputs);
// a second load reuses the cache, a changed file rebuilds it; an unusable
// directory is an error naming it.
#include "runtime/data/dataset_cache.h"

#include <sys/stat.h>

#include <filesystem>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/data/npy_file.h"
#include "runtime/data/tfrecord_dataset.h"
#include "tests/unit/data/test_files.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::WritePlainFile;

constexpr int kRows = 37;
constexpr int kWidth = 6;

ExampleSpec Spec(const std::string& cache_dir) {
  ExampleSpec spec;
  spec.divisor = 255.0f;
  spec.num_classes = 10;
  spec.cache_dir = cache_dir;
  return spec;
}

std::vector<std::string> WriteShards(const TempDir& dir, int salt) {
  Dataset source{.name = "source", .num_classes = 10, .input_divisor = 255.0f};
  source.inputs = Tensor(DType::kUInt8, Shape{kRows, kWidth});
  source.labels = Tensor(DType::kInt32, Shape{kRows});
  for (int i = 0; i < kRows * kWidth; ++i) {
    source.inputs.data<uint8_t>()[i] = static_cast<uint8_t>(i * 11 + salt);
  }
  for (int i = 0; i < kRows; ++i) source.labels.data<int32_t>()[i] = (i + salt) % 10;
  auto paths = WriteTfRecordShards(source, Spec(""), dir.File("s"), 3, false);
  EXPECT_TRUE(paths.ok()) << paths.status();
  return paths.ok() ? *paths : std::vector<std::string>{};
}

void ExpectSameBatches(const Dataset& a, const Dataset& b) {
  ASSERT_EQ(a.size(), b.size());
  const Batch x = DatasetRows(a, 0, a.size());
  const Batch y = DatasetRows(b, 0, b.size());
  ASSERT_EQ(x.inputs.bytes(), y.inputs.bytes());
  EXPECT_EQ(std::memcmp(x.inputs.raw_data(), y.inputs.raw_data(), x.inputs.bytes()), 0);
  ASSERT_EQ(x.labels.bytes(), y.labels.bytes());
  EXPECT_EQ(std::memcmp(x.labels.raw_data(), y.labels.raw_data(), x.labels.bytes()), 0);
}

int64_t ModifiedNs(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

TEST(DatasetCacheTest, CachedBytesGiveTheBatchesOfALoadIntoMemory) {
  TempDir dir;
  const std::vector<std::string> files = WriteShards(dir, 0);
  auto memory = LoadTfRecordDataset(files, Spec(""), "t/train");
  ASSERT_TRUE(memory.ok()) << memory.status();
  auto cached = LoadTfRecordDataset(files, Spec(dir.File("cache")), "t/train");
  ASSERT_TRUE(cached.ok()) << cached.status();
  EXPECT_EQ(cached->inputs.dtype(), DType::kUInt8);
  EXPECT_EQ(cached->input_divisor, 255.0f);
  ExpectSameBatches(*memory, *cached);

  auto cache = DatasetCache::Open(dir.File("cache"), "t/train", files,
                                  "tfrecord input_feature=image label_feature=label input_size=0 "
                                  "divisor=255 num_classes=10");
  ASSERT_TRUE(cache.ok()) << cache.status();
  ASSERT_TRUE(cache->complete());
  // A second load maps the same arrays instead of decoding again.
  const int64_t built = ModifiedNs(cache->inputs_path());
  auto again = LoadTfRecordDataset(files, Spec(dir.File("cache")), "t/train");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(ModifiedNs(cache->inputs_path()), built);
  ExpectSameBatches(*memory, *again);
}

TEST(DatasetCacheTest, AChangedFileRebuildsTheCache) {
  TempDir dir;
  std::vector<std::string> files = WriteShards(dir, 0);
  ASSERT_TRUE(LoadTfRecordDataset(files, Spec(dir.File("cache")), "t/train").ok());
  files = WriteShards(dir, 5);  // same names, new contents
  auto memory = LoadTfRecordDataset(files, Spec(""), "t/train");
  ASSERT_TRUE(memory.ok()) << memory.status();
  auto cached = LoadTfRecordDataset(files, Spec(dir.File("cache")), "t/train");
  ASSERT_TRUE(cached.ok()) << cached.status();
  ExpectSameBatches(*memory, *cached);
}

TEST(DatasetCacheTest, ADamagedCacheIsRebuiltFromTheFiles) {
  TempDir dir;
  const std::vector<std::string> files = WriteShards(dir, 0);
  auto memory = LoadTfRecordDataset(files, Spec(""), "t/train");
  ASSERT_TRUE(memory.ok()) << memory.status();
  ASSERT_TRUE(LoadTfRecordDataset(files, Spec(dir.File("cache")), "t/train").ok());
  // Truncate the cached inputs array: its header no longer fits the size.
  int truncated = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.File("cache"))) {
    if (entry.path().string().ends_with(".inputs.npy")) {
      std::filesystem::resize_file(entry.path(), 100);
      ++truncated;
    }
  }
  ASSERT_EQ(truncated, 1);
  auto rebuilt = LoadTfRecordDataset(files, Spec(dir.File("cache")), "t/train");
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  ExpectSameBatches(*memory, *rebuilt);
}

TEST(DatasetCacheTest, EncodedHeadersReadBackAndFloatArraysMapAsTheyAre) {
  TempDir dir;
  const std::string floats = dir.File("x.npy");
  // A float32 array written with EncodeNpyHeader reads back through NpyFile.
  std::string bytes = EncodeNpyHeader("<f4", {2, 3});
  EXPECT_EQ(bytes.size() % 64, 0u);
  for (float v : {0.5f, 1.0f, 2.0f, -1.0f, 0.0f, 4.0f}) {
    bytes.append(reinterpret_cast<const char*>(&v), sizeof(v));
  }
  WritePlainFile(floats, bytes);
  std::string labels = EncodeNpyHeader("<i4", {2});
  for (int32_t v : {1, 0}) labels.append(reinterpret_cast<const char*>(&v), sizeof(v));
  WritePlainFile(dir.File("y.npy"), labels);
  auto data = LoadNpyDataset(floats, dir.File("y.npy"), 1.0f, 2, "f");
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->inputs.shape(), (Shape{2, 3}));
  EXPECT_EQ(data->inputs.data<float>()[3], -1.0f);
  EXPECT_EQ(data->labels.data<int32_t>()[0], 1);
}

TEST(DatasetCacheTest, AnUnusableDirectoryIsNamed) {
  TempDir dir;
  const std::vector<std::string> files = WriteShards(dir, 0);
  WritePlainFile(dir.File("not-a-dir"), "x");
  auto cached = LoadTfRecordDataset(files, Spec(dir.File("not-a-dir")), "t/train");
  ASSERT_FALSE(cached.ok());
  EXPECT_THAT(cached.status().message(), HasSubstr("not-a-dir"));
  auto empty = DatasetCache::Open("", "t/train", files, "spec");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("data.cache_dir"));
}

}  // namespace
}  // namespace meshtrain

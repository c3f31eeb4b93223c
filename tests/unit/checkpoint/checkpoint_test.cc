// The commit protocol, the reader and MODEL_DIR handling, on a real temporary
// directory, with FaultInjectionFileSystem playing crashes.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/checkpoint/checkpoint_commit.h"
#include "runtime/checkpoint/checkpoint_reader.h"
#include "runtime/checkpoint/fault_injection_file_system.h"
#include "runtime/checkpoint/model_dir.h"
#include "tests/unit/checkpoint/temp_dir.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

using ::meshtrain::testing::TempDir;

Tensor Filled(Shape shape, float base) {
  Tensor t(DType::kFloat32, shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) p[i] = base + static_cast<float>(i);
  return t;
}

// Variable w [10, 3] held as two partitions (rows 0-3 and 4-9), bias b [3]
// whole; values depend on `step` so checkpoints differ.
CheckpointSnapshot MakeSnapshot(int64_t step) {
  CheckpointSnapshot s;
  s.slot_names = {"momentum"};
  const float base = static_cast<float>(step) * 1000;
  s.entries.push_back(
      {"w", Shape{10, 3}, 0, Filled(Shape{4, 3}, base), {Filled(Shape{4, 3}, -base)}, step});
  s.entries.push_back({"w",
                       Shape{10, 3},
                       4,
                       Filled(Shape{6, 3}, base + 12),
                       {Filled(Shape{6, 3}, -base - 12)},
                       step + 1});
  s.entries.push_back(
      {"b", Shape{3}, 0, Filled(Shape{3}, base + 0.5f), {Filled(Shape{3}, 7)}, step});
  return s;
}

Manifest MakeManifest(int64_t step) {
  Manifest m;
  m.step = step;
  m.input = {step / 10, step % 10};
  m.task_inputs["chief:0"] = m.input;
  m.seed = 99;
  m.strategy = "test";
  m.optimizer = "sgd";
  return m;
}

absl::Status Save(FileSystem& fs, const std::string& dir, int64_t step, int max_to_keep = 0) {
  LocalSnapshotJob job(MakeSnapshot(step));
  return WriteCheckpoint(fs, dir, MakeManifest(step), job, max_to_keep);
}

std::string FirstPartFile(const std::string& model_dir, int64_t step) {
  return CheckpointPath(model_dir, step) + "/model-00000-of-00001.safetensors";
}

TEST(CheckpointTest, RowsReadBackWhateverThePartitionLayout) {
  TempDir tmp;
  FileSystem& fs = DefaultFileSystem();
  ASSERT_TRUE(Save(fs, tmp.path(), 7).ok());
  auto reader = CheckpointReader::Open(fs, CheckpointPath(tmp.path(), 7));
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->step(), 7);
  EXPECT_EQ((*reader)->manifest().slot_names, std::vector<std::string>{"momentum"});
  ASSERT_NE((*reader)->Find("w"), nullptr);
  EXPECT_EQ((*reader)->Find("w")->partitions.size(), 2u);

  // The whole variable, as one device would restore it: the two partitions in order.
  Tensor whole(DType::kFloat32, Shape{10, 3});
  ASSERT_TRUE((*reader)->ReadRows("w", "", 0, whole).ok());
  for (int i = 0; i < 30; ++i) EXPECT_EQ(whole.data<float>()[i], 7000.0f + i) << i;
  // Rows 3..6 straddle the partitions, as a ps shard of another layout would.
  Tensor middle(DType::kFloat32, Shape{4, 3});
  ASSERT_TRUE((*reader)->ReadRows("w", "momentum", 3, middle).ok());
  // Slot values are -base + i within each partition: row 3 is the first
  // partition's last row, rows 4-6 the second's first three.
  for (int i = 0; i < 12; ++i) {
    const float expected = i < 3 ? -7000.0f + 9 + i : -7012.0f + (i - 3);
    EXPECT_EQ(middle.data<float>()[i], expected) << i;
  }
  EXPECT_EQ(*(*reader)->Updates("w", 2), 7);
  EXPECT_EQ(*(*reader)->Updates("w", 5), 8);

  Tensor wrong(DType::kFloat32, Shape{10, 4});
  EXPECT_EQ((*reader)->ReadRows("w", "", 0, wrong).code(), absl::StatusCode::kInvalidArgument);
  Tensor past(DType::kFloat32, Shape{4, 3});
  EXPECT_EQ((*reader)->ReadRows("w", "", 8, past).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*reader)->ReadRows("nope", "", 0, whole).code(), absl::StatusCode::kNotFound);
  Tensor bias(DType::kFloat32, Shape{3});
  EXPECT_EQ((*reader)->ReadRows("b", "m", 0, bias).code(), absl::StatusCode::kNotFound);

  auto pointer = ReadCheckpointPointer(fs, tmp.path());
  ASSERT_TRUE(pointer.ok());
  EXPECT_EQ(**pointer, 7);
}

TEST(CheckpointTest, KeepsMaxToKeepAndPointsAtTheNewest) {
  TempDir tmp;
  FileSystem& fs = DefaultFileSystem();
  for (int64_t step = 10; step <= 50; step += 10) ASSERT_TRUE(Save(fs, tmp.path(), step, 3).ok());
  auto dirs = ListCheckpointDirs(fs, tmp.path());
  ASSERT_TRUE(dirs.ok());
  std::vector<int64_t> steps;
  for (const CheckpointDirEntry& d : *dirs) steps.push_back(d.step);
  EXPECT_THAT(steps, ::testing::ElementsAre(30, 40, 50));
  std::ifstream pointer(tmp.path() + "/checkpoint");
  std::string text((std::istreambuf_iterator<char>(pointer)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text,
            "model_checkpoint_path: \"ckpt-50\"\n"
            "all_model_checkpoint_paths: \"ckpt-30\"\n"
            "all_model_checkpoint_paths: \"ckpt-40\"\n"
            "all_model_checkpoint_paths: \"ckpt-50\"\n");
  // Saving a step again replaces it.
  ASSERT_TRUE(Save(fs, tmp.path(), 50, 3).ok());
  auto latest = FindLatestCheckpoint(fs, tmp.path());
  ASSERT_TRUE(latest.ok());
  ASSERT_NE(latest->reader, nullptr);
  EXPECT_EQ(latest->reader->step(), 50);
}

TEST(CheckpointTest, CorruptCheckpointsAreNamedAndSkipped) {
  TempDir tmp;
  FileSystem& fs = DefaultFileSystem();
  for (int64_t step : {10, 20, 30, 40}) ASSERT_TRUE(Save(fs, tmp.path(), step).ok());
  // ckpt-40: one flipped byte in the tensor data.
  {
    std::fstream f(FirstPartFile(tmp.path(), 40), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-5, std::ios::end);
    char c = 0;
    f.read(&c, 1);
    f.seekp(-5, std::ios::end);
    c ^= 0x10;
    f.write(&c, 1);
  }
  // ckpt-30: truncated.
  std::filesystem::resize_file(FirstPartFile(tmp.path(), 30),
                               std::filesystem::file_size(FirstPartFile(tmp.path(), 30)) - 100);
  // ckpt-20: a manifest that is not JSON.
  { std::ofstream(CheckpointPath(tmp.path(), 20) + "/index.json") << "{\"format\": "; }

  auto latest = FindLatestCheckpoint(fs, tmp.path());
  ASSERT_TRUE(latest.ok());
  ASSERT_NE(latest->reader, nullptr);
  EXPECT_EQ(latest->reader->step(), 10);
  ASSERT_EQ(latest->skipped.size(), 3u);
  for (const absl::Status& s : latest->skipped)
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(latest->skipped[0].message()), HasSubstr(FirstPartFile(tmp.path(), 40)));
  EXPECT_THAT(std::string(latest->skipped[0].message()), HasSubstr("CRC32C"));
  EXPECT_THAT(std::string(latest->skipped[1].message()), HasSubstr(FirstPartFile(tmp.path(), 30)));
  EXPECT_THAT(std::string(latest->skipped[1].message()), HasSubstr("truncated"));
  EXPECT_THAT(std::string(latest->skipped[2].message()), HasSubstr("ckpt-20/index.json"));
  // With the last good one gone as well there is nothing to restore, and that is no error.
  std::filesystem::remove(FirstPartFile(tmp.path(), 10));
  latest = FindLatestCheckpoint(fs, tmp.path());
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->reader, nullptr);
  EXPECT_EQ(latest->skipped.size(), 4u);
  EXPECT_THAT(std::string(latest->skipped[3].message()), HasSubstr("cannot be read"));
}

void FlipLastByte(const std::string& path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(-1, std::ios::end);
  const char c = static_cast<char>(f.get());
  f.seekp(-1, std::ios::end);
  f.put(static_cast<char>(c ^ 0x01));
}

std::vector<int64_t> Steps(FileSystem& fs, const std::string& model_dir) {
  const absl::StatusOr<std::vector<CheckpointDirEntry>> dirs = ListCheckpointDirs(fs, model_dir);
  std::vector<int64_t> steps;
  if (!dirs.ok()) return steps;
  for (const CheckpointDirEntry& d : *dirs) steps.push_back(d.step);
  return steps;
}

// The step of the newest valid checkpoint; -1 when there is none.
int64_t LatestValidStep(FileSystem& fs, const std::string& model_dir) {
  absl::StatusOr<LatestCheckpoint> latest = FindLatestCheckpoint(fs, model_dir);
  if (!latest.ok() || latest->reader == nullptr) return -1;
  return latest->reader->step();
}

// ckpt-10 valid, ckpt-20 and ckpt-30 corrupt (a flipped byte each).
void SaveValidThenTwoCorrupt(FileSystem& fs, const std::string& model_dir) {
  ASSERT_TRUE(Save(fs, model_dir, 10, 1).ok());
  for (int64_t step : {20, 30}) {
    ASSERT_TRUE(Save(fs, model_dir, step, 0).ok());
    FlipLastByte(FirstPartFile(model_dir, step));
  }
}

// With --max-to-keep 1, pruning once counted a corrupt newer checkpoint and
// deleted the only valid one.
TEST(CheckpointTest, PruningNeverCountsCorruptCheckpointsNorDeletesTheNewestValid) {
  TempDir tmp;
  FileSystem& fs = DefaultFileSystem();
  SaveValidThenTwoCorrupt(fs, tmp.path());
  ASSERT_TRUE(Save(fs, tmp.path(), 40, 0).ok());
  auto kept = PruneCheckpoints(fs, tmp.path(), 40, 2);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_THAT(*kept, ::testing::ElementsAre(10, 40));
  EXPECT_THAT(Steps(fs, tmp.path()), ::testing::ElementsAre(10, 20, 30, 40));

  // The next save keeps 40 and itself; the corrupt ones older than the kept
  // ones go with the rest.
  ASSERT_TRUE(Save(fs, tmp.path(), 50, 2).ok());
  EXPECT_THAT(Steps(fs, tmp.path()), ::testing::ElementsAre(40, 50));
  std::ifstream pointer(tmp.path() + "/checkpoint");
  std::string text((std::istreambuf_iterator<char>(pointer)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, HasSubstr("all_model_checkpoint_paths: \"ckpt-40\"\n"));
}

TEST(CheckpointTest, PruningKeepsTheOnlyValidCheckpointBehindCorruptOnes) {
  TempDir tmp;
  FileSystem& fs = DefaultFileSystem();
  SaveValidThenTwoCorrupt(fs, tmp.path());
  // The newest is judged too: ckpt-10, the only valid one, is the one kept.
  auto kept = PruneCheckpoints(fs, tmp.path(), 30, 1);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_THAT(*kept, ::testing::ElementsAre(10));
  EXPECT_THAT(Steps(fs, tmp.path()), ::testing::ElementsAre(10, 20, 30));
  EXPECT_EQ(LatestValidStep(fs, tmp.path()), 10);
}

// ckpt-30 holding a manifest of step 2147483648 was once restored as it was.
TEST(CheckpointTest, AManifestStepThatDisagreesWithTheDirectoryIsCorrupt) {
  TempDir tmp;
  FileSystem& fs = DefaultFileSystem();
  ASSERT_TRUE(Save(fs, tmp.path(), 10).ok());
  ASSERT_TRUE(Save(fs, tmp.path(), 2147483648).ok());
  std::filesystem::rename(CheckpointPath(tmp.path(), 2147483648), CheckpointPath(tmp.path(), 30));
  auto opened = OpenCheckpoint(fs, tmp.path(), 30);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(opened.status().message()),
              HasSubstr("says step 2147483648 but the directory is named ckpt-30"));
  EXPECT_EQ(LatestValidStep(fs, tmp.path()), 10);
  auto latest = FindLatestCheckpoint(fs, tmp.path());
  ASSERT_TRUE(latest.ok());
  ASSERT_EQ(latest->skipped.size(), 1u);
  EXPECT_THAT(std::string(latest->skipped[0].message()), HasSubstr("ckpt-30"));
}

TEST(CheckpointTest, UncommittedDirectoriesAreIgnoredAndPruned) {
  TempDir tmp;
  FileSystem& fs = DefaultFileSystem();
  ASSERT_TRUE(Save(fs, tmp.path(), 10).ok());
  std::filesystem::create_directories(CheckpointPath(tmp.path(), 15));
  { std::ofstream(FirstPartFile(tmp.path(), 15)) << "half a file"; }
  auto latest = FindLatestCheckpoint(fs, tmp.path());
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->reader->step(), 10);
  EXPECT_TRUE(latest->skipped.empty());
  ASSERT_TRUE(Save(fs, tmp.path(), 20).ok());
  EXPECT_FALSE(std::filesystem::exists(CheckpointPath(tmp.path(), 15)));
}

// Kills the "process" before each mutating operation of a save in turn: the
// newest valid checkpoint is always the previous one or the new one, nothing
// is ever reported corrupt, and the next save succeeds.
TEST(CheckpointTest, CrashAtAnyPointOfASaveLeavesAValidCheckpoint) {
  int64_t total_ops = 0;
  std::vector<std::string> log;
  {
    TempDir tmp;
    ASSERT_TRUE(Save(DefaultFileSystem(), tmp.path(), 10, 1).ok());
    FaultInjectionFileSystem counting(DefaultFileSystem(), {});
    ASSERT_TRUE(Save(counting, tmp.path(), 20, 1).ok());
    total_ops = counting.ops();
    log = counting.op_log();
  }
  ASSERT_GT(total_ops, 15);  // prepare, part, manifest, pointer, prune
  std::printf("a save is %lld file-system operations\n", static_cast<long long>(total_ops));
  int new_seen = 0;
  for (int64_t k = 0; k < total_ops; ++k) {
    SCOPED_TRACE("crash before operation " + std::to_string(k) + ": " + log[k]);
    TempDir tmp;
    FileSystem& real = DefaultFileSystem();
    ASSERT_TRUE(Save(real, tmp.path(), 10, 1).ok());
    FaultInjectionFileSystem crashing(real, {.crash_after_ops = k});
    absl::Status crashed = Save(crashing, tmp.path(), 20, 1);
    EXPECT_FALSE(crashed.ok());
    EXPECT_THAT(std::string(crashed.message()), HasSubstr("injected crash"));
    auto latest = FindLatestCheckpoint(real, tmp.path());
    ASSERT_TRUE(latest.ok()) << latest.status();
    EXPECT_TRUE(latest->skipped.empty()) << latest->skipped[0];
    ASSERT_NE(latest->reader, nullptr);
    EXPECT_THAT(latest->reader->step(), ::testing::AnyOf(10, 20));
    new_seen += latest->reader->step() == 20;
    // The survivor's next save works and cleans up.
    ASSERT_TRUE(Save(real, tmp.path(), 30, 1).ok());
    auto dirs = ListCheckpointDirs(real, tmp.path());
    ASSERT_TRUE(dirs.ok());
    ASSERT_EQ(dirs->size(), 1u);
    EXPECT_EQ((*dirs)[0].step, 30);
  }
  // Once the manifest is renamed into place the new checkpoint counts; the
  // pointer and the prune come after it.
  EXPECT_GT(new_seen, 0);
  EXPECT_LT(new_seen, total_ops);
}

// Every path under `dir` whose name holds ".tmp" (a partial file).
std::vector<std::string> TempFiles(const std::string& dir) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.path().filename().string().find(".tmp") != std::string::npos) {
      found.push_back(entry.path().string());
    }
  }
  return found;
}

TEST(FullDiskTest, AFailedAtomicWriteRemovesItsPartialFile) {
  TempDir tmp;
  FaultInjectionFileSystem full(DefaultFileSystem(), {.free_bytes = 10});
  const std::string big(100, 'x');
  const absl::string_view pieces[] = {big};
  const absl::Status status = WriteFileAtomically(full, tmp.path() + "/file", pieces);
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("No space left on device"));
  EXPECT_TRUE(TempFiles(tmp.path()).empty());
  EXPECT_FALSE(full.Exists(tmp.path() + "/file"));
  EXPECT_EQ(*full.AvailableBytes(tmp.path()), 10);  // the partial bytes came back
}

TEST(FullDiskTest, AFailedSaveRemovesItsPartialFilesAndKeepsThePreviousCheckpoint) {
  TempDir tmp;
  FaultInjectionFileSystem fs(DefaultFileSystem(), {});
  ASSERT_TRUE(Save(fs, tmp.path(), 10).ok());
  const int64_t checkpoint_bytes =
      static_cast<int64_t>(std::filesystem::file_size(FirstPartFile(tmp.path(), 10)));
  // Room for half a checkpoint: the part file fails half-way.
  fs.SetFreeBytes(checkpoint_bytes / 2);
  const absl::Status status = Save(fs, tmp.path(), 20);
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  EXPECT_EQ(fs.no_space_errors(), 1);
  EXPECT_TRUE(TempFiles(tmp.path()).empty());
  EXPECT_FALSE(fs.Exists(CheckpointPath(tmp.path(), 20)));
  EXPECT_EQ(*fs.AvailableBytes(tmp.path()), checkpoint_bytes / 2);
  EXPECT_EQ(LatestValidStep(fs, tmp.path()), 10);
  // Space freed: the next save goes through.
  fs.SetFreeBytes(-1);
  ASSERT_TRUE(Save(fs, tmp.path(), 30).ok());
  EXPECT_EQ(LatestValidStep(fs, tmp.path()), 30);
}

TEST(FullDiskTest, AManifestThatDoesNotFitLeavesNoDirectoryBehind) {
  TempDir tmp;
  LocalSnapshotJob job(MakeSnapshot(5));
  FaultInjectionFileSystem probe(DefaultFileSystem(), {});
  ASSERT_TRUE(WriteCheckpoint(probe, tmp.path(), MakeManifest(5), job, 0).ok());
  const int64_t part_bytes =
      static_cast<int64_t>(std::filesystem::file_size(FirstPartFile(tmp.path(), 5)));
  // The part fits, its index.json does not.
  FaultInjectionFileSystem fs(DefaultFileSystem(), {.free_bytes = part_bytes + 10});
  LocalSnapshotJob again(MakeSnapshot(6));
  const absl::Status status = WriteCheckpoint(fs, tmp.path(), MakeManifest(6), again, 0);
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  EXPECT_FALSE(fs.Exists(CheckpointPath(tmp.path(), 6)));
  EXPECT_TRUE(TempFiles(tmp.path()).empty());
  EXPECT_EQ(LatestValidStep(fs, tmp.path()), 5);
}

}  // namespace
}  // namespace meshtrain

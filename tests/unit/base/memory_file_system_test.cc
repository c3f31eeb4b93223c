// MemoryFileSystem: the FileSystem operations a checkpoint commit uses, in memory.
#include "runtime/base/memory_file_system.h"

#include <algorithm>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::ElementsAre;

TEST(MemoryFileSystemTest, AtomicWritesRenamesListingsAndRemoval) {
  MemoryFileSystem fs;
  // A file needs its directory, as on POSIX.
  EXPECT_TRUE(absl::IsNotFound(fs.NewWritableFile("/held/ckpt-3/index.json").status()));
  ASSERT_TRUE(fs.CreateDir("/held/ckpt-3").ok());
  EXPECT_TRUE(fs.Exists("/held"));
  ASSERT_TRUE(WriteFileAtomically(fs, "/held/ckpt-3/index.json", {"{\"step\": ", "3}"}).ok());
  ASSERT_TRUE(WriteFileAtomically(fs, "/held/checkpoint", {"ckpt-3"}).ok());
  absl::StatusOr<std::string> text = fs.ReadFile("/held/ckpt-3//index.json");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "{\"step\": 3}");
  absl::StatusOr<std::vector<std::string>> names = fs.ListDir("/held/");
  ASSERT_TRUE(names.ok()) << names.status();
  std::sort(names->begin(), names->end());
  EXPECT_THAT(*names, ElementsAre("checkpoint", "ckpt-3"));  // no temporary file left
  EXPECT_EQ(fs.bytes(), 11 + 6);
  ASSERT_TRUE(fs.Rename("/held/checkpoint", "/held/pointer").ok());
  EXPECT_FALSE(fs.Exists("/held/checkpoint"));
  EXPECT_TRUE(absl::IsNotFound(fs.ReadFile("/held/checkpoint").status()));
  ASSERT_TRUE(fs.RemoveAll("/held/ckpt-3").ok());
  EXPECT_FALSE(fs.Exists("/held/ckpt-3/index.json"));
  EXPECT_FALSE(fs.Exists("/held/ckpt-3"));
  EXPECT_TRUE(fs.Exists("/held/pointer"));
  EXPECT_TRUE(fs.RemoveAll("/nothing").ok());
}

TEST(MemoryFileSystemTest, AFileIsVisibleAtSyncAndTruncatesBack) {
  MemoryFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("/d").ok());
  auto file = fs.NewWritableFile("/d/f");
  ASSERT_TRUE(file.ok());
  const std::string data = "abcdef";
  ASSERT_TRUE(
      (*file)
          ->Append(absl::MakeSpan(reinterpret_cast<const std::byte*>(data.data()), data.size()))
          .ok());
  ASSERT_TRUE((*file)->Truncate(3).ok());
  ASSERT_TRUE((*file)->Sync().ok());
  EXPECT_EQ(*fs.ReadFile("/d/f"), "abc");
}

}  // namespace
}  // namespace meshtrain

#include "runtime/base/atomic_file.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(AtomicFileTest, WritesAndReplacesWholeFiles) {
  const std::string dir = ::testing::TempDir() + "/atomic_file_test";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/report.json";
  ASSERT_TRUE(WriteFileAtomically(path, "first").ok());
  EXPECT_EQ(Read(path), "first");
  ASSERT_TRUE(WriteFileAtomically(path, "second, longer").ok());
  EXPECT_EQ(Read(path), "second, longer");
  // No temporary file is left behind.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    files += entry.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(AtomicFileTest, MissingDirectoryIsNotFoundNamingTheFile) {
  absl::Status s = WriteFileAtomically("/nonexistent-dir-for-meshtrain/x.json", "x");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(s.message().find("/nonexistent-dir-for-meshtrain/x.json"), absl::string_view::npos)
      << s;
}

}  // namespace
}  // namespace meshtrain

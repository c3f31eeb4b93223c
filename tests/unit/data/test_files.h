// Test support: a fresh temporary directory per test and files written into it,
// plain or gzip-compressed. Header-only; used by the IDX and Fashion-MNIST tests.
#ifndef MESHTRAIN_TESTS_UNIT_DATA_TEST_FILES_H_
#define MESHTRAIN_TESTS_UNIT_DATA_TEST_FILES_H_

#include <stdlib.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace meshtrain::testing {

// A directory under the test temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = absl::StrCat(::testing::TempDir(), "/meshtrain_data_XXXXXX");
    EXPECT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { std::filesystem::remove_all(path_); }

  const std::string& path() const { return path_; }
  std::string File(absl::string_view name) const { return absl::StrCat(path_, "/", name); }

 private:
  std::string path_;
};

inline void WritePlainFile(const std::string& path, absl::string_view bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "writing " << path;
}

inline void WriteGzFile(const std::string& path, absl::string_view bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr) << "gzopen " << path;
  if (!bytes.empty()) {
    EXPECT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
  }
  ASSERT_EQ(gzclose(file), Z_OK) << "gzclose " << path;
}

}  // namespace meshtrain::testing

#endif  // MESHTRAIN_TESTS_UNIT_DATA_TEST_FILES_H_

// Test support: a fresh directory under /tmp, removed with everything in it
// when the object goes. Not thread-safe.
#ifndef MESHTRAIN_TESTS_UNIT_CHECKPOINT_TEMP_DIR_H_
#define MESHTRAIN_TESTS_UNIT_CHECKPOINT_TEMP_DIR_H_

#include <unistd.h>

#include <filesystem>
#include <string>

namespace meshtrain::testing {

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/meshtrain-test-XXXXXX";
    path_ = ::mkdtemp(pattern);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace meshtrain::testing

#endif  // MESHTRAIN_TESTS_UNIT_CHECKPOINT_TEMP_DIR_H_

// Small file helpers shared by unit tests.
#ifndef MESHTRAIN_TESTS_UNIT_TEST_FILES_H_
#define MESHTRAIN_TESTS_UNIT_TEST_FILES_H_

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace meshtrain::testing {

// The whole file ("" if it cannot be read).
inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ::testing::TempDir()/name, removed with everything in it (not created).
inline std::string FreshTempDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

}  // namespace meshtrain::testing

#endif  // MESHTRAIN_TESTS_UNIT_TEST_FILES_H_

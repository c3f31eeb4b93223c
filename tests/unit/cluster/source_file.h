// ReadSourceFile: a file of the source tree, for tests that keep docs and
// example configs honest. CMake defines MESHTRAIN_SOURCE_DIR for the test.
#ifndef MESHTRAIN_TESTS_UNIT_CLUSTER_SOURCE_FILE_H_
#define MESHTRAIN_TESTS_UNIT_CLUSTER_SOURCE_FILE_H_

#include <fstream>
#include <sstream>
#include <string>

namespace meshtrain {

// The file's text, or "" if it cannot be read (the caller's assertions fail).
inline std::string ReadSourceFile(const std::string& path_from_root) {
  std::ifstream in(std::string(MESHTRAIN_SOURCE_DIR) + "/" + path_from_root);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace meshtrain

#endif  // MESHTRAIN_TESTS_UNIT_CLUSTER_SOURCE_FILE_H_

#include "runtime/base/atomic_file.h"

#include "runtime/base/file_system.h"

namespace meshtrain {

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents) {
  const absl::string_view pieces[] = {contents};
  return WriteFileAtomically(DefaultFileSystem(), path, pieces);
}

}  // namespace meshtrain

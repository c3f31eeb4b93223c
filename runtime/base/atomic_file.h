// WriteFileAtomically: a file's whole new contents, or its old ones: the bytes
// go to a temporary file beside it (fsynced), which is then renamed over it, so
// a reader never sees half a file. For reports, traces and summaries (not for
// checkpoints, which commit a directory: runtime/checkpoint). Thread-compatible.
#ifndef MESHTRAIN_RUNTIME_BASE_ATOMIC_FILE_H_
#define MESHTRAIN_RUNTIME_BASE_ATOMIC_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace meshtrain {

// kPermissionDenied when the directory cannot be written; kDataLoss when a
// write or the rename fails (the temporary file is removed).
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_BASE_ATOMIC_FILE_H_

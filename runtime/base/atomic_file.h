// WriteFileAtomically(path, contents): a file's whole new contents, or its old
// ones, on the POSIX file system: the general form in file_system.h (temporary
// file, fsync, rename, directory fsync) with one piece. For reports, traces and
// summaries. Thread-safe.
#ifndef MESHTRAIN_RUNTIME_BASE_ATOMIC_FILE_H_
#define MESHTRAIN_RUNTIME_BASE_ATOMIC_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace meshtrain {

// Errors as FileSystem's: NotFound for a missing directory, PermissionDenied
// for one that cannot be written, DataLoss when a write or the rename fails
// (the temporary file is removed).
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_BASE_ATOMIC_FILE_H_

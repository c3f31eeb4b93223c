// FileSystem: the runtime's way to the disk, the file half of Env
// (runtime/base/env.h), as in LevelDB: production uses DefaultFileSystem()
// (POSIX); checkpoint tests wrap it in FaultInjectionFileSystem
// (runtime/checkpoint) to stop the process's I/O at any chosen operation (a
// crash point) or to slow a step down.
//
// The operations are the ones an atomic commit is built from: write a file,
// fsync it, rename it over another, fsync its directory. Errors name the
// operation and the path and keep errno's meaning: NotFound for a missing
// path, PermissionDenied for EACCES/EROFS, ResourceExhausted for ENOSPC,
// DataLoss for other write failures. Implementations are thread-safe; one
// WritableFile is used by one thread.
#ifndef MESHTRAIN_RUNTIME_BASE_FILE_SYSTEM_H_
#define MESHTRAIN_RUNTIME_BASE_FILE_SYSTEM_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace meshtrain {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual absl::Status Append(absl::Span<const std::byte> data) = 0;
  // Data and size reach the disk (fsync) before this returns.
  virtual absl::Status Sync() = 0;
  virtual absl::Status Close() = 0;
  // Cuts the file back to `size_bytes` and writes on from there: how a writer
  // takes back a partial append (a full disk) so the file stays well formed.
  virtual absl::Status Truncate(int64_t size_bytes) {
    return absl::UnimplementedError("truncate: not supported by this file system");
  }
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Creates or truncates `path`.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) = 0;
  // The whole file.
  virtual absl::StatusOr<std::string> ReadFile(const std::string& path) = 0;
  // Atomically replaces `to` with `from` (rename(2)).
  virtual absl::Status Rename(const std::string& from, const std::string& to) = 0;
  // Makes the directory's entries (creations, renames, removals) durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  // Creates `dir` and its missing parents; OK if it exists.
  virtual absl::Status CreateDir(const std::string& dir) = 0;
  // The names in `dir` (not "." or ".."), unordered.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // Removes a file or a directory tree; OK if absent.
  virtual absl::Status RemoveAll(const std::string& path) = 0;
  virtual bool Exists(const std::string& path) = 0;
  // Bytes an unprivileged writer can still add under `dir` (statvfs), for
  // messages that say how much space is missing.
  virtual absl::StatusOr<int64_t> AvailableBytes(const std::string& dir) {
    return absl::UnimplementedError("available bytes: not supported by this file system");
  }
};

// The POSIX file system. Stateless; lives for the whole process.
FileSystem& DefaultFileSystem();

// "a/b" from ("a", "b"); `name` absolute stays itself.
std::string JoinPath(absl::string_view dir, absl::string_view name);
// The directory part of `path` ("." for a bare name).
std::string DirName(absl::string_view path);

// The one atomic write of the runtime: `write` fills a temporary file beside
// `path` (PATH.tmp.<pid>.<n>), which is fsynced and renamed over PATH, and the
// directory is fsynced. A reader sees the old file or the whole new one; a
// crash leaves the old PATH (and maybe a stale temporary file). On an error
// (a full disk included) the temporary file is removed before returning.
absl::Status WriteFileAtomically(FileSystem& fs, const std::string& path,
                                 const std::function<absl::Status(WritableFile&)>& write);
// The same with the file's contents given as `pieces`, written in order.
absl::Status WriteFileAtomically(FileSystem& fs, const std::string& path,
                                 absl::Span<const absl::string_view> pieces);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_BASE_FILE_SYSTEM_H_

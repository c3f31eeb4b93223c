// MemoryFileSystem: a FileSystem held in this process's memory. An elastic
// worker (docs/fault_tolerance.md 5.9) writes the state it holds at a step
// boundary there as an ordinary checkpoint when its cluster loses a member, so
// that the checkpoint code (commit, manifest, verification, restore into any
// strategy) serves a state that never touched a disk. Paths are plain strings
// split on '/'; a file's parent directories must exist (CreateDir makes
// them), as on POSIX. Sync and SyncDir do nothing; nothing here survives the
// process. Thread-safe.
#ifndef MESHTRAIN_RUNTIME_BASE_MEMORY_FILE_SYSTEM_H_
#define MESHTRAIN_RUNTIME_BASE_MEMORY_FILE_SYSTEM_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "runtime/base/file_system.h"

namespace meshtrain {

class MemoryFileSystem final : public FileSystem {
 public:
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  absl::StatusOr<std::string> ReadFile(const std::string& path) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status SyncDir(const std::string& dir) override;
  absl::Status CreateDir(const std::string& dir) override;
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override;
  absl::Status RemoveAll(const std::string& path) override;
  bool Exists(const std::string& path) override;

  // Bytes held in files.
  int64_t bytes() const;

 private:
  class File;

  mutable absl::Mutex mu_;
  std::map<std::string, std::string> files_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> dirs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_BASE_MEMORY_FILE_SYSTEM_H_

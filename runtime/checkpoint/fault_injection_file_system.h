// FaultInjectionFileSystem: a FileSystem wrapper for tests that plays a process
// killed at a chosen moment. It counts mutating operations (create, append,
// sync, close, rename, sync dir, create dir, remove); once `crash_after_ops`
// have gone through, every later mutating operation does nothing and fails
// with kInternal "injected crash ...", except that the first refused append
// writes half of its bytes first (a torn write). Reads keep working, so a test
// can then look at what the "dead" process left behind through the same or the
// base file system. It can also sleep before every fsync (`sync_delay`) to hold
// a writer inside a checkpoint write.
//
// With `free_bytes` set it also plays a full disk: appends beyond the free
// space write what fits and fail with kResourceExhausted ("No space left on
// device"), as write(2) does with ENOSPC; removing or truncating a file gives
// its bytes back. SetFreeBytes changes the space at any time. Refused appends
// are not crashes: every other operation goes on working.
//
// It models SIGKILL (the kernel keeps what was written), not power loss (which
// may drop unsynced data); the commit protocol's fsync order covers the latter.
// Thread-safe.
#ifndef MESHTRAIN_RUNTIME_CHECKPOINT_FAULT_INJECTION_FILE_SYSTEM_H_
#define MESHTRAIN_RUNTIME_CHECKPOINT_FAULT_INJECTION_FILE_SYSTEM_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/base/file_system.h"

namespace meshtrain {

struct FaultInjectionOptions {
  int64_t crash_after_ops = -1;  // -1: never crash
  absl::Duration sync_delay = absl::ZeroDuration();
  int64_t free_bytes = -1;  // -1: unlimited
};

class FaultInjectionFileSystem final : public FileSystem {
 public:
  // `base` must outlive this.
  FaultInjectionFileSystem(FileSystem& base, FaultInjectionOptions options)
      : base_(base), options_(options), free_bytes_(options.free_bytes) {}

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  absl::StatusOr<std::string> ReadFile(const std::string& path) override {
    return base_.ReadFile(path);
  }
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status SyncDir(const std::string& dir) override;
  absl::Status CreateDir(const std::string& dir) override;
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    return base_.ListDir(dir);
  }
  absl::Status RemoveAll(const std::string& path) override;
  bool Exists(const std::string& path) override { return base_.Exists(path); }
  absl::StatusOr<int64_t> AvailableBytes(const std::string& dir) override;

  // The simulated free space (-1: unlimited).
  void SetFreeBytes(int64_t free_bytes);
  // Appends refused for want of space so far.
  int64_t no_space_errors() const;

  // Mutating operations attempted so far (refused ones included), and their
  // descriptions ("rename a to b"), for tests that enumerate crash points.
  int64_t ops() const;
  std::vector<std::string> op_log() const;
  bool crashed() const;

 private:
  class File;
  // Counts an operation; false if it must be refused (the process is "dead").
  bool Admit(absl::string_view description);
  absl::Status Crash(absl::string_view description) const;
  void DelaySync() const;
  // How many of `size` bytes appended to `path` fit (all if unlimited), taken
  // from the free space.
  int64_t Reserve(const std::string& path, int64_t size);
  void Release(const std::string& path, int64_t keep_bytes);

  FileSystem& base_;
  const FaultInjectionOptions options_;
  mutable absl::Mutex mu_;
  int64_t ops_ ABSL_GUARDED_BY(mu_) = 0;
  bool crashed_ ABSL_GUARDED_BY(mu_) = false;
  bool torn_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> log_ ABSL_GUARDED_BY(mu_);
  int64_t free_bytes_ ABSL_GUARDED_BY(mu_);
  int64_t no_space_errors_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int64_t> file_bytes_ ABSL_GUARDED_BY(mu_);  // written through this
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CHECKPOINT_FAULT_INJECTION_FILE_SYSTEM_H_

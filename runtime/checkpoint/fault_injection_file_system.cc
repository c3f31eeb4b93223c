#include "runtime/checkpoint/fault_injection_file_system.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {

class FaultInjectionFileSystem::File final : public WritableFile {
 public:
  File(FaultInjectionFileSystem& fs, std::string path, std::unique_ptr<WritableFile> base)
      : fs_(fs), path_(std::move(path)), base_(std::move(base)) {}

  absl::Status Append(absl::Span<const std::byte> data) override {
    const std::string what = absl::StrCat("append ", data.size(), " bytes to ", path_);
    if (fs_.Admit(what)) {
      const int64_t fits = fs_.Reserve(path_, static_cast<int64_t>(data.size()));
      if (fits == static_cast<int64_t>(data.size())) return base_->Append(data);
      if (fits > 0) MESHTRAIN_RETURN_IF_ERROR(base_->Append(data.subspan(0, fits)));
      return absl::ResourceExhaustedError(
          absl::StrCat("write ", path_, ": No space left on device"));
    }
    bool tear = false;
    {
      absl::MutexLock lock(&fs_.mu_);
      tear = !fs_.torn_;
      fs_.torn_ = true;
    }
    if (tear) (void)base_->Append(data.subspan(0, data.size() / 2));
    return fs_.Crash(what);
  }

  absl::Status Sync() override {
    const std::string what = absl::StrCat("fsync ", path_);
    if (!fs_.Admit(what)) return fs_.Crash(what);
    fs_.DelaySync();
    return base_->Sync();
  }

  absl::Status Truncate(int64_t size_bytes) override {
    const std::string what = absl::StrCat("truncate ", path_, " to ", size_bytes, " bytes");
    if (!fs_.Admit(what)) return fs_.Crash(what);
    MESHTRAIN_RETURN_IF_ERROR(base_->Truncate(size_bytes));
    fs_.Release(path_, size_bytes);
    return absl::OkStatus();
  }

  absl::Status Close() override {
    const std::string what = absl::StrCat("close ", path_);
    if (!fs_.Admit(what)) return fs_.Crash(what);
    return base_->Close();
  }

 private:
  FaultInjectionFileSystem& fs_;
  const std::string path_;
  std::unique_ptr<WritableFile> base_;
};

bool FaultInjectionFileSystem::Admit(absl::string_view description) {
  absl::MutexLock lock(&mu_);
  log_.emplace_back(description);
  ++ops_;
  if (options_.crash_after_ops >= 0 && ops_ > options_.crash_after_ops) crashed_ = true;
  return !crashed_;
}

absl::Status FaultInjectionFileSystem::Crash(absl::string_view description) const {
  return absl::InternalError(absl::StrCat("injected crash before ", description));
}

void FaultInjectionFileSystem::DelaySync() const {
  if (options_.sync_delay > absl::ZeroDuration()) absl::SleepFor(options_.sync_delay);
}

absl::StatusOr<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::NewWritableFile(
    const std::string& path) {
  const std::string what = absl::StrCat("create ", path);
  if (!Admit(what)) return Crash(what);
  absl::StatusOr<std::unique_ptr<WritableFile>> base = base_.NewWritableFile(path);
  if (!base.ok()) return base.status();
  Release(path, 0);  // created or truncated
  return std::unique_ptr<WritableFile>(new File(*this, path, std::move(*base)));
}

absl::Status FaultInjectionFileSystem::Rename(const std::string& from, const std::string& to) {
  const std::string what = absl::StrCat("rename ", from, " to ", to);
  if (!Admit(what)) return Crash(what);
  MESHTRAIN_RETURN_IF_ERROR(base_.Rename(from, to));
  Release(to, 0);
  absl::MutexLock lock(&mu_);
  auto it = file_bytes_.find(from);
  if (it != file_bytes_.end()) {
    file_bytes_[to] = it->second;
    file_bytes_.erase(it);
  }
  return absl::OkStatus();
}

absl::Status FaultInjectionFileSystem::SyncDir(const std::string& dir) {
  const std::string what = absl::StrCat("fsync directory ", dir);
  if (!Admit(what)) return Crash(what);
  DelaySync();
  return base_.SyncDir(dir);
}

absl::Status FaultInjectionFileSystem::CreateDir(const std::string& dir) {
  const std::string what = absl::StrCat("create directory ", dir);
  if (!Admit(what)) return Crash(what);
  return base_.CreateDir(dir);
}

absl::Status FaultInjectionFileSystem::RemoveAll(const std::string& path) {
  const std::string what = absl::StrCat("remove ", path);
  if (!Admit(what)) return Crash(what);
  MESHTRAIN_RETURN_IF_ERROR(base_.RemoveAll(path));
  absl::MutexLock lock(&mu_);
  for (auto it = file_bytes_.begin(); it != file_bytes_.end();) {
    if (it->first == path || absl::StartsWith(it->first, absl::StrCat(path, "/"))) {
      if (free_bytes_ >= 0) free_bytes_ += it->second;
      it = file_bytes_.erase(it);
    } else {
      ++it;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> FaultInjectionFileSystem::AvailableBytes(const std::string& dir) {
  {
    absl::MutexLock lock(&mu_);
    if (free_bytes_ >= 0) return free_bytes_;
  }
  return base_.AvailableBytes(dir);
}

void FaultInjectionFileSystem::SetFreeBytes(int64_t free_bytes) {
  absl::MutexLock lock(&mu_);
  free_bytes_ = free_bytes;
}

int64_t FaultInjectionFileSystem::no_space_errors() const {
  absl::MutexLock lock(&mu_);
  return no_space_errors_;
}

int64_t FaultInjectionFileSystem::Reserve(const std::string& path, int64_t size) {
  absl::MutexLock lock(&mu_);
  const int64_t fits = free_bytes_ < 0 ? size : std::min(size, free_bytes_);
  if (free_bytes_ >= 0) free_bytes_ -= fits;
  if (fits < size) ++no_space_errors_;
  file_bytes_[path] += fits;
  return fits;
}

void FaultInjectionFileSystem::Release(const std::string& path, int64_t keep_bytes) {
  absl::MutexLock lock(&mu_);
  int64_t& bytes = file_bytes_[path];
  if (bytes > keep_bytes) {
    if (free_bytes_ >= 0) free_bytes_ += bytes - keep_bytes;
    bytes = keep_bytes;
  }
}

int64_t FaultInjectionFileSystem::ops() const {
  absl::MutexLock lock(&mu_);
  return ops_;
}

std::vector<std::string> FaultInjectionFileSystem::op_log() const {
  absl::MutexLock lock(&mu_);
  return log_;
}

bool FaultInjectionFileSystem::crashed() const {
  absl::MutexLock lock(&mu_);
  return crashed_;
}

}  // namespace meshtrain

#include "runtime/checkpoint/fault_injection_file_system.h"

#include "absl/strings/str_cat.h"

namespace meshtrain {

class FaultInjectionFileSystem::File final : public WritableFile {
 public:
  File(FaultInjectionFileSystem& fs, std::string path, std::unique_ptr<WritableFile> base)
      : fs_(fs), path_(std::move(path)), base_(std::move(base)) {}

  absl::Status Append(absl::Span<const std::byte> data) override {
    const std::string what = absl::StrCat("append ", data.size(), " bytes to ", path_);
    if (fs_.Admit(what)) return base_->Append(data);
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
  return std::unique_ptr<WritableFile>(new File(*this, path, std::move(*base)));
}

absl::Status FaultInjectionFileSystem::Rename(const std::string& from, const std::string& to) {
  const std::string what = absl::StrCat("rename ", from, " to ", to);
  if (!Admit(what)) return Crash(what);
  return base_.Rename(from, to);
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
  return base_.RemoveAll(path);
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

#include "runtime/base/memory_file_system.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace meshtrain {
namespace {

// "a/b/" and "a//b" name "a/b".
std::string Normalize(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out.push_back(c);
  }
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

bool IsUnder(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() && absl::StartsWith(path, dir) &&
         (dir == "/" || path[dir.size()] == '/');
}

}  // namespace

// Appends to a buffer that replaces the file's contents at each Sync, at
// Close and when destroyed.
class MemoryFileSystem::File final : public WritableFile {
 public:
  File(MemoryFileSystem& fs, std::string path) : fs_(fs), path_(std::move(path)) {}
  ~File() override { (void)Close(); }

  absl::Status Append(absl::Span<const std::byte> data) override {
    contents_.append(reinterpret_cast<const char*>(data.data()), data.size());
    return absl::OkStatus();
  }
  absl::Status Sync() override { return Publish(); }
  absl::Status Close() override { return Publish(); }
  absl::Status Truncate(int64_t size_bytes) override {
    contents_.resize(static_cast<size_t>(size_bytes));
    return absl::OkStatus();
  }

 private:
  // A file renamed or removed since it was opened stays so.
  absl::Status Publish() {
    absl::MutexLock lock(&fs_.mu_);
    auto it = fs_.files_.find(path_);
    if (it != fs_.files_.end()) it->second = contents_;
    return absl::OkStatus();
  }

  MemoryFileSystem& fs_;
  const std::string path_;
  std::string contents_;
};

absl::StatusOr<std::unique_ptr<WritableFile>> MemoryFileSystem::NewWritableFile(
    const std::string& path) {
  const std::string p = Normalize(path);
  absl::MutexLock lock(&mu_);
  const std::string dir = DirName(p);
  if (dir != "." && dir != "/" && !dirs_.contains(dir)) {
    return absl::NotFoundError(absl::StrCat("open ", path, ": no directory ", dir));
  }
  files_[p].clear();
  return std::unique_ptr<WritableFile>(new File(*this, p));
}

absl::StatusOr<std::string> MemoryFileSystem::ReadFile(const std::string& path) {
  absl::MutexLock lock(&mu_);
  auto it = files_.find(Normalize(path));
  if (it == files_.end()) return absl::NotFoundError(absl::StrCat("read ", path, ": no such file"));
  return it->second;
}

absl::Status MemoryFileSystem::Rename(const std::string& from, const std::string& to) {
  absl::MutexLock lock(&mu_);
  auto it = files_.find(Normalize(from));
  if (it == files_.end()) {
    return absl::NotFoundError(absl::StrCat("rename ", from, ": no such file"));
  }
  std::string contents = std::move(it->second);
  files_.erase(it);
  files_[Normalize(to)] = std::move(contents);
  return absl::OkStatus();
}

absl::Status MemoryFileSystem::SyncDir(const std::string&) { return absl::OkStatus(); }

absl::Status MemoryFileSystem::CreateDir(const std::string& dir) {
  std::string p = Normalize(dir);
  absl::MutexLock lock(&mu_);
  while (!p.empty() && p != "." && p != "/") {
    dirs_.insert(p);
    p = DirName(p);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> MemoryFileSystem::ListDir(const std::string& dir) {
  const std::string d = Normalize(dir);
  absl::MutexLock lock(&mu_);
  if (!dirs_.contains(d)) return absl::NotFoundError(absl::StrCat("list ", dir, ": no directory"));
  std::set<std::string> names;
  auto add = [&](const std::string& path) {
    if (DirName(path) == d) names.insert(path.substr(d.size() + (d == "/" ? 0 : 1)));
  };
  for (const auto& [path, contents] : files_) add(path);
  for (const std::string& path : dirs_) add(path);
  return std::vector<std::string>(names.begin(), names.end());
}

absl::Status MemoryFileSystem::RemoveAll(const std::string& path) {
  const std::string p = Normalize(path);
  absl::MutexLock lock(&mu_);
  std::erase_if(files_, [&](const auto& f) { return f.first == p || IsUnder(f.first, p); });
  std::erase_if(dirs_, [&](const std::string& d) { return d == p || IsUnder(d, p); });
  return absl::OkStatus();
}

bool MemoryFileSystem::Exists(const std::string& path) {
  const std::string p = Normalize(path);
  absl::MutexLock lock(&mu_);
  return files_.contains(p) || dirs_.contains(p);
}

int64_t MemoryFileSystem::bytes() const {
  absl::MutexLock lock(&mu_);
  int64_t total = 0;
  for (const auto& [path, contents] : files_) total += static_cast<int64_t>(contents.size());
  return total;
}

}  // namespace meshtrain

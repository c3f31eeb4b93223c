#include "runtime/base/file_system.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

absl::Status ErrnoStatus(int err, absl::string_view op, absl::string_view path) {
  const std::string message = absl::StrCat(op, " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::DataLossError(message);
  }
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  absl::Status Append(absl::Span<const std::byte> data) override {
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return ErrnoStatus(n < 0 ? errno : EIO, "write", path_);
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    if (::fdatasync(fd_) != 0) return ErrnoStatus(errno, "fsync", path_);
    return absl::OkStatus();
  }

  absl::Status Truncate(int64_t size_bytes) override {
    if (::ftruncate(fd_, static_cast<off_t>(size_bytes)) != 0) {
      return ErrnoStatus(errno, "truncate", path_);
    }
    if (::lseek(fd_, static_cast<off_t>(size_bytes), SEEK_SET) < 0) {
      return ErrnoStatus(errno, "seek", path_);
    }
    return absl::OkStatus();
  }

  absl::Status Close() override {
    const int fd = fd_;
    fd_ = -1;
    if (fd >= 0 && ::close(fd) != 0) return ErrnoStatus(errno, "close", path_);
    return absl::OkStatus();
  }

 private:
  const std::string path_;
  int fd_;
};

class PosixFileSystem final : public FileSystem {
 public:
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus(errno, "create", path);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd));
  }

  absl::StatusOr<std::string> ReadFile(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "open", path);
    struct stat st {};
    std::string contents;
    if (::fstat(fd, &st) == 0 && st.st_size > 0) contents.reserve(static_cast<size_t>(st.st_size));
    char buffer[1 << 16];
    while (true) {
      const ssize_t n = ::read(fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int err = errno;
        ::close(fd);
        return ErrnoStatus(err, "read", path);
      }
      if (n == 0) break;
      contents.append(buffer, static_cast<size_t>(n));
    }
    ::close(fd);
    return contents;
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoStatus(errno, "rename", absl::StrCat(from, " to ", to));
    }
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "open directory", dir);
    const bool ok = ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    if (!ok) return ErrnoStatus(err, "fsync directory", dir);
    return absl::OkStatus();
  }

  absl::Status CreateDir(const std::string& dir) override {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return ErrnoStatus(ec.value(), "create directory", dir);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    std::error_code ec;
    std::vector<std::string> names;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    if (ec) return ErrnoStatus(ec.value(), "list directory", dir);
    return names;
  }

  absl::Status RemoveAll(const std::string& path) override {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) return ErrnoStatus(ec.value(), "remove", path);
    return absl::OkStatus();
  }

  bool Exists(const std::string& path) override {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
  }

  absl::StatusOr<int64_t> AvailableBytes(const std::string& dir) override {
    struct statvfs st {};
    if (::statvfs(dir.c_str(), &st) != 0) return ErrnoStatus(errno, "statvfs", dir);
    return static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
  }
};

}  // namespace

FileSystem& DefaultFileSystem() {
  static PosixFileSystem* const fs = new PosixFileSystem();
  return *fs;
}

std::string JoinPath(absl::string_view dir, absl::string_view name) {
  if (dir.empty() || (!name.empty() && name[0] == '/')) return std::string(name);
  if (dir.back() == '/') return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

std::string DirName(absl::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

absl::Status WriteFileAtomically(FileSystem& fs, const std::string& path,
                                 const std::function<absl::Status(WritableFile&)>& write) {
  static std::atomic<uint64_t> next_tmp{0};
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid(), ".", next_tmp.fetch_add(1));
  absl::Status status = [&]() -> absl::Status {
    MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, fs.NewWritableFile(tmp));
    MESHTRAIN_RETURN_IF_ERROR(write(*file));
    MESHTRAIN_RETURN_IF_ERROR(file->Sync());
    MESHTRAIN_RETURN_IF_ERROR(file->Close());
    return fs.Rename(tmp, path);
  }();
  if (!status.ok()) {
    // A full disk must not keep the partial file: it holds the space the
    // next attempt needs.
    const absl::Status removed = fs.RemoveAll(tmp);
    if (!removed.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat(status.message(), "; removing the partial file failed too: ",
                                       removed.message()));
    }
    return status;
  }
  return fs.SyncDir(DirName(path));
}

absl::Status WriteFileAtomically(FileSystem& fs, const std::string& path,
                                 absl::Span<const absl::string_view> pieces) {
  return WriteFileAtomically(fs, path, [pieces](WritableFile& file) -> absl::Status {
    for (absl::string_view piece : pieces) {
      MESHTRAIN_RETURN_IF_ERROR(file.Append(
          absl::MakeConstSpan(reinterpret_cast<const std::byte*>(piece.data()), piece.size())));
    }
    return absl::OkStatus();
  });
}

}  // namespace meshtrain

#include "runtime/data/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace meshtrain {

absl::StatusOr<std::unique_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot open it (", std::strerror(errno), "); check the path"));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::DataLossError(absl::StrCat(path, ": cannot stat it: ", std::strerror(error)));
  }
  auto file = std::unique_ptr<MappedFile>(new MappedFile());
  file->path_ = path;
  const size_t size = static_cast<size_t>(st.st_size);
  if (size > 0) {
    file->map_ = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (file->map_ == MAP_FAILED) {
      const int error = errno;
      file->map_ = nullptr;
      ::close(fd);
      return absl::DataLossError(absl::StrCat(path, ": mmap failed: ", std::strerror(error)));
    }
    file->bytes_ = absl::MakeConstSpan(static_cast<const uint8_t*>(file->map_), size);
  }
  ::close(fd);
  return file;
}

MappedFile::~MappedFile() {
  if (map_ != nullptr) ::munmap(map_, bytes_.size());
}

}  // namespace meshtrain

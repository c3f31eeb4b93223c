// A whole file memory-mapped read-only: the bytes of a .npy file or a .npz
// archive, read in place so that arrays are never copied whole and pages the
// kernel drops are read again from the file. Immutable once opened, so it is
// safe to read from any thread; the bytes live as long as the object.
#ifndef MESHTRAIN_RUNTIME_DATA_MAPPED_FILE_H_
#define MESHTRAIN_RUNTIME_DATA_MAPPED_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace meshtrain {

class MappedFile {
 public:
  // NotFound naming the path when it cannot be opened; DataLoss when it
  // cannot be mapped. An empty file maps to no bytes.
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  absl::Span<const uint8_t> bytes() const { return bytes_; }

 private:
  MappedFile() = default;
  std::string path_;
  void* map_ = nullptr;
  absl::Span<const uint8_t> bytes_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_MAPPED_FILE_H_

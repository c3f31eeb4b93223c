// A zip archive read in place, as NumPy's .npz files are: the central
// directory (zip64 too, which np.savez writes for members past 4 GiB), each
// member's local header checked against it, and a member's bytes either in
// the archive's mapping (stored members, as np.savez writes them: never
// copied) or inflated into memory with zlib (deflated members, as
// np.savez_compressed writes them). Every member read is checked against its
// sizes and CRC-32. Errors name the archive, the member and the problem:
// NotFound for a missing archive or member (listing the members present),
// DataLoss for a malformed or truncated archive or a CRC mismatch,
// InvalidArgument for what we do not read (encryption, spanned archives,
// methods other than stored and deflate).
//
// Our own reader, on zlib (already a dependency): libzip hides where a
// member's data lies, so it cannot serve stored members in place, and
// minizip's headers are not among the build's packages.
//
// Immutable once opened: Find and Read may be called from any thread.
#ifndef MESHTRAIN_RUNTIME_DATA_ZIP_ARCHIVE_H_
#define MESHTRAIN_RUNTIME_DATA_ZIP_ARCHIVE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "runtime/data/mapped_file.h"

namespace meshtrain {

// A member as the central directory describes it.
struct ZipEntry {
  std::string name;
  uint16_t flags = 0;
  uint16_t method = 0;  // 0 stored, 8 deflate
  uint32_t crc32 = 0;
  uint64_t compressed_bytes = 0;
  uint64_t uncompressed_bytes = 0;
  uint64_t local_header_offset = 0;
};

// A member's uncompressed bytes, valid while `owner` lives.
struct ZipMemberBytes {
  absl::Span<const uint8_t> bytes;
  std::shared_ptr<const void> owner;
  bool stored = false;  // true: `bytes` lie in the archive's mapping
};

class ZipArchive {
 public:
  static absl::StatusOr<std::unique_ptr<ZipArchive>> Open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  // The member called exactly `name`, or nullptr.
  const ZipEntry* Find(absl::string_view name) const;
  // "a.npy, b.npy" (the first members, for messages).
  std::string MemberNames() const;
  // NotFound listing the members when there is no `name`.
  absl::StatusOr<ZipMemberBytes> Read(absl::string_view name) const;
  absl::StatusOr<ZipMemberBytes> Read(const ZipEntry& entry) const;

 private:
  ZipArchive() = default;
  std::shared_ptr<const MappedFile> file_;
  std::vector<ZipEntry> entries_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_ZIP_ARCHIVE_H_

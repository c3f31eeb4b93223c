// IDX files: the array format of MNIST and Fashion-MNIST (LeCun et al.). A
// big-endian header, magic [0, 0, type, rank] then `rank` uint32 dimensions,
// then the values row-major. We read unsigned-byte arrays (type 0x08), either
// gzip-compressed or plain (zlib tells them apart by the gzip header).
// Stateless; safe to call from any thread.
#ifndef MESHTRAIN_RUNTIME_DATA_IDX_FILE_H_
#define MESHTRAIN_RUNTIME_DATA_IDX_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace meshtrain {

struct IdxArray {
  std::vector<int64_t> dims;
  std::unique_ptr<uint8_t[]> values;  // product(dims) bytes
  int64_t num_values = 0;

  absl::Span<const uint8_t> span() const { return {values.get(), static_cast<size_t>(num_values)}; }
};

// The largest array we read (a header claiming more is treated as corrupt).
inline constexpr int64_t kMaxIdxBytes = int64_t{1} << 30;

// Reads the unsigned-byte IDX array at `path`. NotFound when the file does not
// exist, PermissionDenied when it cannot be opened, DataLoss naming the path and
// what is wrong when the magic, type, rank or size is bad, when the data stops
// short of the header's dimensions or runs past them, or when the gzip stream is
// corrupt.
absl::StatusOr<IdxArray> ReadIdxFile(absl::string_view path);

// The path of the IDX file `name` in `dir`: DIR/NAME.gz if present, else
// DIR/NAME, else NotFound naming both.
absl::StatusOr<std::string> FindIdxFile(absl::string_view dir, absl::string_view name);

// An IDX file's bytes for `dims` and `values` (uncompressed): for tests and tools.
std::string EncodeIdx(absl::Span<const int64_t> dims, absl::Span<const uint8_t> values);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_IDX_FILE_H_

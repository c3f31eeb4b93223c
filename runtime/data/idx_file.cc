#include "runtime/data/idx_file.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/check.h"

namespace meshtrain {
namespace {

constexpr uint8_t kUnsignedByteType = 0x08;
constexpr int kMaxRank = 8;
// zlib's buffer: larger than its 8 KiB default so a 47 MB file costs few reads.
constexpr unsigned kGzBufferBytes = 1 << 20;
// gzread takes an unsigned count and returns an int: read in pieces below INT_MAX.
constexpr int64_t kReadChunkBytes = int64_t{1} << 26;

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Owns a zlib file handle.
class GzFile {
 public:
  explicit GzFile(gzFile file) : file_(file) {}
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;
  ~GzFile() { gzclose(file_); }

  // Reads up to `bytes`; returns the count read (short only at the end of the
  // data) or DataLoss for a corrupt stream.
  absl::StatusOr<int64_t> Read(uint8_t* out, int64_t bytes, absl::string_view path) {
    int64_t done = 0;
    while (done < bytes) {
      const unsigned want = static_cast<unsigned>(std::min(bytes - done, kReadChunkBytes));
      const int got = gzread(file_, out + done, want);
      if (got < 0) {
        int errnum = 0;
        const char* message = gzerror(file_, &errnum);
        return absl::DataLossError(
            absl::StrCat("reading ", path, ": corrupt gzip stream: ", message));
      }
      done += got;
      if (static_cast<unsigned>(got) < want) break;
    }
    return done;
  }

 private:
  gzFile file_;
};

}  // namespace

absl::StatusOr<IdxArray> ReadIdxFile(absl::string_view path) {
  const std::string path_string(path);
  const int fd = ::open(path_string.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    const std::string message = absl::StrCat("cannot open ", path, ": ", std::strerror(error));
    if (error == ENOENT) return absl::NotFoundError(message);
    if (error == EACCES) return absl::PermissionDeniedError(message);
    return absl::FailedPreconditionError(message);
  }
  gzFile handle = gzdopen(fd, "rb");
  if (handle == nullptr) {
    ::close(fd);
    return absl::ResourceExhaustedError(absl::StrCat("reading ", path, ": zlib out of memory"));
  }
  GzFile file(handle);
  gzbuffer(handle, kGzBufferBytes);
  const auto corrupt = [&](auto... what) {
    return absl::DataLossError(absl::StrCat("reading IDX file ", path, ": ", what...));
  };

  uint8_t magic[4];
  absl::StatusOr<int64_t> got = file.Read(magic, 4, path);
  if (!got.ok()) return got.status();
  if (*got < 4) return corrupt("truncated: ", *got, " bytes, shorter than the 4-byte magic");
  if (magic[0] != 0 || magic[1] != 0) {
    return corrupt("bad magic 0x", absl::Hex(BigEndian32(magic), absl::kZeroPad8),
                   " (an IDX file starts with two zero bytes)");
  }
  if (magic[2] != kUnsignedByteType) {
    return corrupt("element type 0x", absl::Hex(magic[2], absl::kZeroPad2),
                   " is not unsigned byte (0x08)");
  }
  const int rank = magic[3];
  if (rank < 1 || rank > kMaxRank) return corrupt("rank ", rank, " is not in [1, ", kMaxRank, "]");

  uint8_t header[4 * kMaxRank];
  got = file.Read(header, 4 * rank, path);
  if (!got.ok()) return got.status();
  if (*got < 4 * rank) {
    return corrupt("truncated: the header of ", rank, " dimensions stops after ", 4 + *got,
                   " bytes");
  }
  IdxArray array;
  int64_t count = 1;
  for (int i = 0; i < rank; ++i) {
    array.dims.push_back(BigEndian32(header + 4 * i));
    count *= array.dims.back();
    if (count > kMaxIdxBytes) {
      return corrupt("dimensions [", absl::StrJoin(array.dims, ", "), "...] exceed the ",
                     kMaxIdxBytes, "-byte limit");
    }
  }
  // Not value-initialised: no point zeroing what the read overwrites.
  array.values.reset(new uint8_t[static_cast<size_t>(count)]);
  array.num_values = count;
  got = file.Read(array.values.get(), count, path);
  if (!got.ok()) return got.status();
  if (*got < count) {
    return corrupt("truncated: dimensions [", absl::StrJoin(array.dims, ", "), "] need ", count,
                   " data bytes but the file holds ", *got);
  }
  uint8_t extra;
  got = file.Read(&extra, 1, path);
  if (!got.ok()) return got.status();
  if (*got != 0) {
    return corrupt("data runs past dimensions [", absl::StrJoin(array.dims, ", "), "] (", count,
                   " bytes)");
  }
  return array;
}

std::string EncodeIdx(absl::Span<const int64_t> dims, absl::Span<const uint8_t> values) {
  MESHTRAIN_CHECK(!dims.empty() && dims.size() <= kMaxRank) << "IDX rank " << dims.size();
  std::string out = {0, 0, static_cast<char>(kUnsignedByteType), static_cast<char>(dims.size())};
  for (int64_t dim : dims) {
    const auto d = static_cast<uint32_t>(dim);
    out += {static_cast<char>(d >> 24), static_cast<char>(d >> 16), static_cast<char>(d >> 8),
            static_cast<char>(d)};
  }
  out.append(reinterpret_cast<const char*>(values.data()), values.size());
  return out;
}

absl::StatusOr<std::string> FindIdxFile(absl::string_view dir, absl::string_view name) {
  const std::string plain = absl::StrCat(dir, "/", name);
  const std::string gz = absl::StrCat(plain, ".gz");
  if (::access(gz.c_str(), F_OK) == 0) return gz;
  if (::access(plain.c_str(), F_OK) == 0) return plain;
  return absl::NotFoundError(absl::StrCat(gz, " not found (nor ", plain, ")"));
}

}  // namespace meshtrain

#include "runtime/data/tfrecord.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/base/crc32c.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

// The low `n` bytes of `value`, least significant first.
void AppendLittleEndian(uint64_t value, int n, std::string* out) {
  for (int i = 0; i < n; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t ReadLittleEndian(absl::string_view bytes, int n) {
  uint64_t value = 0;
  for (int i = n - 1; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  return value;
}

uint32_t MaskedCrc(absl::string_view bytes) {
  return crc32c::Mask(crc32c::Value(bytes.data(), bytes.size()));
}

}  // namespace

void AppendTfRecord(absl::string_view data, std::string* out) {
  const size_t start = out->size();
  AppendLittleEndian(data.size(), 8, out);
  AppendLittleEndian(crc32c::Mask(crc32c::Value(out->data() + start, 8)), 4, out);
  out->append(data.data(), data.size());
  AppendLittleEndian(crc32c::Mask(crc32c::Value(data.data(), data.size())), 4, out);
}

absl::StatusOr<std::vector<std::string>> ParseTfRecords(absl::string_view bytes) {
  TfRecordFileReader reader(bytes, "TFRecord bytes");
  std::vector<std::string> records;
  std::string record;
  while (true) {
    MESHTRAIN_ASSIGN_OR_RETURN(bool more, reader.Next(&record));
    if (!more) return records;
    records.push_back(std::move(record));
  }
}

absl::StatusOr<std::unique_ptr<TfRecordFileReader>> TfRecordFileReader::Open(
    const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot open it (", std::strerror(errno), "); check the path"));
  }
  gzbuffer(file, 1 << 17);
  return std::unique_ptr<TfRecordFileReader>(new TfRecordFileReader(path, file));
}

TfRecordFileReader::~TfRecordFileReader() {
  if (file_ != nullptr) gzclose(static_cast<gzFile>(file_));
}

absl::Status TfRecordFileReader::Corrupt(absl::string_view what) const {
  return absl::DataLossError(absl::StrCat(path_, ": record ", index_, " (at byte ", offset_,
                                          "): ", what, "; the file is corrupt or truncated"));
}

absl::StatusOr<size_t> TfRecordFileReader::Read(char* out, size_t n) {
  if (file_ == nullptr) {
    const size_t got = std::min(n, memory_.size());
    std::memcpy(out, memory_.data(), got);
    memory_.remove_prefix(got);
    return got;
  }
  size_t got = 0;
  while (got < n) {
    const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - got, 1u << 30));
    const int read = gzread(static_cast<gzFile>(file_), out + got, chunk);
    if (read < 0) {
      int code = 0;
      const char* message = gzerror(static_cast<gzFile>(file_), &code);
      return Corrupt(absl::StrCat("GZIP error: ", message != nullptr ? message : "unknown"));
    }
    if (read == 0) break;
    got += static_cast<size_t>(read);
  }
  return got;
}

absl::StatusOr<bool> TfRecordFileReader::Next(std::string* record) {
  char header[12];
  MESHTRAIN_ASSIGN_OR_RETURN(size_t got, Read(header, sizeof(header)));
  if (got == 0) return false;
  if (got < sizeof(header)) {
    return Corrupt(absl::StrCat("the file ends ", got, " bytes into the record's 12-byte header"));
  }
  const absl::string_view head(header, sizeof(header));
  const uint64_t length = ReadLittleEndian(head, 8);
  if (ReadLittleEndian(head.substr(8), 4) != MaskedCrc(head.substr(0, 8))) {
    return Corrupt("the length's CRC does not match");
  }
  if (length > kMaxTfRecordBytes) {
    return Corrupt(
        absl::StrCat("a record of ", length, " bytes is over the limit of ", kMaxTfRecordBytes));
  }
  record->resize(length + 4);
  MESHTRAIN_ASSIGN_OR_RETURN(got, Read(record->data(), length + 4));
  if (got < length + 4) {
    return Corrupt(absl::StrCat("the file ends ", got, " bytes into a record of ", length));
  }
  const uint32_t crc =
      static_cast<uint32_t>(ReadLittleEndian(absl::string_view(record->data() + length, 4), 4));
  record->resize(length);
  if (crc != MaskedCrc(*record)) return Corrupt("the data's CRC does not match");
  ++index_;
  offset_ += 16 + length;
  return true;
}

absl::StatusOr<std::unique_ptr<TfRecordFileWriter>> TfRecordFileWriter::Open(
    const std::string& path, bool gzip) {
  // "T": no compression, plain bytes; zlib writes gzip otherwise.
  gzFile file = gzopen(path.c_str(), gzip ? "wb6" : "wbT");
  if (file == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": cannot create it (", std::strerror(errno), ")"));
  }
  return std::unique_ptr<TfRecordFileWriter>(new TfRecordFileWriter(path, file));
}

TfRecordFileWriter::~TfRecordFileWriter() { (void)Close(); }

absl::Status TfRecordFileWriter::Write(absl::string_view data) {
  if (file_ == nullptr) return absl::FailedPreconditionError(path_ + ": written after Close()");
  buffer_.clear();
  AppendTfRecord(data, &buffer_);
  if (gzwrite(static_cast<gzFile>(file_), buffer_.data(), static_cast<unsigned>(buffer_.size())) !=
      static_cast<int>(buffer_.size())) {
    int code = 0;
    return absl::DataLossError(
        absl::StrCat(path_, ": write failed: ", gzerror(static_cast<gzFile>(file_), &code)));
  }
  return absl::OkStatus();
}

absl::Status TfRecordFileWriter::Close() {
  if (file_ == nullptr) return absl::OkStatus();
  const int closed = gzclose(static_cast<gzFile>(file_));
  file_ = nullptr;
  if (closed != Z_OK) {
    return absl::DataLossError(absl::StrCat(path_, ": closing failed (is the disk full?)"));
  }
  return absl::OkStatus();
}

}  // namespace meshtrain

#include "summaries/tfrecord.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/base/crc32c.h"

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
  constexpr size_t kFraming = 8 + 4 + 4;
  std::vector<std::string> records;
  size_t at = 0;
  while (at < bytes.size()) {
    const absl::string_view rest = bytes.substr(at);
    if (rest.size() < kFraming) {
      return absl::DataLossError(absl::StrCat("TFRecord truncated at byte ", at, ": ", rest.size(),
                                              " bytes left, a record needs at least ", kFraming));
    }
    const uint64_t length = ReadLittleEndian(rest, 8);
    if (ReadLittleEndian(rest.substr(8), 4) != MaskedCrc(rest.substr(0, 8))) {
      return absl::DataLossError(absl::StrCat("TFRecord length CRC mismatch at byte ", at));
    }
    if (length > rest.size() - kFraming) {
      return absl::DataLossError(absl::StrCat("TFRecord truncated at byte ", at,
                                              ": the record holds ", length, " bytes, the file ",
                                              rest.size() - kFraming));
    }
    const absl::string_view data = rest.substr(12, length);
    if (ReadLittleEndian(rest.substr(12 + length), 4) != MaskedCrc(data)) {
      return absl::DataLossError(absl::StrCat("TFRecord data CRC mismatch at byte ", at));
    }
    records.emplace_back(data);
    at += kFraming + length;
  }
  return records;
}

}  // namespace meshtrain

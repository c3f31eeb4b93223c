#include "runtime/checkpoint/safetensors.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/base/crc32c.h"
#include "runtime/base/json_reader.h"
#include "runtime/base/quote.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

constexpr absl::string_view kMetadataKey = "__metadata__";
// Larger headers are refused as corrupt (the reference implementation's limit).
constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;

absl::Status Corrupt(absl::string_view path, absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat("checkpoint file ", path, " is corrupt: ", what, "; it will not be restored"));
}

// dtype x shape in bytes, or -1 on overflow.
int64_t ExpectedBytes(DType dtype, absl::Span<const int64_t> shape) {
  __int128 n = static_cast<__int128>(DTypeSize(dtype));
  for (int64_t d : shape) {
    n *= d;
    if (n > (static_cast<__int128>(1) << 62)) return -1;
  }
  return static_cast<int64_t>(n);
}

// The little-endian header length of the first 8 bytes, checked against the file.
absl::StatusOr<uint64_t> ReadHeaderLength(const std::string& contents, absl::string_view p) {
  if (contents.size() < 8) {
    return Corrupt(
        p, absl::StrCat("only ", contents.size(), " bytes, fewer than the 8-byte header length"));
  }
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<uint64_t>(static_cast<uint8_t>(contents[i])) << (8 * i);
  if (n > kMaxHeaderBytes || n > contents.size() - 8) {
    return Corrupt(p, absl::StrCat("the header length ", n, " runs past the end of the file (",
                                   contents.size(), " bytes)"));
  }
  return n;
}

absl::Status ReadMetadata(const nlohmann::json& value, absl::string_view p,
                          std::map<std::string, std::string>* out) {
  if (!value.is_object()) return Corrupt(p, "__metadata__ is not an object");
  for (auto m = value.begin(); m != value.end(); ++m) {
    if (!m.value().is_string()) {
      return Corrupt(p, absl::StrCat("__metadata__ value of '", m.key(), "' is not a string, got ",
                                     DescribeJson(m.value())));
    }
    (*out)[m.key()] = m.value().get<std::string>();
  }
  return absl::OkStatus();
}

// One tensor's dtype, shape and data_offsets, within a `data_size`-byte buffer.
absl::StatusOr<SafetensorsEntry> ReadEntry(const std::string& name, const nlohmann::json& value,
                                           uint64_t data_size, absl::string_view p) {
  const std::string where = absl::StrCat("tensor ", QuoteForMessage(name), ": ");
  if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") ||
      !value.contains("data_offsets")) {
    return Corrupt(p, absl::StrCat(where, "needs dtype, shape and data_offsets"));
  }
  JsonReader r(value, [&](absl::string_view field, absl::string_view problem) {
    return Corrupt(p, absl::StrCat(where, JsonFieldMessage(field, problem)));
  });
  SafetensorsEntry entry;
  entry.name = name;
  std::string dtype;
  std::vector<int64_t> offsets;
  MESHTRAIN_RETURN_IF_ERROR(r.Read("dtype", &dtype));
  absl::StatusOr<DType> parsed = ParseDType(dtype);
  if (!parsed.ok())
    return Corrupt(p,
                   absl::StrCat(where, "unknown dtype ", QuoteForMessage(value["dtype"].dump())));
  entry.dtype = *parsed;
  MESHTRAIN_RETURN_IF_ERROR(r.ReadDimensions("shape", &entry.shape));
  if (!r.Read("data_offsets", &offsets).ok() || offsets.size() != 2 || offsets[0] < 0 ||
      offsets[1] < 0) {
    return Corrupt(
        p, absl::StrCat(where, "data_offsets ", QuoteForMessage(value["data_offsets"].dump()),
                        " is not [begin, end]"));
  }
  entry.begin = static_cast<uint64_t>(offsets[0]);
  entry.end = static_cast<uint64_t>(offsets[1]);
  if (entry.begin > entry.end || entry.end > data_size) {
    return Corrupt(p, absl::StrCat(where, "data_offsets [", entry.begin, ", ", entry.end,
                                   ") lie outside the ", data_size, "-byte data buffer"));
  }
  const int64_t expected = ExpectedBytes(entry.dtype, entry.shape);
  if (expected < 0 || static_cast<uint64_t>(expected) != entry.end - entry.begin) {
    return Corrupt(p, absl::StrCat(where, entry.end - entry.begin, " bytes do not hold ", dtype,
                                   QuoteForMessage(value["shape"].dump())));
  }
  return entry;
}

// The buffer must be covered exactly: no overlap, no hole, nothing after.
absl::Status CheckCoverage(const std::vector<SafetensorsEntry>& entries, uint64_t data_size,
                           absl::string_view p) {
  std::vector<const SafetensorsEntry*> by_offset;
  for (const SafetensorsEntry& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const SafetensorsEntry* a, const SafetensorsEntry* b) {
              return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
            });
  uint64_t covered = 0;
  for (const SafetensorsEntry* e : by_offset) {
    if (e->begin != covered) {
      return Corrupt(p, absl::StrCat("tensor '", e->name, "' starts at ", e->begin, " but ",
                                     e->begin < covered ? "the previous tensor ends at "
                                                        : "there is a hole from ",
                                     covered));
    }
    covered = e->end;
  }
  if (covered != data_size) {
    return Corrupt(p, absl::StrCat("the tensors cover ", covered, " bytes of a ", data_size,
                                   "-byte data buffer (truncated or padded)"));
  }
  return absl::OkStatus();
}

}  // namespace

void SafetensorsWriter::SetMetadata(absl::string_view key, absl::string_view value) {
  metadata_[std::string(key)] = std::string(value);
}

absl::Status SafetensorsWriter::Add(absl::string_view name, DType dtype,
                                    absl::Span<const int64_t> shape,
                                    absl::Span<const std::byte> data) {
  if (name.empty() || name == kMetadataKey) {
    return absl::InvalidArgumentError(
        absl::StrCat("safetensors: tensor name '", name, "' is reserved"));
  }
  for (const SafetensorsEntry& e : entries_) {
    if (e.name == name) {
      return absl::InvalidArgumentError(
          absl::StrCat("safetensors: tensor '", name, "' added twice"));
    }
  }
  const int64_t expected = ExpectedBytes(dtype, shape);
  if (expected < 0 || static_cast<uint64_t>(expected) != data.size()) {
    return absl::InvalidArgumentError(absl::StrCat("safetensors: tensor '", name, "' has ",
                                                   data.size(), " bytes, its dtype and shape need ",
                                                   expected));
  }
  SafetensorsEntry entry;
  entry.name = std::string(name);
  entry.dtype = dtype;
  entry.shape.assign(shape.begin(), shape.end());
  entry.begin = data_bytes_;
  entry.end = data_bytes_ + data.size();
  data_bytes_ = entry.end;
  entries_.push_back(std::move(entry));
  data_.push_back(data);
  return absl::OkStatus();
}

std::string SafetensorsWriter::Header() const {
  nlohmann::json header = nlohmann::json::object();
  for (const SafetensorsEntry& e : entries_) {
    header[e.name] = {{"dtype", std::string(SafetensorsDTypeName(e.dtype))},
                      {"shape", e.shape},
                      {"data_offsets", {e.begin, e.end}}};
  }
  if (!metadata_.empty()) header[std::string(kMetadataKey)] = metadata_;
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json;
}

uint64_t SafetensorsWriter::total_bytes() const { return Header().size() + data_bytes_; }

absl::StatusOr<uint32_t> SafetensorsWriter::WriteTo(WritableFile& file) const {
  const std::string header = Header();
  uint32_t crc = crc32c::Value(header.data(), header.size());
  MESHTRAIN_RETURN_IF_ERROR(file.Append(
      absl::MakeConstSpan(reinterpret_cast<const std::byte*>(header.data()), header.size())));
  for (absl::Span<const std::byte> data : data_) {
    crc = crc32c::Extend(crc, data.data(), data.size());
    MESHTRAIN_RETURN_IF_ERROR(file.Append(data));
  }
  return crc;
}

// The steps of SafetensorsFile::Parse: the header length, the JSON header (its
// metadata and entries), then the entries' coverage of the data buffer.
absl::StatusOr<SafetensorsFile> SafetensorsFile::Parse(std::string contents, std::string path) {
  SafetensorsFile file;
  file.path_ = std::move(path);
  const std::string& p = file.path_;
  MESHTRAIN_ASSIGN_OR_RETURN(const uint64_t n, ReadHeaderLength(contents, p));
  absl::StatusOr<nlohmann::json> header = ParseJson(absl::string_view(contents).substr(8, n));
  if (!header.ok())
    return Corrupt(p, absl::StrCat("the JSON header does not parse: ", header.status().message()));
  if (!header->is_object()) return Corrupt(p, "the JSON header is not an object");
  const uint64_t data_size = contents.size() - 8 - n;
  for (auto it = header->begin(); it != header->end(); ++it) {
    if (it.key() == kMetadataKey) {
      MESHTRAIN_RETURN_IF_ERROR(ReadMetadata(it.value(), p, &file.metadata_));
      continue;
    }
    MESHTRAIN_ASSIGN_OR_RETURN(SafetensorsEntry entry,
                               ReadEntry(it.key(), it.value(), data_size, p));
    file.entries_.push_back(std::move(entry));
  }
  MESHTRAIN_RETURN_IF_ERROR(CheckCoverage(file.entries_, data_size, p));
  std::sort(file.entries_.begin(), file.entries_.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) { return a.name < b.name; });
  file.data_start_ = 8 + n;
  file.contents_ = std::move(contents);
  return file;
}

const SafetensorsEntry* SafetensorsFile::Find(absl::string_view name) const {
  auto it =
      std::lower_bound(entries_.begin(), entries_.end(), name,
                       [](const SafetensorsEntry& e, absl::string_view n) { return e.name < n; });
  return it != entries_.end() && it->name == name ? &*it : nullptr;
}

absl::Span<const std::byte> SafetensorsFile::Data(const SafetensorsEntry& entry) const {
  return absl::MakeConstSpan(
      reinterpret_cast<const std::byte*>(contents_.data() + data_start_ + entry.begin),
      entry.end - entry.begin);
}

}  // namespace meshtrain

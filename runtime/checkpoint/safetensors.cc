#include "runtime/checkpoint/safetensors.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/base/crc32c.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

constexpr absl::string_view kMetadataKey = "__metadata__";
// Larger headers are refused as corrupt (the reference implementation's limit).
constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;

absl::Status Corrupt(absl::string_view path, absl::string_view what) {
  return absl::DataLossError(absl::StrCat("checkpoint file ", path, " is corrupt: ", what,
                                          "; it will not be restored"));
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

}  // namespace

void SafetensorsWriter::SetMetadata(absl::string_view key, absl::string_view value) {
  metadata_[std::string(key)] = std::string(value);
}

absl::Status SafetensorsWriter::Add(absl::string_view name, DType dtype,
                                    absl::Span<const int64_t> shape,
                                    absl::Span<const std::byte> data) {
  if (name.empty() || name == kMetadataKey) {
    return absl::InvalidArgumentError(absl::StrCat("safetensors: tensor name '", name, "' is reserved"));
  }
  for (const SafetensorsEntry& e : entries_) {
    if (e.name == name) {
      return absl::InvalidArgumentError(absl::StrCat("safetensors: tensor '", name, "' added twice"));
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

absl::StatusOr<SafetensorsFile> SafetensorsFile::Parse(std::string contents, std::string path) {
  SafetensorsFile file;
  file.path_ = std::move(path);
  const std::string& p = file.path_;
  if (contents.size() < 8) {
    return Corrupt(p, absl::StrCat("only ", contents.size(), " bytes, fewer than the 8-byte header length"));
  }
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(contents[i])) << (8 * i);
  if (n > kMaxHeaderBytes || n > contents.size() - 8) {
    return Corrupt(p, absl::StrCat("the header length ", n, " runs past the end of the file (",
                                   contents.size(), " bytes)"));
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(contents.data() + 8, contents.data() + 8 + n);
  } catch (const nlohmann::json::exception& e) {
    return Corrupt(p, absl::StrCat("the JSON header does not parse: ", e.what()));
  }
  if (!header.is_object()) return Corrupt(p, "the JSON header is not an object");
  const uint64_t data_size = contents.size() - 8 - n;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& value = it.value();
    if (name == kMetadataKey) {
      if (!value.is_object()) return Corrupt(p, "__metadata__ is not an object");
      for (auto m = value.begin(); m != value.end(); ++m) {
        if (!m.value().is_string()) {
          return Corrupt(p, absl::StrCat("__metadata__ value of '", m.key(), "' is not a string"));
        }
        file.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = absl::StrCat("tensor '", name, "': ");
    if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") ||
        !value.contains("data_offsets")) {
      return Corrupt(p, absl::StrCat(where, "needs dtype, shape and data_offsets"));
    }
    const nlohmann::json& dtype = value["dtype"];
    const nlohmann::json& shape = value["shape"];
    const nlohmann::json& offsets = value["data_offsets"];
    if (!dtype.is_string()) return Corrupt(p, absl::StrCat(where, "dtype is not a string"));
    absl::StatusOr<DType> parsed = ParseDType(dtype.get<std::string>());
    if (!parsed.ok()) return Corrupt(p, absl::StrCat(where, "unknown dtype ", dtype.dump()));
    SafetensorsEntry entry;
    entry.name = name;
    entry.dtype = *parsed;
    if (!shape.is_array()) return Corrupt(p, absl::StrCat(where, "shape is not an array"));
    for (const nlohmann::json& d : shape) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) {
        return Corrupt(p, absl::StrCat(where, "shape ", shape.dump(), " has a bad dimension"));
      }
      entry.shape.push_back(d.get<int64_t>());
    }
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned()) {
      return Corrupt(p, absl::StrCat(where, "data_offsets ", offsets.dump(), " is not [begin, end]"));
    }
    entry.begin = offsets[0].get<uint64_t>();
    entry.end = offsets[1].get<uint64_t>();
    if (entry.begin > entry.end || entry.end > data_size) {
      return Corrupt(p, absl::StrCat(where, "data_offsets [", entry.begin, ", ", entry.end,
                                     ") lie outside the ", data_size, "-byte data buffer"));
    }
    const int64_t expected = ExpectedBytes(entry.dtype, entry.shape);
    if (expected < 0 || static_cast<uint64_t>(expected) != entry.end - entry.begin) {
      return Corrupt(p, absl::StrCat(where, entry.end - entry.begin, " bytes do not hold ",
                                     dtype.get<std::string>(), shape.dump()));
    }
    file.entries_.push_back(std::move(entry));
  }
  // The buffer must be covered exactly: no overlap, no hole, nothing after.
  std::vector<const SafetensorsEntry*> by_offset;
  for (const SafetensorsEntry& e : file.entries_) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const SafetensorsEntry* a, const SafetensorsEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t covered = 0;
  for (const SafetensorsEntry* e : by_offset) {
    if (e->begin != covered) {
      return Corrupt(p, absl::StrCat("tensor '", e->name, "' starts at ", e->begin, " but ",
                                     e->begin < covered ? "the previous tensor ends at " : "there is a hole from ",
                                     covered));
    }
    covered = e->end;
  }
  if (covered != data_size) {
    return Corrupt(p, absl::StrCat("the tensors cover ", covered, " bytes of a ", data_size,
                                   "-byte data buffer (truncated or padded)"));
  }
  std::sort(file.entries_.begin(), file.entries_.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) { return a.name < b.name; });
  file.data_start_ = 8 + n;
  file.contents_ = std::move(contents);
  return file;
}

const SafetensorsEntry* SafetensorsFile::Find(absl::string_view name) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), name,
                             [](const SafetensorsEntry& e, absl::string_view n) { return e.name < n; });
  return it != entries_.end() && it->name == name ? &*it : nullptr;
}

absl::Span<const std::byte> SafetensorsFile::Data(const SafetensorsEntry& entry) const {
  return absl::MakeConstSpan(
      reinterpret_cast<const std::byte*>(contents_.data() + data_start_ + entry.begin),
      entry.end - entry.begin);
}

}  // namespace meshtrain

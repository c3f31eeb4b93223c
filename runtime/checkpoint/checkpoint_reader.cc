#include "runtime/checkpoint/checkpoint_reader.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/base/crc32c.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

absl::Status Corrupt(absl::string_view file, absl::string_view what) {
  return absl::DataLossError(absl::StrCat("checkpoint file ", file, " is corrupt: ", what,
                                          "; the checkpoint will not be restored"));
}

// The tensor `key` of `file` must be `dtype` with `rows` rows of `row_shape`.
absl::Status CheckTensor(const SafetensorsFile& file, const std::string& key, DType dtype,
                         const std::vector<int64_t>& whole_shape, int64_t rows) {
  const SafetensorsEntry* e = file.Find(key);
  if (e == nullptr) return Corrupt(file.path(), absl::StrCat("it holds no tensor '", key, "'"));
  std::vector<int64_t> expected = whole_shape;
  if (!expected.empty()) expected[0] = rows;
  if (e->dtype != dtype || e->shape != expected) {
    return Corrupt(file.path(),
                   absl::StrCat("tensor '", key, "' is not ", DTypeName(dtype), " [",
                                absl::StrJoin(expected, ", "), "] as the manifest says"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<CheckpointReader>> CheckpointReader::Open(
    FileSystem& fs, const std::string& checkpoint_dir) {
  std::unique_ptr<CheckpointReader> reader(new CheckpointReader());
  reader->path_ = checkpoint_dir;
  const std::string manifest_path = JoinPath(checkpoint_dir, kManifestFileName);
  absl::StatusOr<std::string> text = fs.ReadFile(manifest_path);
  if (absl::IsNotFound(text.status())) {
    return absl::NotFoundError(
        absl::StrCat("checkpoint ", checkpoint_dir, " has no index.json: it was never committed"));
  }
  if (!text.ok()) return Annotate(text.status(), "reading a checkpoint manifest");
  MESHTRAIN_ASSIGN_OR_RETURN(reader->manifest_, ParseManifest(*text, manifest_path));
  for (const FileRecord& f : reader->manifest_.files) {
    const std::string path = JoinPath(checkpoint_dir, f.name);
    absl::StatusOr<std::string> contents = fs.ReadFile(path);
    if (!contents.ok()) {
      return Corrupt(path, absl::StrCat("it cannot be read (", contents.status().message(), ")"));
    }
    if (static_cast<int64_t>(contents->size()) != f.bytes) {
      return Corrupt(path, absl::StrCat("it has ", contents->size(), " bytes, the manifest says ",
                                        f.bytes, " (truncated or overwritten)"));
    }
    const uint32_t crc = crc32c::Value(contents->data(), contents->size());
    if (crc != f.crc32c) {
      return Corrupt(path,
                     absl::StrFormat("its CRC32C is %08x, the manifest says %08x", crc, f.crc32c));
    }
    MESHTRAIN_ASSIGN_OR_RETURN(SafetensorsFile file,
                               SafetensorsFile::Parse(std::move(*contents), path));
    reader->files_.emplace(f.name, std::move(file));
  }
  for (const VariableRecord& v : reader->manifest_.variables) {
    for (const PartitionRecord& p : v.partitions) {
      const SafetensorsFile& file = reader->files_.at(p.file);
      MESHTRAIN_RETURN_IF_ERROR(CheckTensor(file, p.key, v.dtype, v.shape, p.rows));
      for (const auto& [slot, key] : p.slots) {
        MESHTRAIN_RETURN_IF_ERROR(CheckTensor(file, key, v.dtype, v.shape, p.rows));
      }
    }
  }
  return reader;
}

const VariableRecord* CheckpointReader::Find(absl::string_view name) const {
  for (const VariableRecord& v : manifest_.variables) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

absl::Status CheckpointReader::ReadRows(absl::string_view name, absl::string_view slot,
                                        int64_t row_begin, Tensor& out) const {
  const VariableRecord* v = Find(name);
  const std::string what =
      absl::StrCat("restore ", name, slot.empty() ? "" : "/", slot, " from ", path_);
  if (v == nullptr) {
    return absl::NotFoundError(absl::StrCat(what, ": the checkpoint has no such variable"));
  }
  const bool scalar = v->shape.empty();
  const int64_t rows = scalar ? 1 : out.rows();
  std::vector<int64_t> row_shape(v->shape.begin() + (scalar ? 0 : 1), v->shape.end());
  const std::vector<int64_t> out_row_shape(out.shape().dims().begin() + (scalar ? 0 : 1),
                                           out.shape().dims().end());
  if (out.dtype() != v->dtype || row_shape != out_row_shape ||
      (scalar && out.shape().rank() != 0) || !out.device().is_cpu()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": the checkpoint holds ", DTypeName(v->dtype), " [",
                     absl::StrJoin(v->shape, ", "), "], the model wants ", out.DebugString()));
  }
  if (row_begin < 0 || row_begin + rows > RowsOf(v->shape)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": rows [", row_begin, ", ", row_begin + rows,
                     ") are outside the variable's ", RowsOf(v->shape)));
  }
  const size_t row_bytes = out.bytes() / static_cast<size_t>(std::max<int64_t>(1, rows));
  std::byte* dst = static_cast<std::byte*>(out.raw_data());
  for (const PartitionRecord& p : v->partitions) {
    const int64_t begin = std::max(row_begin, p.row_offset);
    const int64_t end = std::min(row_begin + rows, p.row_offset + p.rows);
    if (begin >= end) continue;
    std::string key = p.key;
    if (!slot.empty()) {
      auto it = p.slots.find(std::string(slot));
      if (it == p.slots.end()) {
        return absl::NotFoundError(absl::StrCat(what, ": the checkpoint has no optimizer slot '",
                                                slot, "' (it was written with optimizer ",
                                                manifest_.optimizer,
                                                "); restore with the same optimizer"));
      }
      key = it->second;
    }
    const SafetensorsFile& file = files_.at(p.file);
    absl::Span<const std::byte> data = file.Data(*file.Find(key));
    std::memcpy(dst + (begin - row_begin) * row_bytes,
                data.data() + (begin - p.row_offset) * row_bytes, (end - begin) * row_bytes);
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CheckpointReader::Updates(absl::string_view name, int64_t row) const {
  const VariableRecord* v = Find(name);
  if (v == nullptr) {
    return absl::NotFoundError(absl::StrCat("checkpoint ", path_, " has no variable ", name));
  }
  for (const PartitionRecord& p : v->partitions) {
    if (row >= p.row_offset && row < p.row_offset + std::max<int64_t>(1, p.rows)) return p.updates;
  }
  return v->partitions.empty() ? 0 : v->partitions.front().updates;
}

}  // namespace meshtrain

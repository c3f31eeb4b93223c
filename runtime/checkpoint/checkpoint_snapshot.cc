#include "runtime/checkpoint/checkpoint_snapshot.h"

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/checkpoint/safetensors.h"

namespace meshtrain {

int64_t CheckpointSnapshot::bytes() const {
  int64_t total = 0;
  for (const SnapshotEntry& e : entries) {
    total += static_cast<int64_t>(e.value.bytes());
    for (const Tensor& s : e.slots) total += static_cast<int64_t>(s.bytes());
  }
  return total;
}

std::string PartitionKey(const std::string& name, int64_t row_begin, bool whole) {
  return whole ? name : absl::StrCat(name, "/part-", row_begin);
}

absl::StatusOr<PartRecord> WriteSnapshotPart(FileSystem& fs, const std::string& checkpoint_dir,
                                             const std::string& file_name,
                                             const CheckpointSnapshot& snapshot) {
  SafetensorsWriter writer;
  writer.SetMetadata("format", "meshtrain-checkpoint-part");
  PartRecord part;
  part.file.name = file_name;
  for (const SnapshotEntry& e : snapshot.entries) {
    const std::vector<int64_t> shape(e.shape.dims().begin(), e.shape.dims().end());
    const int64_t total_rows = RowsOf(shape);
    const int64_t rows = e.shape.rank() == 0 ? 1 : e.value.rows();
    if (!e.value.device().is_cpu()) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint: snapshot of ", e.name, " is not in host memory"));
    }
    if (e.row_begin < 0 || e.row_begin + rows > total_rows ||
        (e.shape.rank() > 0 && e.value.shape() != e.shape.WithRows(rows))) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint: snapshot of ", e.name, " holds ",
                                                     e.value.shape().ToString(), " from row ",
                                                     e.row_begin, " of ", e.shape.ToString()));
    }
    if (e.slots.size() != snapshot.slot_names.size()) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint: snapshot of ", e.name, " has ",
                                                     e.slots.size(), " slots, the optimizer ",
                                                     snapshot.slot_names.size()));
    }
    const bool whole = e.row_begin == 0 && rows == total_rows;
    PartitionRecord p;
    p.file = file_name;
    p.key = PartitionKey(e.name, e.row_begin, whole);
    p.row_offset = e.row_begin;
    p.rows = rows;
    p.updates = e.updates;
    const std::vector<int64_t> value_shape(e.value.shape().dims().begin(),
                                           e.value.shape().dims().end());
    MESHTRAIN_RETURN_IF_ERROR(writer.Add(p.key, e.value.dtype(), value_shape, e.value.byte_span()));
    for (size_t s = 0; s < e.slots.size(); ++s) {
      const Tensor& slot = e.slots[s];
      if (slot.shape() != e.value.shape() || slot.dtype() != e.value.dtype() ||
          !slot.device().is_cpu()) {
        return absl::InvalidArgumentError(absl::StrCat("checkpoint: slot ", snapshot.slot_names[s],
                                                       " of ", e.name,
                                                       " is not shaped like its value"));
      }
      const std::string key = absl::StrCat(p.key, "/", snapshot.slot_names[s]);
      MESHTRAIN_RETURN_IF_ERROR(writer.Add(key, slot.dtype(), value_shape, slot.byte_span()));
      p.slots[snapshot.slot_names[s]] = key;
    }
    VariableRecord v;
    v.name = e.name;
    v.dtype = e.value.dtype();
    v.shape = shape;
    v.partitions.push_back(std::move(p));
    part.variables.push_back(std::move(v));
  }
  const std::string path = JoinPath(checkpoint_dir, file_name);
  MESHTRAIN_RETURN_IF_ERROR(WriteFileAtomically(fs, path, [&](WritableFile& file) -> absl::Status {
    MESHTRAIN_ASSIGN_OR_RETURN(part.file.crc32c, writer.WriteTo(file));
    return absl::OkStatus();
  }));
  part.file.bytes = static_cast<int64_t>(writer.total_bytes());
  return part;
}

}  // namespace meshtrain

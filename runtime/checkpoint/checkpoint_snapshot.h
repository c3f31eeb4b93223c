// CheckpointSnapshot: host copies of a set of variables (whole, or row
// partitions), their optimizer slots and update counts, taken at a step
// boundary so that a background thread can write them while training goes on.
// WriteSnapshotPart writes one as a single safetensors file of a checkpoint
// (protocol step 2 in checkpoint_commit.h): FILE.tmp.*, fsync, rename, fsync dir
// (WriteFileAtomically, runtime/base/file_system.h).
// Value type.
#ifndef MESHTRAIN_RUNTIME_CHECKPOINT_CHECKPOINT_SNAPSHOT_H_
#define MESHTRAIN_RUNTIME_CHECKPOINT_CHECKPOINT_SNAPSHOT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/base/file_system.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/tensor/tensor.h"

namespace meshtrain {

struct SnapshotEntry {
  std::string name;  // the variable's
  Shape shape;       // the whole variable's
  int64_t row_begin = 0;
  Tensor value;               // host; rows [row_begin, row_begin + value.rows())
  std::vector<Tensor> slots;  // host, shaped like value, in slot_names order
  int64_t updates = 0;
};

struct CheckpointSnapshot {
  std::vector<std::string> slot_names;
  std::vector<SnapshotEntry> entries;

  int64_t bytes() const;
};

// The safetensors key of rows from `row_begin` of `name`: the name itself for a
// whole variable, "NAME/part-ROW" for a partition; a slot's key appends "/SLOT".
std::string PartitionKey(const std::string& name, int64_t row_begin, bool whole);

// Writes `snapshot` as `checkpoint_dir`/`file_name` and returns its part
// record (file size and CRC32C, the partitions it holds).
absl::StatusOr<PartRecord> WriteSnapshotPart(FileSystem& fs, const std::string& checkpoint_dir,
                                             const std::string& file_name,
                                             const CheckpointSnapshot& snapshot);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CHECKPOINT_CHECKPOINT_SNAPSHOT_H_

// Manifest: a checkpoint's index.json, what makes a directory of tensor files a
// checkpoint. It says where training stands (step, each task's position in its
// input shard, the seed that determines data order and initial values), who
// wrote it (strategy, cluster shape), every variable (dtype, whole shape, the
// partitions that hold its rows: file, safetensors key, row offset, update
// count, optimizer-slot keys) and every file's size and CRC32C. Because a
// variable is described by row partitions of its whole shape, a checkpoint
// restores into any strategy and any number of workers or ps tasks.
//
// A part (PartRecord) is what one writer produced: one tensor file and the
// partitions it holds; the chief merges the parts into the manifest. Parts
// travel as JSON (PartRecordToJson) so a ps task can report its shard's part.
// Value types.
#ifndef MESHTRAIN_RUNTIME_CHECKPOINT_MANIFEST_H_
#define MESHTRAIN_RUNTIME_CHECKPOINT_MANIFEST_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "runtime/tensor/dtype.h"

namespace meshtrain {

inline constexpr absl::string_view kManifestFormat = "meshtrain-checkpoint";
inline constexpr int kManifestVersion = 1;
inline constexpr absl::string_view kManifestFileName = "index.json";

// Rows [row_offset, row_offset + rows) of a variable, in one file.
struct PartitionRecord {
  std::string file;  // relative to the checkpoint directory
  std::string key;   // the safetensors tensor holding the value rows
  int64_t row_offset = 0;
  int64_t rows = 0;
  int64_t updates = 0;                       // optimizer updates applied (Adam's step)
  std::map<std::string, std::string> slots;  // slot name -> safetensors key, same file
};

struct VariableRecord {
  std::string name;  // "dense_0/kernel"
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;               // the whole variable
  std::vector<PartitionRecord> partitions;  // by row_offset; they cover every row once
};

struct FileRecord {
  std::string name;
  int64_t bytes = 0;
  uint32_t crc32c = 0;
};

// One writer's output: one file and the partitions in it.
struct PartRecord {
  FileRecord file;
  std::vector<VariableRecord> variables;
};

// A position in the input stream (data/batch_schedule.h's InputPosition).
struct InputRecord {
  int64_t epoch = 0;
  int64_t step = 0;  // within the epoch
};

struct Manifest {
  int64_t step = 0;    // global steps done
  bool final = false;  // written at the end of training (the evaluator stops after it)
  InputRecord input;   // where the chief's input resumes
  std::map<std::string, InputRecord> task_inputs;  // "worker:1" -> its shard's position
  // The global input position and the layout the positions above are
  // relative to (runtime/data/global_position.h parses them; null in
  // checkpoints written before them): what lets a checkpoint resume on any
  // number of workers without training an example of an epoch twice.
  nlohmann::json input_global;
  nlohmann::json input_layout;
  // Data order and initial values are pure functions of the seed (and the
  // position), so the seed is the whole RNG state.
  uint64_t seed = 0;
  std::string strategy;
  int num_workers = 1;
  int num_ps = 0;
  int replicas_in_sync = 1;
  std::string optimizer;
  std::vector<std::string> slot_names;
  std::vector<VariableRecord> variables;  // by name
  std::vector<FileRecord> files;
  int64_t unix_micros = 0;                         // when it was committed
  nlohmann::json meta = nlohmann::json::object();  // recovery history and the like
};

std::string ManifestToJson(const Manifest& manifest);
// kDataLoss naming `path` for anything malformed or inconsistent (a partition
// outside its variable, partitions that do not cover the rows once, a file
// named by a partition but not listed, a bad CRC text).
absl::StatusOr<Manifest> ParseManifest(absl::string_view text, absl::string_view path);

nlohmann::json PartRecordToJson(const PartRecord& part);
// kInvalidArgument for a malformed record (it came from a peer, not a disk).
absl::StatusOr<PartRecord> PartRecordFromJson(const nlohmann::json& json);

// The variables of all `parts`, each with its partitions from every part,
// sorted; InvalidArgument if a variable's parts disagree on dtype or shape or
// do not cover its rows exactly once.
absl::StatusOr<std::vector<VariableRecord>> MergeParts(const std::vector<PartRecord>& parts);

// Rows of a shape: dimension 0, or 1 for a scalar.
int64_t RowsOf(const std::vector<int64_t>& shape);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CHECKPOINT_MANIFEST_H_

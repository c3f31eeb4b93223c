// Input positions across checkpoints and cluster shapes
// (docs/fault_tolerance.md, "Input positions"): what a checkpoint records
// about the input stream, and where each task resumes it.
//
// A checkpoint records the global position (which examples of each epoch's
// global order are trained, runtime/data/global_position.h) and the layout
// its per-task positions are relative to (the auto-shard policy, the input
// shards in task order, the global batch, the global position that layout's
// schedule started from). A task resumes:
//   1. the same layout (same policy, shards, tasks, global batch): its own
//      position in that layout's schedule, exactly as before the failure
//      (a parameter-server worker walks on its own stream);
//   2. another layout under the data policy: every shard starts the global
//      position's first unfinished epoch with the examples already trained
//      left out, so none is trained twice and none skipped;
//   3. another layout under the file policy (workers read their own files, so
//      a position in one worker's files means nothing to another): the next
//      epoch, with a warning that the rest of the current one is skipped.
// Checkpoints written before global positions (no input.layout) are read as
// the data policy's layout of the cluster that wrote them, with the global
// batch the job has now: exact as long as the global batch is unchanged.
// Pure functions; thread-compatible.
#ifndef MESHTRAIN_TRAINING_INPUT_RESUME_H_
#define MESHTRAIN_TRAINING_INPUT_RESUME_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/data/batch_schedule.h"
#include "runtime/data/global_position.h"

namespace meshtrain {

// This life's input: how the training set is split and batched.
struct InputShape {
  bool own_files = false;          // the file auto-shard policy
  std::vector<std::string> tasks;  // the input shards' tasks, shard order ("worker:0", ...)
  int64_t global_batch_size = 0;
  int64_t num_examples = 0;  // the whole training set (data policy)
  uint64_t seed = 0;
  bool shuffle = true;
  bool drop_remainder = false;

  int num_shards() const { return static_cast<int>(tasks.size()); }
};

// Where one task resumes.
struct InputResume {
  InputPosition start;
  // Global steps done before (the checkpoint's step); unset: the loop derives
  // it from `start` (a parameter-server worker on its own stream).
  std::optional<int64_t> start_step;
  // The schedule leaves these examples out; null: the job's schedule as is.
  std::shared_ptr<const GlobalInputPosition> base;
  bool reshaped = false;  // case 2 or 3 above
  std::string summary;    // one line for the log: what the checkpoint held, where this resumes
};

// `task` resumes from manifest `m` under `shape` (cases 1-3). `independent`:
// workers read at their own pace (the legacy per-task positions hold for them).
// DataLoss for a malformed input.global or input.layout.
absl::StatusOr<InputResume> PlanInputResume(const Manifest& m, const InputShape& shape,
                                            const std::string& task, bool independent);

// Fills m.input_global and m.input_layout for a life of `shape` whose schedule
// started from `base` (null: the job's start), its shards standing at
// `next_by_shard` (shard order). InvalidArgument when the positions do not fit.
absl::Status RecordInputPositions(const InputShape& shape,
                                  const std::shared_ptr<const GlobalInputPosition>& base,
                                  absl::Span<const InputPosition> next_by_shard, Manifest& m);

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_INPUT_RESUME_H_

// GlobalInputPosition: which examples of the job's global order have been
// trained, in terms that mean the same thing for any number of workers, any
// split of the global batch and any strategy (docs/fault_tolerance.md,
// "Input positions").
//
// Epoch e visits P_e, the permutation BatchSchedule draws from (seed, e) over
// the whole training set. A *position* in P_e is an index 0..n-1 into it (not
// an example id); the global position holds, per epoch, the ranges of
// positions already trained:
//   - every epoch before `epoch` is complete (its schedule ran to its end);
//   - `trained[e]` (e >= epoch) lists sorted, disjoint, non-adjacent ranges of
//     positions of P_e trained; an epoch not listed has none.
// Synchronous training leaves one range per epoch, a prefix [0, steps x G);
// parameter-server workers, each at its own step, leave a prefix plus each
// faster worker's rows of the steps after it. A resumed schedule
// (BatchScheduleOptions::resume_from) trains each partial epoch's remaining
// positions in P_e order, so nothing is trained twice and nothing skipped,
// whatever the new cluster's shape.
//
// Value type; everything here is pure and thread-compatible.
#ifndef MESHTRAIN_RUNTIME_DATA_GLOBAL_POSITION_H_
#define MESHTRAIN_RUNTIME_DATA_GLOBAL_POSITION_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "nlohmann/json.hpp"
#include "runtime/data/batch_schedule.h"

namespace meshtrain {

struct GlobalInputPosition {
  int64_t num_examples = 0;  // n: the training set it counts positions of
  int64_t epoch = 0;
  std::map<int64_t, std::vector<RowRange>> trained;

  // Positions of epoch `e` trained: n before `epoch`, the ranges' total from it.
  int64_t TrainedIn(int64_t e) const;
  bool IsTrained(int64_t e, int64_t position) const;
  bool operator==(const GlobalInputPosition& o) const;
};

// The global position after training with `schedule` (its own resume_from is
// where it started, or nothing) when its shard w of W stands at
// `next_by_shard[w]`: the position of the next batch that shard would read.
// Synchronous strategies pass the chief's position for every shard.
// InvalidArgument unless there is one position per shard, each valid in the
// schedule or the first position past an epoch.
absl::StatusOr<GlobalInputPosition> AdvanceGlobalPosition(
    const BatchSchedule& schedule, absl::Span<const InputPosition> next_by_shard);

// The layout a schedule's positions are relative to: a schedule rebuilt from
// the same layout reads the same examples at the same (epoch, step), so a
// task of a cluster of the same shape resumes its own stream from it.
struct InputLayout {
  bool own_files = false;  // the file auto-shard policy (file_sharding.h)
  int num_shards = 1;
  std::vector<std::string> tasks;  // the shards' tasks, shard order (may be empty)
  int64_t global_batch_size = 0;
  GlobalInputPosition base;  // where the layout's schedule started

  bool operator==(const InputLayout& o) const;
};

// JSON, as index.json stores them under input.global and input.layout:
//   {"num_examples": n, "epoch": e, "trained": {"E": [begin, end, begin, end, ...]},
//    "examples": {"E": count}}   ("examples" is informative: recomputed on read)
//   {"policy": "data"|"file", "shards": W, "tasks": [...], "global_batch_size": G,
//    "base": {...}}
// The parsers return DataLoss naming what is malformed (a range out of
// [0, n), unsorted or overlapping ranges, an epoch before `epoch`).
nlohmann::json GlobalPositionToJson(const GlobalInputPosition& position);
absl::StatusOr<GlobalInputPosition> GlobalPositionFromJson(const nlohmann::json& json);
nlohmann::json InputLayoutToJson(const InputLayout& layout);
absl::StatusOr<InputLayout> InputLayoutFromJson(const nlohmann::json& json);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_GLOBAL_POSITION_H_

// BatchSchedule: which examples each shard reads at each step. Pure and
// deterministic across processes and platforms, so every task of a cluster
// derives the same plan from the same options without talking:
//
//   steps_per_epoch = ceil(n / G), or floor(n / G) with drop_remainder, at
//   most max_steps_per_epoch when that is set (the examples past them are not
//   read that epoch).
//   Epoch e visits permutation P_e: a Fisher-Yates shuffle of 0..n-1 drawn from
//   std::mt19937_64 seeded with DeriveSeed(seed, e) (identity when !shuffle).
//   Global step s of epoch e covers P_e[s*G, min((s+1)*G, n)).
//   Shard w of W takes a contiguous part of that global batch; part sizes differ
//   by at most 1 and earlier shards take the extra rows (G % W == 0: all G/W).
//
// One mechanism serves every strategy: synchronous replicas each take their shard
// of the same global batch; an asynchronous (parameter-server) worker walks its
// own shard; a resumed run restarts at (epoch, step) and still sees each example
// of that epoch once. Over an epoch the shards' indices are 0..n-1, once each.
//
// Resumed on another cluster shape (resume_from, global_position.h): epochs
// before resume_from->epoch are done (no steps); a partly trained epoch visits
// only P_e's untrained positions, in P_e order, in global batches of G (so its
// step count is that of its n_e remaining examples); later epochs are whole.
//
// Thread-safe: const methods may be called from any thread. Copies share a cache
// of the latest epoch's permutation (a pure function of the options).
#ifndef MESHTRAIN_RUNTIME_DATA_BATCH_SCHEDULE_H_
#define MESHTRAIN_RUNTIME_DATA_BATCH_SCHEDULE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace meshtrain {

struct GlobalInputPosition;  // global_position.h

struct BatchScheduleOptions {
  int64_t num_examples = 0;
  int64_t global_batch_size = 0;
  uint64_t seed = 0;
  bool shuffle = true;
  bool drop_remainder = false;
  int num_shards = 1;
  int shard_index = 0;
  // 0: no limit. Workers that read their own files (file_sharding.h) run the
  // same number of steps, the fewest any of them holds.
  int64_t max_steps_per_epoch = 0;
  // Null: training starts afresh. Otherwise the examples already trained
  // (of num_examples), which this schedule leaves out.
  std::shared_ptr<const GlobalInputPosition> resume_from;
};

// A point in the input stream: the step within its epoch, as a checkpoint
// records it to resume from.
struct InputPosition {
  int64_t epoch = 0;
  int64_t step = 0;  // within the epoch

  bool operator==(const InputPosition& o) const { return epoch == o.epoch && step == o.step; }
  bool operator!=(const InputPosition& o) const { return !(*this == o); }
};

// Rows [begin, end) of a global batch.
struct RowRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

class BatchSchedule {
 public:
  // InvalidArgument unless num_examples >= 0, global_batch_size >= 1,
  // num_shards >= 1, 0 <= shard_index < num_shards and max_steps_per_epoch >= 0.
  static absl::StatusOr<BatchSchedule> Create(const BatchScheduleOptions& options);

  const BatchScheduleOptions& options() const { return options_; }
  // Of a whole epoch (one that resume_from did not start).
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  // Examples epoch `epoch` visits: n, fewer in a partly trained epoch, 0 in
  // one resume_from says is done.
  int64_t ExamplesInEpoch(int64_t epoch) const;
  int64_t StepsInEpoch(int64_t epoch) const;

  // G, or the remainder for the last step of an epoch without drop_remainder.
  // Without an epoch: of a whole epoch.
  int64_t GlobalBatchSize(int64_t step) const;
  int64_t GlobalBatchSize(int64_t epoch, int64_t step) const;
  // This shard's rows of global step `step`'s batch. May be empty when the last
  // step's remainder is smaller than the number of shards.
  RowRange ShardRows(int64_t step) const;
  RowRange ShardRows(int64_t epoch, int64_t step) const;
  // The largest shard batch of any step: the buffer size a reader needs.
  int64_t MaxShardBatchSize() const;

  // The example indices epoch `epoch` visits in order: P_e, or in a partly
  // trained epoch its untrained positions' examples. Shared with the cache:
  // computing one costs O(n) draws, reading a cached one costs a lock.
  std::shared_ptr<const std::vector<int64_t>> Permutation(int64_t epoch) const;
  // The positions in P_e (0..n-1) that epoch `epoch` visits, in order:
  // 0..n-1 for a whole epoch (global_position.h maps steps back to them).
  std::vector<int64_t> EpochPositions(int64_t epoch) const;
  // This shard's part of `permutation` (a Permutation(), whose length says
  // which epoch it is: n or that partial epoch's) at `step`, in batch row
  // order: the indices without a copy.
  absl::Span<const int64_t> ShardSlice(absl::Span<const int64_t> permutation, int64_t step) const;
  // This shard's example indices for (epoch, step), in batch row order.
  std::vector<int64_t> ShardIndices(int64_t epoch, int64_t step) const;
  // All shards' example indices for (epoch, step).
  std::vector<int64_t> GlobalIndices(int64_t epoch, int64_t step) const;

  // The position after `position`: the next step, or step 0 of the next epoch
  // that has a step.
  InputPosition Advance(InputPosition position) const;
  // `position`, or the first step after it when its epoch has no step left
  // there (a resumed epoch that is done, the end of an epoch).
  InputPosition Normalize(InputPosition position) const;
  // Where a schedule starts: Normalize({resume_from->epoch, 0}), or {0, 0}.
  InputPosition FirstPosition() const;
  // OK when 0 <= epoch and 0 <= step < StepsInEpoch(epoch); InvalidArgument otherwise.
  absl::Status ValidatePosition(InputPosition position) const;

 private:
  struct Cache;
  BatchSchedule(const BatchScheduleOptions& options, int64_t steps_per_epoch);
  // Steps and batches of an epoch of `examples` examples.
  int64_t StepsFor(int64_t examples) const;
  int64_t GlobalBatchOf(int64_t examples, int64_t step) const;
  RowRange ShardRowsOf(int64_t examples, int64_t step) const;

  BatchScheduleOptions options_;
  int64_t steps_per_epoch_ = 0;
  std::shared_ptr<Cache> cache_;
};

// InvalidArgument unless `global_batch` splits evenly over `num_replicas`
// replicas in sync: "global batch size 256 does not divide by 3 replicas in
// sync; choose a global batch that is a multiple of 3".
absl::Status ValidateShardable(int64_t global_batch, int num_replicas);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_BATCH_SCHEDULE_H_

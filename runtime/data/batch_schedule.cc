#include "runtime/data/batch_schedule.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "runtime/base/check.h"
#include "runtime/data/global_position.h"
#include "runtime/data/portable_random.h"

namespace meshtrain {

struct BatchSchedule::Cache {
  absl::Mutex mu;
  int64_t epoch ABSL_GUARDED_BY(mu) = -1;
  std::shared_ptr<const std::vector<int64_t>> permutation ABSL_GUARDED_BY(mu);
};

absl::StatusOr<BatchSchedule> BatchSchedule::Create(const BatchScheduleOptions& options) {
  const auto error = [](auto... what) {
    return absl::InvalidArgumentError(absl::StrCat("batch schedule: ", what...));
  };
  if (options.num_examples < 0) return error("num_examples ", options.num_examples, " < 0");
  if (options.global_batch_size < 1) {
    return error("global_batch_size ", options.global_batch_size, " must be at least 1");
  }
  if (options.num_shards < 1) return error("num_shards ", options.num_shards, " < 1");
  if (options.max_steps_per_epoch < 0) {
    return error("max_steps_per_epoch ", options.max_steps_per_epoch, " < 0");
  }
  if (options.shard_index < 0 || options.shard_index >= options.num_shards) {
    return error("shard_index ", options.shard_index, " out of range for ", options.num_shards,
                 " shards");
  }
  if (options.resume_from != nullptr && options.resume_from->num_examples != options.num_examples) {
    return error("resuming from a position over ", options.resume_from->num_examples,
                 " examples, but the training set has ", options.num_examples);
  }
  BatchSchedule schedule(options, 0);
  schedule.steps_per_epoch_ = schedule.StepsFor(options.num_examples);
  return schedule;
}

BatchSchedule::BatchSchedule(const BatchScheduleOptions& options, int64_t steps_per_epoch)
    : options_(options), steps_per_epoch_(steps_per_epoch), cache_(std::make_shared<Cache>()) {}

int64_t BatchSchedule::StepsFor(int64_t examples) const {
  const int64_t g = options_.global_batch_size;
  int64_t steps = options_.drop_remainder ? examples / g : examples / g + (examples % g != 0);
  if (options_.max_steps_per_epoch > 0) steps = std::min(steps, options_.max_steps_per_epoch);
  return steps;
}

int64_t BatchSchedule::ExamplesInEpoch(int64_t epoch) const {
  const GlobalInputPosition* resume = options_.resume_from.get();
  if (resume == nullptr) return options_.num_examples;
  return options_.num_examples - resume->TrainedIn(epoch);
}

int64_t BatchSchedule::StepsInEpoch(int64_t epoch) const {
  if (options_.resume_from == nullptr) return steps_per_epoch_;
  return StepsFor(ExamplesInEpoch(epoch));
}

int64_t BatchSchedule::GlobalBatchOf(int64_t examples, int64_t step) const {
  MESHTRAIN_CHECK(step >= 0 && step < StepsFor(examples))
      << "step " << step << " of " << StepsFor(examples);
  const int64_t g = options_.global_batch_size;
  return std::min(g, examples - step * g);
}

RowRange BatchSchedule::ShardRowsOf(int64_t examples, int64_t step) const {
  const int64_t global = GlobalBatchOf(examples, step);
  const int64_t shards = options_.num_shards;
  const int64_t w = options_.shard_index;
  const int64_t base = global / shards;
  const int64_t extra = global % shards;
  const int64_t begin = w * base + std::min(w, extra);
  return RowRange{begin, begin + base + (w < extra ? 1 : 0)};
}

int64_t BatchSchedule::GlobalBatchSize(int64_t step) const {
  return GlobalBatchOf(options_.num_examples, step);
}

int64_t BatchSchedule::GlobalBatchSize(int64_t epoch, int64_t step) const {
  return GlobalBatchOf(ExamplesInEpoch(epoch), step);
}

RowRange BatchSchedule::ShardRows(int64_t step) const {
  return ShardRowsOf(options_.num_examples, step);
}

RowRange BatchSchedule::ShardRows(int64_t epoch, int64_t step) const {
  return ShardRowsOf(ExamplesInEpoch(epoch), step);
}

int64_t BatchSchedule::MaxShardBatchSize() const {
  // Step 0 is full-sized (or the only step) and shard 0 takes any extra row.
  if (steps_per_epoch_ == 0) return 0;
  const int64_t global = GlobalBatchSize(0);
  const int64_t shards = options_.num_shards;
  return global / shards + (global % shards != 0 ? 1 : 0);
}

std::shared_ptr<const std::vector<int64_t>> BatchSchedule::Permutation(int64_t epoch) const {
  MESHTRAIN_CHECK(epoch >= 0) << "epoch " << epoch;
  {
    absl::MutexLock lock(&cache_->mu);
    if (cache_->epoch == epoch) return cache_->permutation;
  }
  // Computed outside the lock: two threads asking for a new epoch at once both
  // compute the same permutation, which is cheaper than serialising readers.
  auto permutation = std::make_shared<std::vector<int64_t>>(options_.num_examples);
  std::iota(permutation->begin(), permutation->end(), int64_t{0});
  if (options_.shuffle) {
    PortableRandom random(DeriveSeed(options_.seed, static_cast<uint64_t>(epoch)));
    random.Shuffle(absl::MakeSpan(*permutation));
  }
  if (ExamplesInEpoch(epoch) != options_.num_examples) {
    // A partly trained epoch: P_e's untrained positions, in P_e order.
    const std::vector<int64_t> positions = EpochPositions(epoch);
    for (size_t i = 0; i < positions.size(); ++i) (*permutation)[i] = (*permutation)[positions[i]];
    permutation->resize(positions.size());
  }
  absl::MutexLock lock(&cache_->mu);
  cache_->epoch = epoch;
  cache_->permutation = permutation;
  return permutation;
}

absl::Span<const int64_t> BatchSchedule::ShardSlice(absl::Span<const int64_t> permutation,
                                                    int64_t step) const {
  MESHTRAIN_CHECK(static_cast<int64_t>(permutation.size()) <= options_.num_examples)
      << "permutation of " << permutation.size() << " for " << options_.num_examples << " examples";
  const RowRange rows = ShardRowsOf(static_cast<int64_t>(permutation.size()), step);
  return permutation.subspan(static_cast<size_t>(step * options_.global_batch_size + rows.begin),
                             static_cast<size_t>(rows.size()));
}

std::vector<int64_t> BatchSchedule::ShardIndices(int64_t epoch, int64_t step) const {
  const std::shared_ptr<const std::vector<int64_t>> permutation = Permutation(epoch);
  const absl::Span<const int64_t> slice = ShardSlice(*permutation, step);
  return std::vector<int64_t>(slice.begin(), slice.end());
}

std::vector<int64_t> BatchSchedule::GlobalIndices(int64_t epoch, int64_t step) const {
  const std::shared_ptr<const std::vector<int64_t>> permutation = Permutation(epoch);
  const auto first = permutation->begin() + step * options_.global_batch_size;
  return std::vector<int64_t>(
      first, first + GlobalBatchOf(static_cast<int64_t>(permutation->size()), step));
}

std::vector<int64_t> BatchSchedule::EpochPositions(int64_t epoch) const {
  std::vector<int64_t> positions;
  const GlobalInputPosition* resume = options_.resume_from.get();
  if (resume != nullptr && epoch < resume->epoch) return positions;
  positions.reserve(static_cast<size_t>(ExamplesInEpoch(epoch)));
  for (int64_t p = 0; p < options_.num_examples; ++p) {
    if (resume == nullptr || !resume->IsTrained(epoch, p)) positions.push_back(p);
  }
  return positions;
}

InputPosition BatchSchedule::Normalize(InputPosition position) const {
  // Whole epochs have a step (Create's callers check steps_per_epoch >= 1), so
  // this ends within the resumed epochs.
  while (steps_per_epoch_ > 0 && position.step >= StepsInEpoch(position.epoch)) {
    position = {position.epoch + 1, 0};
  }
  return position;
}

InputPosition BatchSchedule::FirstPosition() const {
  const GlobalInputPosition* resume = options_.resume_from.get();
  return Normalize({resume != nullptr ? resume->epoch : 0, 0});
}

InputPosition BatchSchedule::Advance(InputPosition position) const {
  return Normalize({position.epoch, position.step + 1});
}

absl::Status BatchSchedule::ValidatePosition(InputPosition position) const {
  if (position.epoch < 0 || position.step < 0 || position.step >= StepsInEpoch(position.epoch)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input position epoch ", position.epoch, " step ", position.step,
        " is outside the schedule (", StepsInEpoch(std::max<int64_t>(position.epoch, 0)),
        " steps in that epoch, ", steps_per_epoch_, " in a whole one, epochs from 0)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateShardable(int64_t global_batch, int num_replicas) {
  if (num_replicas < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("number of replicas in sync is ", num_replicas, "; it must be at least 1"));
  }
  if (global_batch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("global batch size ", global_batch, " must be at least 1"));
  }
  if (global_batch % num_replicas != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "global batch size ", global_batch, " does not divide by ", num_replicas,
        " replicas in sync; choose a global batch that is a multiple of ", num_replicas));
  }
  return absl::OkStatus();
}

}  // namespace meshtrain

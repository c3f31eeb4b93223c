#include "runtime/data/input_pipeline.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/base/check.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

// The consumer may hold the batch of the last Next() and the one before it.
constexpr int kHeldByConsumer = 2;

}  // namespace

absl::StatusOr<std::unique_ptr<InputPipeline>> InputPipeline::Create(
    const Dataset* dataset, BatchScheduleOptions options, InputPosition start,
    const InputPipelineOptions& pipeline) {
  MESHTRAIN_CHECK(dataset != nullptr) << "InputPipeline::Create: null dataset";
  const auto error = [&](auto... what) {
    return absl::InvalidArgumentError(
        absl::StrCat("input pipeline over '", dataset->name, "': ", what...));
  };
  MESHTRAIN_RETURN_IF_ERROR(ValidateDataset(*dataset));
  if (options.num_examples != dataset->size()) {
    return error("the schedule is for ", options.num_examples, " examples but the dataset has ",
                 dataset->size());
  }
  if (pipeline.prefetch_depth < 0) {
    return error("prefetch_depth ", pipeline.prefetch_depth, " < 0");
  }
  if (pipeline.num_threads < 1) return error("num_threads ", pipeline.num_threads, " < 1");
  if (pipeline.augment.enabled()) {
    if (BatchInputDType(*dataset) != DType::kFloat32) {
      return error("data.augment needs image inputs (float32 or uint8 pixels)");
    }
    MESHTRAIN_RETURN_IF_ERROR(
        ValidateAugment(pipeline.augment, dataset->inputs.shape().row_elements()));
  }
  MESHTRAIN_ASSIGN_OR_RETURN(BatchSchedule schedule, BatchSchedule::Create(options));
  if (schedule.steps_per_epoch() == 0) {
    return error("no step per epoch: ", options.num_examples, " examples in global batches of ",
                 options.global_batch_size, options.drop_remainder ? " with drop_remainder" : "",
                 "; use fewer replicas or a smaller global batch");
  }
  // A resumed epoch may have no step left at `start`: begin after it.
  if (options.resume_from != nullptr) start = schedule.Normalize(start);
  MESHTRAIN_RETURN_IF_ERROR(schedule.ValidatePosition(start));
  return std::unique_ptr<InputPipeline>(
      new InputPipeline(dataset, std::move(schedule), start, pipeline));
}

InputPipeline::InputPipeline(const Dataset* dataset, BatchSchedule schedule, InputPosition start,
                             const InputPipelineOptions& options)
    : dataset_(dataset),
      schedule_(std::move(schedule)),
      prefetch_depth_(options.prefetch_depth),
      num_threads_(options.prefetch_depth == 0 ? 1 : options.num_threads),
      augment_(options.augment),
      produce_position_(start),
      consume_position_(start) {
  // Synchronous: the two the consumer holds. Prefetching: those, the ready
  // batches, and one being gathered by each thread.
  const int pool =
      prefetch_depth_ == 0 ? kHeldByConsumer : prefetch_depth_ + kHeldByConsumer + num_threads_;
  const int64_t capacity = schedule_.MaxShardBatchSize();
  absl::MutexLock lock(&mu_);
  for (int i = 0; i < pool; ++i) {
    buffers_.push_back(AllocateBatch(*dataset_, capacity));
    free_.push_back(i);
  }
}

InputPipeline::~InputPipeline() { Stop(); }

void InputPipeline::Start() {
  if (synchronous()) return;
  absl::MutexLock lock(&mu_);
  if (started_ || stopping_) return;
  started_ = true;
  for (int i = 0; i < num_threads_; ++i) producers_.emplace_back([this] { ProduceLoop(); });
}

void InputPipeline::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& producer : producers_) {
    if (producer.joinable()) producer.join();
  }
}

InputPosition InputPipeline::next_position() const {
  absl::MutexLock lock(&mu_);
  return consume_position_;
}

std::vector<int64_t> InputPipeline::ExampleIndices(InputPosition position) const {
  return schedule_.ShardIndices(position.epoch, position.step);
}

Batch InputPipeline::View(int buffer, InputPosition position) const {
  return buffers_[buffer].Slice(0, schedule_.ShardRows(position.epoch, position.step).size());
}

Batch InputPipeline::Fill(int buffer, InputPosition position) const {
  // The schedule caches the epoch's permutation: one lock per batch.
  const std::shared_ptr<const std::vector<int64_t>> permutation =
      schedule_.Permutation(position.epoch);
  Batch batch = View(buffer, position);
  GatherBatchInto(*dataset_, schedule_.ShardSlice(*permutation, position.step), batch);
  if (augment_.enabled()) Augment(position, batch);
  return batch;
}

void InputPipeline::Augment(InputPosition position, Batch& batch) const {
  const int64_t width = batch.inputs.shape().row_elements();
  // Draws follow the example's row in the global batch, not this shard's.
  const int64_t first_row = schedule_.ShardRows(position.epoch, position.step).begin;
  std::vector<float> scratch(static_cast<size_t>(width));
  float* inputs = batch.inputs.data<float>();
  for (int64_t i = 0; i < batch.size(); ++i) {
    const uint64_t seed =
        AugmentSeed(schedule_.options().seed, position.epoch, position.step, first_row + i);
    AugmentImage(augment_, seed, absl::MakeSpan(inputs + i * width, width),
                 absl::MakeSpan(scratch));
  }
}

void InputPipeline::RecycleOldestHeld() {
  if (static_cast<int>(held_.size()) < kHeldByConsumer) return;
  free_.push_back(held_.front());
  held_.pop_front();
}

void InputPipeline::ProduceLoop() {
  for (;;) {
    int buffer;
    InputPosition position;
    {
      absl::MutexLock lock(&mu_);
      // Up to prefetch_depth batches ready, plus one being gathered per
      // thread: one thread behaves as a single producer that keeps
      // prefetch_depth ready.
      const auto can_fill = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ ||
               (static_cast<int>(ready_.size()) + filling_ < prefetch_depth_ + num_threads_ - 1 &&
                !free_.empty());
      };
      mu_.Await(absl::Condition(&can_fill));
      if (stopping_) return;
      buffer = free_.back();
      free_.pop_back();
      position = produce_position_;
      produce_position_ = schedule_.Advance(produce_position_);
      ++filling_;
    }
    // The gather runs unlocked: the consumer and the other producers go on.
    Fill(buffer, position);
    absl::MutexLock lock(&mu_);
    --filling_;
    ready_.emplace(SequenceOf(position), buffer);
  }
}

absl::StatusOr<std::pair<Batch, InputPosition>> InputPipeline::Next(absl::Time deadline) {
  const BatchScheduleOptions& options = schedule_.options();
  absl::MutexLock lock(&mu_);
  const auto where = [&] {
    return absl::StrCat("input pipeline over '", dataset_->name, "' (shard ", options.shard_index,
                        " of ", options.num_shards, "), epoch ", consume_position_.epoch, " step ",
                        consume_position_.step);
  };
  if (stopping_) return absl::CancelledError(absl::StrCat(where(), ": the pipeline is stopped"));
  RecycleOldestHeld();

  if (synchronous()) {
    const int buffer = free_.back();
    free_.pop_back();
    const InputPosition position = consume_position_;
    // The only filling thread is this one; Stop() only flips a flag, so the
    // lock can be held across the gather without blocking anyone for long.
    Batch batch = Fill(buffer, position);
    held_.push_back(buffer);
    consume_position_ = schedule_.Advance(position);
    return std::make_pair(std::move(batch), position);
  }

  if (!started_) {
    return absl::FailedPreconditionError(
        absl::StrCat(where(), ": Next() before Start(); call Start() once after Create()"));
  }
  const Sequence wanted = SequenceOf(consume_position_);
  const auto ready_or_stopping = [this, wanted]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || (!ready_.empty() && ready_.begin()->first == wanted);
  };
  mu_.AwaitWithDeadline(absl::Condition(&ready_or_stopping), deadline);
  if (stopping_) {
    return absl::CancelledError(absl::StrCat(where(), ": stopped while waiting for the batch"));
  }
  if (ready_.empty() || ready_.begin()->first != wanted) {
    return absl::DeadlineExceededError(
        absl::StrCat(where(), ": the batch was not ready by the deadline (the ", num_threads_,
                     " input thread(s) are behind; raise --input-threads or prefetch_depth, or use "
                     "prefetch_depth 0 to gather on this thread)"));
  }
  const int buffer = ready_.begin()->second;
  ready_.erase(ready_.begin());
  const InputPosition position = consume_position_;
  held_.push_back(buffer);
  consume_position_ = schedule_.Advance(position);
  return std::make_pair(View(buffer, position), position);
}

}  // namespace meshtrain

// InputPipeline: this shard's batches of a Dataset in BatchSchedule order,
// gathered ahead of the training loop by producer threads (tf.data's
// map(num_parallel_calls) + prefetch: each thread gathers and converts whole
// batches, and the batches are handed out in schedule order whichever thread
// finishes first), or on the caller's thread in synchronous mode
// (prefetch_depth 0: on a 2-core machine a producer thread can steal more
// compute than the gather costs).
//
// Batches live in a fixed pool of buffers sized for the largest shard batch,
// so a step allocates nothing. Lifetime: the Batch returned by Next() stays
// valid until the second Next() call after it (whether or not that call
// succeeds): the caller may keep the current and the previous batch, e.g. while
// a device copy of the previous one finishes. Copying the Batch does not extend
// this: the tensors share the pool's buffers. Clone() what must live longer.
//
// Thread-safety: Next() from one consumer thread; Stop() from any thread (it
// wakes a waiting Next(), which returns Cancelled). The dataset must outlive
// the pipeline.
#ifndef MESHTRAIN_RUNTIME_DATA_INPUT_PIPELINE_H_
#define MESHTRAIN_RUNTIME_DATA_INPUT_PIPELINE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/data/batch_schedule.h"
#include "runtime/data/dataset.h"
#include "runtime/data/image_augment.h"
#include "runtime/tensor/batch.h"

namespace meshtrain {

struct InputPipelineOptions {
  // Batches kept ready ahead of the consumer; 0: synchronous (Next() gathers
  // on the caller's thread).
  int prefetch_depth = 2;
  int num_threads = 1;  // producer threads (prefetch_depth > 0)
  // Applied to each batch as it is gathered (training input only).
  AugmentOptions augment;
};

class InputPipeline {
 public:
  // InvalidArgument when the dataset is malformed, options.num_examples differs
  // from dataset->size(), the schedule is invalid or has no step per epoch, the
  // start position is outside it, prefetch_depth < 0, num_threads < 1, or
  // the augmentation does not fit the inputs (ValidateAugment). prefetch_depth
  // 0 means synchronous: Next() gathers on the caller's thread and Start()
  // does nothing. Otherwise up to prefetch_depth batches wait ready while
  // num_threads more are being gathered.
  static absl::StatusOr<std::unique_ptr<InputPipeline>> Create(
      const Dataset* dataset, BatchScheduleOptions options, InputPosition start,
      const InputPipelineOptions& pipeline = {});

  InputPipeline(const InputPipeline&) = delete;
  InputPipeline& operator=(const InputPipeline&) = delete;
  ~InputPipeline();  // Stop()s

  // Starts the producer threads, which keep up to prefetch_depth batches ready
  // and block (no spinning) when they are. Idempotent; a no-op after Stop().
  void Start();

  // The next batch of this shard and its position; past an epoch's last step
  // it goes on with the next epoch. Blocks until the batch is ready or
  // `deadline` (DeadlineExceeded; the batch is returned by a later call).
  // Cancelled after Stop(); FailedPrecondition before Start() unless synchronous.
  absl::StatusOr<std::pair<Batch, InputPosition>> Next(absl::Time deadline);

  // Stops and joins the producers; wakes a waiting Next(). Idempotent.
  void Stop();

  const BatchSchedule& schedule() const { return schedule_; }
  bool synchronous() const { return prefetch_depth_ == 0; }
  int num_threads() const { return num_threads_; }
  // The position of the batch the next successful Next() returns: what a
  // checkpoint records to resume the input stream.
  InputPosition next_position() const;
  // The example indices of the batch at `position` (a position Next() returned),
  // in batch row order: what --test-record-examples writes.
  std::vector<int64_t> ExampleIndices(InputPosition position) const;

 private:
  InputPipeline(const Dataset* dataset, BatchSchedule schedule, InputPosition start,
                const InputPipelineOptions& options);

  // The batch's place in the stream (epochs may differ in steps).
  using Sequence = std::pair<int64_t, int64_t>;
  static Sequence SequenceOf(InputPosition position) { return {position.epoch, position.step}; }
  // Gathers the batch at `position` into buffer `buffer`; returns its view.
  // Any number of threads at once, each into its own buffer.
  Batch Fill(int buffer, InputPosition position) const;
  // Applies augment_ to a gathered batch of `position`.
  void Augment(InputPosition position, Batch& batch) const;
  void ProduceLoop();
  // Returns the oldest batch the consumer holds to the pool once it holds two.
  void RecycleOldestHeld() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Batch View(int buffer, InputPosition position) const;

  const Dataset* const dataset_;
  const BatchSchedule schedule_;
  const int prefetch_depth_;
  const int num_threads_;
  const AugmentOptions augment_;
  // Full-capacity buffers; a batch is a Slice of one.
  std::vector<Batch> buffers_;

  mutable absl::Mutex mu_;
  // Gathered batches by Sequence(), handed out in that order.
  std::map<Sequence, int> ready_ ABSL_GUARDED_BY(mu_);
  int filling_ ABSL_GUARDED_BY(mu_) = 0;  // batches being gathered now
  std::vector<int> free_ ABSL_GUARDED_BY(mu_);
  std::deque<int> held_ ABSL_GUARDED_BY(mu_);  // returned by Next(), oldest first
  // Where the next producer to claim a batch gathers.
  InputPosition produce_position_ ABSL_GUARDED_BY(mu_);
  InputPosition consume_position_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::vector<std::thread> producers_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_INPUT_PIPELINE_H_

// InputPipeline: this shard's batches of a Dataset in BatchSchedule order,
// gathered ahead of the training loop by one producer thread, or on the
// caller's thread in synchronous mode (prefetch_depth 0: on a 2-core machine a
// producer thread can steal more compute than the gather costs).
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
#include "runtime/tensor/batch.h"

namespace meshtrain {

class InputPipeline {
 public:
  // InvalidArgument when the dataset is malformed, options.num_examples differs
  // from dataset->size(), the schedule is invalid or has no step per epoch, the
  // start position is outside it, or prefetch_depth < 0. prefetch_depth 0 means
  // synchronous: Next() gathers on the caller's thread and Start() does nothing.
  static absl::StatusOr<std::unique_ptr<InputPipeline>> Create(const Dataset* dataset,
                                                               BatchScheduleOptions options,
                                                               InputPosition start,
                                                               int prefetch_depth = 2);

  InputPipeline(const InputPipeline&) = delete;
  InputPipeline& operator=(const InputPipeline&) = delete;
  ~InputPipeline();  // Stop()s

  // Starts the producer thread, which keeps up to prefetch_depth batches ready
  // and blocks (no spinning) when they are. Idempotent; a no-op after Stop().
  void Start();

  // The next batch of this shard and its position; past an epoch's last step
  // it goes on with the next epoch. Blocks until the batch is ready or
  // `deadline` (DeadlineExceeded; the batch is returned by a later call).
  // Cancelled after Stop(); FailedPrecondition before Start() unless synchronous.
  absl::StatusOr<std::pair<Batch, InputPosition>> Next(absl::Time deadline);

  // Stops and joins the producer; wakes a waiting Next(). Idempotent.
  void Stop();

  const BatchSchedule& schedule() const { return schedule_; }
  bool synchronous() const { return prefetch_depth_ == 0; }
  // The position of the batch the next successful Next() returns: what a
  // checkpoint records to resume the input stream.
  InputPosition next_position() const;

 private:
  // A gathered batch waiting in the queue.
  struct Ready {
    int buffer;
    InputPosition position;
  };

  InputPipeline(const Dataset* dataset, BatchSchedule schedule, InputPosition start,
                int prefetch_depth);

  // Gathers the batch at `position` into buffer `buffer`; returns its view.
  // Called by one thread at a time (the producer, or the caller when synchronous).
  Batch Fill(int buffer, InputPosition position);
  void ProduceLoop();
  // Returns the oldest batch the consumer holds to the pool once it holds two.
  void RecycleOldestHeld() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Batch View(int buffer, InputPosition position) const;

  const Dataset* const dataset_;
  const BatchSchedule schedule_;
  const int prefetch_depth_;
  // Full-capacity buffers; a batch is a Slice of one.
  std::vector<Batch> buffers_;

  // The permutation of the epoch being gathered (filling thread only).
  int64_t permutation_epoch_ = -1;
  std::shared_ptr<const std::vector<int64_t>> permutation_;
  // Where the producer gathers next (producer thread only).
  InputPosition produce_position_;

  mutable absl::Mutex mu_;
  std::deque<Ready> ready_ ABSL_GUARDED_BY(mu_);
  std::vector<int> free_ ABSL_GUARDED_BY(mu_);
  std::deque<int> held_ ABSL_GUARDED_BY(mu_);  // returned by Next(), oldest first
  InputPosition consume_position_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::thread producer_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_INPUT_PIPELINE_H_

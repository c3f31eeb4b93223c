// The bridge between a VariableStore (values, slots and update counts of whole
// variables or row partitions, on one device) and checkpoints: host copies for
// a CheckpointSnapshot, and restoring each entry's rows from a checkpoint of
// any partitioning. Used by every strategy that keeps its variables in stores.
#ifndef MESHTRAIN_STRATEGIES_STORE_CHECKPOINT_H_
#define MESHTRAIN_STRATEGIES_STORE_CHECKPOINT_H_

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "runtime/checkpoint/checkpoint_commit.h"
#include "runtime/checkpoint/checkpoint_reader.h"
#include "runtime/checkpoint/checkpoint_snapshot.h"
#include "runtime/optim/variable_store.h"

namespace meshtrain {

// Host copies of every entry of `store` (device tensors are copied through
// the store's kernels, which are synchronised), into `reuse`'s buffers where
// they match (else new ones).
absl::StatusOr<CheckpointSnapshot> SnapshotStore(VariableStore& store,
                                                 CheckpointSnapshot reuse = {});

// A strategy's snapshots of one store. Capture() is step 1 of a save, at a
// step boundary: it only arms a fence and returns a job. The copy of the
// store into host buffers is then done once, by whichever thread gets to it
// first: the saver's thread (job->Capture(), at once, while the next step
// computes its forward and backward), or the strategy's own thread, which
// calls WaitForCapture() before it changes the store (applies an update,
// restores) and, finding the copy not started, does it itself instead of
// waiting for the saver's thread to be scheduled. Either way the copy holds the
// step boundary's values and a step waits at most one copy (a memcpy), usually
// nothing. Stores off the host are copied at once instead (their kernels
// belong to the training thread). Buffers are reused from one checkpoint to
// the next: fresh ones cost a page fault per 4 KiB (measured: 0.76 ms per
// snapshot of the 2.1 MB reference model on this VM, 20% of a one_device
// step), reused ones a memcpy (0.2 ms). Thread-safe. A job borrows the store
// until it is copied.
class SnapshotBuffers : public std::enable_shared_from_this<SnapshotBuffers> {
 public:
  absl::StatusOr<std::unique_ptr<CheckpointJob>> Capture(VariableStore& store);
  // Returns once no copy is pending, doing a pending one itself.
  void WaitForCapture();
  // Time the strategy's thread spent in WaitForCapture (copying or waiting).
  absl::Duration total_wait() const;

 private:
  class Job;
  enum class State { kIdle, kPending, kCopying };

  absl::Status CaptureNow(Job* job);
  void Release(Job* job, CheckpointSnapshot used);

  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kIdle;
  Job* pending_ ABSL_GUARDED_BY(mu_) = nullptr;  // the job whose copy is not done
  CheckpointSnapshot spare_ ABSL_GUARDED_BY(mu_);
  absl::Duration waited_ ABSL_GUARDED_BY(mu_);
};

// Writes `snapshot` (SnapshotStore of a store of the same variables, here or
// on another worker) into `store`, in place: values, slots, update counts.
absl::Status WriteSnapshotToStore(const CheckpointSnapshot& snapshot, VariableStore& store);

// Writes the checkpoint's rows of every entry into `store`, in place (handles
// that replicas hold stay valid): value, each optimizer slot, update count.
absl::Status RestoreStore(const CheckpointReader& checkpoint, VariableStore& store);

}  // namespace meshtrain

#endif  // MESHTRAIN_STRATEGIES_STORE_CHECKPOINT_H_

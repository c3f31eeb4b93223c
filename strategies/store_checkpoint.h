// The bridge between a VariableStore (values, slots and update counts of whole
// variables or row partitions, on one device) and checkpoints: host copies for
// a CheckpointSnapshot, and restoring each entry's rows from a checkpoint of
// any partitioning. Used by every strategy that keeps its variables in stores.
#ifndef MESHTRAIN_STRATEGIES_STORE_CHECKPOINT_H_
#define MESHTRAIN_STRATEGIES_STORE_CHECKPOINT_H_

#include "absl/status/statusor.h"
#include "runtime/checkpoint/checkpoint_reader.h"
#include "runtime/checkpoint/checkpoint_snapshot.h"
#include "runtime/optim/variable_store.h"

namespace meshtrain {

// Host copies of every entry of `store` (device tensors are copied through
// the store's kernels, which are synchronised).
absl::StatusOr<CheckpointSnapshot> SnapshotStore(VariableStore& store);

// Writes the checkpoint's rows of every entry into `store`, in place (handles
// that replicas hold stay valid): value, each optimizer slot, update count.
absl::Status RestoreStore(const CheckpointReader& checkpoint, VariableStore& store);

}  // namespace meshtrain

#endif  // MESHTRAIN_STRATEGIES_STORE_CHECKPOINT_H_

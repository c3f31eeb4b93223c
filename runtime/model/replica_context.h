// ReplicaContext: what one replica sees during a step. The strategy implements
// it; the model calls it. Values may be the replica's own mirror, the one central
// copy, or a copy pulled from parameter servers: the model cannot tell.
// Used by one replica thread at a time.
#ifndef MESHTRAIN_RUNTIME_MODEL_REPLICA_CONTEXT_H_
#define MESHTRAIN_RUNTIME_MODEL_REPLICA_CONTEXT_H_

#include "absl/status/statusor.h"
#include "runtime/model/variable.h"
#include "runtime/model/workspace.h"
#include "runtime/tensor/kernels.h"

namespace meshtrain {

// What a step's random draws (dropout masks) depend on. The training loop sets
// it on each replica before the replica's forward pass; `replica` tells apart
// every replica in sync (input shard and local replica).
struct StepRandomness {
  uint64_t seed = 0;
  int64_t step = 0;
  uint64_t replica = 0;
};

class ReplicaContext {
 public:
  virtual ~ReplicaContext() = default;

  const StepRandomness& step_randomness() const { return step_randomness_; }
  void set_step_randomness(const StepRandomness& randomness) { step_randomness_ = randomness; }

  virtual int replica_id() const = 0;
  virtual Kernels& kernels() = 0;
  virtual Workspace& workspace() = 0;

  // The current value of a dense variable, on this replica's device.
  virtual const Tensor& Value(VariableId id) = 0;
  // The buffer the model overwrites with a dense variable's gradient.
  virtual Tensor& Gradient(VariableId id) = 0;
  // The model calls this once `id`'s gradient is final, in the order backward
  // produces them, so the strategy can start combining early (bucket by bucket).
  virtual void GradientReady(VariableId id) = 0;

  // Sparse variables: rows `ids` (int64, distinct) of the value, as [n, cols].
  virtual absl::StatusOr<Tensor> ReadRows(VariableId id, const Tensor& ids) = 0;
  // The gradient of rows `ids` (distinct), as [n, cols]. Both tensors are handed
  // over; the strategy keeps them until the step's update is applied.
  virtual void SetSparseGradient(VariableId id, Tensor ids, Tensor rows) = 0;

  // Sums `values` (float32 on this replica's device, the same length on every
  // replica) in place over every replica that trains this step in sync: this
  // process's replicas and, under multi_worker_mirrored, every worker's. Each
  // replica calls it the same number of times in the same order during a step
  // (synchronized batch normalisation does, in forward and backward). Where a
  // replica trains alone (one_device, a parameter_server worker's asynchronous
  // steps) it leaves `values` as they are. An error aborts the step.
  virtual absl::Status SumOverReplicas(Tensor& values) = 0;

 private:
  StepRandomness step_randomness_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_MODEL_REPLICA_CONTEXT_H_

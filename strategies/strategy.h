// Strategy: decides where variables live and how gradients meet; the model and
// the training loop do not know which one runs. Every strategy implements the
// same interface:
//
//   1. The model declares its variables through CreateVariable (the strategy is
//      the model's VariableCreator).
//   2. Build() allocates every copy (per replica, central, or on ps tasks),
//      initialises it from the seed, and makes replicas and workers agree.
//   3. Each step, Run() takes this process's part of the global batch, splits it
//      over its replicas, runs the step function on each, combines gradients
//      and applies the optimizer.
//   4. Read() lends a context holding the current values (evaluation, checksums).
//   5. At a step boundary, PrepareCheckpoint() captures what a checkpoint needs
//      and Restore() replaces the variables with a checkpoint's
//      (docs/fault_tolerance.md).
//
// Strategies: one_device, mirrored, multi_worker_mirrored, central_storage,
// parameter_server (docs/strategies.md says when to pick which). A strategy is
// driven by one thread (the training loop's); it may run replica threads inside.
#ifndef MESHTRAIN_STRATEGIES_STRATEGY_H_
#define MESHTRAIN_STRATEGIES_STRATEGY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json_fwd.hpp"
#include "runtime/checkpoint/checkpoint_commit.h"
#include "runtime/checkpoint/checkpoint_reader.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/model/replica_context.h"
#include "runtime/model/variable.h"
#include "runtime/tensor/batch.h"
#include "runtime/tensor/kernels.h"

namespace meshtrain {

// What one replica computes in a step: forward and backward on its slice,
// gradients scaled by `grad_scale` (1 / global batch size).
using StepFn = std::function<absl::StatusOr<LossStats>(ReplicaContext& ctx, const Batch& slice,
                                                       float grad_scale)>;

// Where one step's time went, on this process (docs/compare.md).
struct StepTiming {
  absl::Duration compute;      // forward, backward, optimizer
  absl::Duration communicate;  // moving and reducing gradients or variables
  absl::Duration wait;         // blocked on peers (or a ps) with nothing to do
  // Communication that ran while backward computed (gradient buckets summed
  // on a combiner thread): not part of the step's time, and not counted in
  // communicate or wait.
  absl::Duration hidden;
  int64_t bytes_sent = 0;
  int64_t bytes_received = 0;
};

struct StepResult {
  LossStats loss;        // summed over this process's examples
  int64_t examples = 0;  // examples this process trained on
  StepTiming timing;
  bool applied = true;  // false when the update was dropped (stale gradient)
};

// Which part of each global batch this process reads (BatchSchedule's shard).
struct InputShard {
  int num_shards = 1;
  int shard_index = 0;
};

// How a strategy's cluster survives the failure of a task
// (docs/fault_tolerance.md). A value: each strategy returns its own.
struct RecoveryPolicy {
  // Each training worker steps at its own pace on variables held elsewhere
  // (parameter_server). Then a worker's input position is its own (the chief
  // records every worker's in a checkpoint), only the chief restores
  // variables (Restore on the others re-reads them), the chief evaluates once
  // more after the others' last updates, and a worker other than the chief
  // that dies restarts alone while the others go on. Otherwise the death or
  // restart of any task makes every task recover from the latest checkpoint.
  bool independent_workers = false;

  // Every training worker holds every variable, equal at step boundaries
  // (multi_worker_mirrored): an elastic cluster goes on without a dead worker
  // from the state the survivors hold, and a joining one receives it
  // (Strategy::ShareState; docs/fault_tolerance.md 5.9).
  bool replicated_state = false;

  // The tasks whose death or restart is no error of the cluster
  // (MeshOptions::independent_tasks): with independent workers, every
  // training worker but the chief.
  std::set<TaskId> IndependentTasks(const ClusterSpec& cluster) const {
    std::set<TaskId> tasks;
    if (!independent_workers) return tasks;
    for (const TaskId& worker : cluster.TrainingWorkers()) {
      if (worker != cluster.Chief()) tasks.insert(worker);
    }
    return tasks;
  }
};

class Strategy : public VariableCreator {
 public:
  ~Strategy() override = default;

  virtual std::string name() const = 0;
  // Replicas whose gradients are combined each step (all workers' replicas).
  virtual int num_replicas_in_sync() const = 0;
  virtual InputShard input_shard() const = 0;

  // Once, after the model has declared its variables.
  virtual absl::Status Build() = 0;

  // One training step on `batch` (this process's shard of a global batch of
  // `global_batch_size` examples).
  virtual absl::StatusOr<StepResult> Run(const StepFn& step, const Batch& batch,
                                         int64_t global_batch_size) = 0;

  // Runs `fn` on a context that reads the current values.
  virtual absl::Status Read(const std::function<absl::Status(ReplicaContext&)>& fn) = 0;

  // A checksum of this process's copy of every variable (equal copies, equal sums).
  virtual absl::StatusOr<std::string> ParameterChecksum() = 0;

  // Strategy-specific fields for summary.json (replicas, cross-device op, ...).
  virtual void Describe(nlohmann::json& summary) const = 0;

  // Checkpoints. Both are called on the training thread between steps.
  // PrepareCheckpoint captures this process's variables, optimizer slots and
  // update counts in a job that the saver writes on a background thread while
  // training goes on (synchronous strategies: host copies, a memcpy; a
  // parameter-server strategy: a job that asks every ps task to write its own
  // shards in parallel). Synchronous strategies hold the same values on every
  // worker, so only the chief calls it.
  virtual absl::StatusOr<std::unique_ptr<CheckpointJob>> PrepareCheckpoint() {
    return absl::UnimplementedError(name() + " does not write checkpoints yet");
  }
  // Replaces every copy of every variable (values, slots, update counts) with
  // the checkpoint's, whatever strategy and partitioning wrote it. Called by
  // every task that holds variables; NotFound names a variable the checkpoint
  // lacks.
  virtual absl::Status Restore(const CheckpointReader& checkpoint) {
    return absl::UnimplementedError(name() + " does not restore checkpoints yet");
  }

  virtual RecoveryPolicy recovery_policy() const { return {}; }

  // With RecoveryPolicy::replicated_state: makes this worker's variables,
  // optimizer slots and update counts equal to those of the worker of rank
  // `root` among this life's workers, sent over the strategy's own links (the
  // data path, not the disk). Every worker of the life calls it, between
  // steps, with the same root.
  virtual absl::Status ShareState(int root) {
    return absl::UnimplementedError(name() + " does not share its state between workers");
  }

  // Once, after this process's last step (Read still works afterwards): a
  // strategy whose workers share state elsewhere says this worker is done
  // (parameter_server: synchronous steps stop waiting for it).
  virtual absl::Status Finish() { return absl::OkStatus(); }
};

}  // namespace meshtrain

#endif  // MESHTRAIN_STRATEGIES_STRATEGY_H_

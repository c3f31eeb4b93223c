// ParameterServerStrategy: variables live on ps tasks (partitioned and placed
// by the chief's plan, runtime/ps/ps_plan.h); every training worker runs its
// own loop over its own shard of the data and never waits for the others.
//
// A worker's step:
//   1. forward and backward on its shard of the global batch (G / workers
//      examples, gradients scaled by 1 / G) with the values it holds, pulling
//      only the rows of embedding tables the batch touches (ReadRows);
//   2. one request per ps, all ps at once: push the step's gradients with the
//      versions they were computed from, receive the values after the update
//      (in synchronous mode, after the step's aggregated update);
//   3. the ps applies (or drops, by the staleness rules) the gradients itself.
// Steps are not pipelined (computing step t + 1 while step t's push is in
// flight): measured on the reference job, the extra step of staleness on top
// of momentum 0.9 stalled training (test accuracy 0.50 after 3 epochs instead
// of 0.85; docs/benchmarks.md).
// Before its first step a worker other than the chief waits until the chief
// made warmup_steps updates. Evaluation pulls the current values first.
// After the last step Finish() tells the ps tasks this worker left; the
// chief's then waits until every worker has left, so that its final
// evaluation and the final checkpoint hold every worker's updates.
//
// Checkpoints: the ps tasks write their own partitions (PrepareCheckpoint's
// job asks them, from the saver's thread, through PsClient::SaveShards), and
// only the chief restores them (Restore: RestoreShards, then a pull); another
// worker's Restore, called after the chief published the restore, only
// forgets its versions and pulls the restored values.
//
// One CPU replica per worker (the worker's cores go to OpenBLAS). Driven by one
// thread; the client runs one helper thread per extra ps.
#ifndef MESHTRAIN_STRATEGIES_PARAMETER_SERVER_H_
#define MESHTRAIN_STRATEGIES_PARAMETER_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/ps/ps_client.h"
#include "strategies/replica.h"
#include "strategies/strategy.h"

namespace meshtrain {

class ParameterServerStrategy final : public Strategy {
 public:
  // Builds the client once the model declared its variables (Build()).
  using ConnectFn = std::function<absl::StatusOr<std::unique_ptr<PsClient>>(
      const std::vector<VariableSpec>& specs)>;

  struct Options {
    ConnectFn connect;
    int worker_rank = 0;  // 0: the chief
    int num_workers = 1;
    Device device = Device::Cpu(0);
    int64_t warmup_steps = 0;
    // The chief's Finish() waits for the other workers to finish, as long as
    // the ps tasks keep receiving their gradients; it gives up (with a
    // warning) after this long without a push.
    absl::Duration finish_stall_timeout = absl::Minutes(5);
  };

  static absl::StatusOr<std::unique_ptr<ParameterServerStrategy>> Create(Options options);
  ~ParameterServerStrategy() override;

  absl::StatusOr<VariableId> CreateVariable(const VariableSpec& spec) override;
  std::string name() const override { return "parameter_server"; }
  // Each worker's gradients cover 1 / workers of a global batch.
  int num_replicas_in_sync() const override { return options_.num_workers; }
  InputShard input_shard() const override { return {options_.num_workers, options_.worker_rank}; }
  static constexpr RecoveryPolicy kRecoveryPolicy{.independent_workers = true};
  RecoveryPolicy recovery_policy() const override { return kRecoveryPolicy; }
  absl::Status Build() override;
  absl::StatusOr<StepResult> Run(const StepFn& step, const Batch& batch,
                                 int64_t global_batch_size) override;
  absl::Status Read(const std::function<absl::Status(ReplicaContext&)>& fn) override;
  // The ps tasks' checksums of their partitions, in task order, joined by '-'.
  absl::StatusOr<std::string> ParameterChecksum() override;
  void Describe(nlohmann::json& summary) const override;
  absl::Status Finish() override;
  absl::StatusOr<std::unique_ptr<CheckpointJob>> PrepareCheckpoint() override;
  absl::Status Restore(const CheckpointReader& checkpoint) override;

  // What the ps tasks did with this worker's gradients so far.
  const PushCounts& counts() const { return counts_; }

 private:
  class Context;
  explicit ParameterServerStrategy(Options options);
  // The chief's part of Finish().
  absl::Status AwaitOtherWorkers();

  Options options_;
  std::vector<VariableSpec> specs_;
  std::unique_ptr<PsClient> client_;
  std::unique_ptr<Replica> replica_;
  std::unique_ptr<Context> context_;
  std::vector<Tensor> values_;           // per VariableId: the pulled value (empty for sparse)
  std::vector<Tensor> gradients_;        // per VariableId: the replica's gradient view (dense)
  std::vector<std::string> slot_names_;  // the plan's optimizer's
  int64_t dense_bytes_ = 0;
  bool waited_for_warmup_ = false;
  PushCounts counts_;
  int64_t steps_ = 0;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_STRATEGIES_PARAMETER_SERVER_H_

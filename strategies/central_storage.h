// CentralStorageStrategy: every variable lives once, on the parameter device
// (the CPU by default); the compute replicas read that one copy, compute
// gradients on their slices, the gradients are summed on the parameter device
// and one update is applied, synchronously. With one replica it behaves like
// one_device.
//
// A step: (1) every replica thread runs forward and backward into its own
// gradient buffer; (2) the replicas meet at a barrier; (3) each sums one slice
// of all replicas' gradients into the parameter device's gradient; (4) the
// update is applied once, before any replica reads the variables again.
// Step timing (replica 0's view): wait = its time at the barrier (2) plus its
// wait for the other replicas' slices of (3); communicate = summing its slice
// (3); compute = the rest (1 and 4). Nothing crosses a process: zero bytes.
#ifndef MESHTRAIN_STRATEGIES_CENTRAL_STORAGE_H_
#define MESHTRAIN_STRATEGIES_CENTRAL_STORAGE_H_

#include <memory>
#include <vector>

#include "runtime/base/abort_signal.h"
#include "runtime/base/fork_join_pool.h"
#include "runtime/base/trace.h"
#include "runtime/collective/cross_device_ops.h"
#include "runtime/collective/replica_barrier.h"
#include "runtime/optim/optimizer.h"
#include "runtime/optim/variable_store.h"
#include "strategies/replica.h"
#include "strategies/store_checkpoint.h"
#include "strategies/strategy.h"

namespace meshtrain {

class CentralStorageStrategy final : public Strategy {
 public:
  struct Options {
    std::vector<Device> compute_devices;
    Device parameter_device = Device::Cpu(0);
    const Optimizer* optimizer = nullptr;
    uint64_t seed = 0;
    AbortSignal* abort = nullptr;
    Tracer* tracer = nullptr;  // null: no spans
  };

  static absl::StatusOr<std::unique_ptr<CentralStorageStrategy>> Create(Options options);
  ~CentralStorageStrategy() override;

  absl::StatusOr<VariableId> CreateVariable(const VariableSpec& spec) override;
  std::string name() const override { return "central_storage"; }
  int num_replicas_in_sync() const override {
    return static_cast<int>(options_.compute_devices.size());
  }
  InputShard input_shard() const override { return {}; }
  absl::Status Build() override;
  absl::StatusOr<StepResult> Run(const StepFn& step, const Batch& batch,
                                 int64_t global_batch_size) override;
  absl::Status Read(const std::function<absl::Status(ReplicaContext&)>& fn) override;
  absl::StatusOr<std::string> ParameterChecksum() override { return store_->Checksum(); }
  void Describe(nlohmann::json& summary) const override;
  absl::StatusOr<std::unique_ptr<CheckpointJob>> PrepareCheckpoint() override;
  absl::Status Restore(const CheckpointReader& checkpoint) override;

  const VariableStore& store() const { return *store_; }

 private:
  explicit CentralStorageStrategy(Options options) : options_(std::move(options)) {}
  absl::Status ReplicaStep(int i, const StepFn& step, const Batch& slice, float grad_scale);

  Options options_;
  std::vector<VariableSpec> specs_;
  std::unique_ptr<Kernels> parameter_kernels_;
  std::unique_ptr<VariableStore> store_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::vector<LossStats> losses_;
  std::vector<absl::Duration> reduce_time_;
  std::vector<absl::Duration> barrier_time_;
  std::vector<absl::Time> replica_done_;
  std::vector<char> thread_named_;  // element i touched by replica i's thread only
  std::unique_ptr<ReplicaBarrier> barrier_;
  // Sums of layer statistics across the replicas (ReplicaContext::
  // SumOverReplicas); null with one replica.
  std::unique_ptr<CrossDeviceOps> statistics_ops_;
  int64_t step_ = 0;
  std::unique_ptr<ForkJoinPool> pool_;
  std::shared_ptr<SnapshotBuffers> snapshot_buffers_ = std::make_shared<SnapshotBuffers>();
};

}  // namespace meshtrain

#endif  // MESHTRAIN_STRATEGIES_CENTRAL_STORAGE_H_

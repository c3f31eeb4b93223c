// OneDeviceStrategy: every variable on one device, one replica, no combining.
// The baseline every other strategy is compared with (and what CentralStorage
// with one device reduces to). Driven by one thread.
#ifndef MESHTRAIN_STRATEGIES_ONE_DEVICE_H_
#define MESHTRAIN_STRATEGIES_ONE_DEVICE_H_

#include <memory>
#include <vector>

#include "runtime/optim/optimizer.h"
#include "runtime/optim/variable_store.h"
#include "strategies/replica.h"
#include "strategies/store_checkpoint.h"
#include "strategies/strategy.h"

namespace meshtrain {

class OneDeviceStrategy final : public Strategy {
 public:
  // `optimizer` must outlive the strategy.
  static absl::StatusOr<std::unique_ptr<OneDeviceStrategy>> Create(Device device,
                                                                   const Optimizer& optimizer,
                                                                   uint64_t seed);

  absl::StatusOr<VariableId> CreateVariable(const VariableSpec& spec) override;
  std::string name() const override { return "one_device"; }
  int num_replicas_in_sync() const override { return 1; }
  InputShard input_shard() const override { return {}; }
  absl::Status Build() override;
  absl::StatusOr<StepResult> Run(const StepFn& step, const Batch& batch,
                                 int64_t global_batch_size) override;
  absl::Status Read(const std::function<absl::Status(ReplicaContext&)>& fn) override;
  absl::StatusOr<std::string> ParameterChecksum() override { return store_->Checksum(); }
  void Describe(nlohmann::json& summary) const override;
  absl::StatusOr<std::unique_ptr<CheckpointJob>> PrepareCheckpoint() override;
  absl::Status Restore(const CheckpointReader& checkpoint) override;

 private:
  OneDeviceStrategy(Device device, const Optimizer& optimizer, uint64_t seed)
      : device_(device), optimizer_(optimizer), seed_(seed) {}

  Device device_;
  const Optimizer& optimizer_;
  uint64_t seed_;
  std::vector<VariableSpec> specs_;
  std::unique_ptr<Replica> replica_;
  std::unique_ptr<VariableStore> store_;
  std::shared_ptr<SnapshotBuffers> snapshot_buffers_ = std::make_shared<SnapshotBuffers>();
};

}  // namespace meshtrain

#endif  // MESHTRAIN_STRATEGIES_ONE_DEVICE_H_

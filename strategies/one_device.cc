#include "strategies/one_device.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/base/status_macros.h"
#include "strategies/store_checkpoint.h"

namespace meshtrain {

absl::StatusOr<std::unique_ptr<OneDeviceStrategy>> OneDeviceStrategy::Create(
    Device device, const Optimizer& optimizer, uint64_t seed) {
  return std::unique_ptr<OneDeviceStrategy>(new OneDeviceStrategy(device, optimizer, seed));
}

absl::StatusOr<VariableId> OneDeviceStrategy::CreateVariable(const VariableSpec& spec) {
  if (replica_ != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("variable ", spec.name, " declared after the strategy was built"));
  }
  specs_.push_back(spec);
  return static_cast<VariableId>(specs_.size() - 1);
}

absl::Status OneDeviceStrategy::Build() {
  MESHTRAIN_ASSIGN_OR_RETURN(replica_, Replica::Create(0, device_, specs_));
  store_ = std::make_unique<VariableStore>(replica_->kernels(), optimizer_);
  for (const VariableSpec& spec : specs_) {
    MESHTRAIN_RETURN_IF_ERROR(store_->Add(spec).status());
  }
  MESHTRAIN_RETURN_IF_ERROR(store_->Initialize(seed_));
  std::vector<Tensor> values;
  for (int i = 0; i < store_->size(); ++i) values.push_back(store_->entry(i).value);
  replica_->BindValues(std::move(values));
  return absl::OkStatus();
}

absl::StatusOr<StepResult> OneDeviceStrategy::Run(const StepFn& step, const Batch& batch,
                                                  int64_t global_batch_size) {
  const absl::Time start = absl::Now();
  StepResult result;
  MESHTRAIN_ASSIGN_OR_RETURN(result.loss,
                             step(*replica_, batch, 1.0f / static_cast<float>(global_batch_size)));
  snapshot_buffers_->WaitForCapture();  // a checkpoint copies the values of the step boundary
  for (VariableId id = 0; id < static_cast<VariableId>(specs_.size()); ++id) {
    if (specs_[id].sparse) {
      Replica::SparseGradient& g = replica_->sparse_gradients()[id];
      MESHTRAIN_RETURN_IF_ERROR(store_->ApplySparse(id, g.ids, g.rows));
    } else {
      store_->Apply(id, replica_->Gradient(id));
    }
  }
  MESHTRAIN_RETURN_IF_ERROR(replica_->kernels().Synchronize());
  result.examples = batch.size();
  result.timing.compute = absl::Now() - start;
  return result;
}

absl::Status OneDeviceStrategy::Read(const std::function<absl::Status(ReplicaContext&)>& fn) {
  return fn(*replica_);
}

void OneDeviceStrategy::Describe(nlohmann::json& summary) const {
  summary["num_replicas"] = 1;
  summary["devices"] = {device_.ToString()};
  summary["checkpoint_update_wait_ms"] =
      absl::ToDoubleMilliseconds(snapshot_buffers_->total_wait());
}

absl::StatusOr<std::unique_ptr<CheckpointJob>> OneDeviceStrategy::PrepareCheckpoint() {
  return snapshot_buffers_->Capture(*store_);
}

absl::Status OneDeviceStrategy::Restore(const CheckpointReader& checkpoint) {
  snapshot_buffers_->WaitForCapture();
  return RestoreStore(checkpoint, *store_);
}

}  // namespace meshtrain

#include "strategies/central_storage.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/base/status_macros.h"
#include "runtime/transport/reduce_kernel.h"
#include "strategies/store_checkpoint.h"

namespace meshtrain {

absl::StatusOr<std::unique_ptr<CentralStorageStrategy>> CentralStorageStrategy::Create(
    Options options) {
  if (options.compute_devices.empty()) {
    return absl::InvalidArgumentError("central_storage needs at least one compute device");
  }
  for (const Device& d : options.compute_devices) {
    if (!d.is_cpu() || !options.parameter_device.is_cpu()) {
      return absl::UnimplementedError(absl::StrCat(
          "central_storage on ", d.ToString(),
          ": GPU compute devices read the parameter device "
          "through host copies, which this build does not do yet; use cpu devices or mirrored"));
    }
  }
  return std::unique_ptr<CentralStorageStrategy>(new CentralStorageStrategy(std::move(options)));
}

CentralStorageStrategy::~CentralStorageStrategy() { pool_.reset(); }

absl::StatusOr<VariableId> CentralStorageStrategy::CreateVariable(const VariableSpec& spec) {
  if (store_ != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("variable ", spec.name, " declared after the strategy was built"));
  }
  if (spec.sparse) {
    return absl::UnimplementedError(
        absl::StrCat("central_storage: variable ", spec.name,
                     " is sparse; train sparse models with one_device or parameter_server"));
  }
  specs_.push_back(spec);
  return static_cast<VariableId>(specs_.size() - 1);
}

absl::Status CentralStorageStrategy::Build() {
  MESHTRAIN_ASSIGN_OR_RETURN(parameter_kernels_, CreateKernels(options_.parameter_device));
  store_ = std::make_unique<VariableStore>(*parameter_kernels_, *options_.optimizer);
  for (const VariableSpec& spec : specs_) MESHTRAIN_RETURN_IF_ERROR(store_->Add(spec).status());
  MESHTRAIN_RETURN_IF_ERROR(store_->Initialize(options_.seed));
  std::vector<Tensor> values;
  for (int v = 0; v < store_->size(); ++v) values.push_back(store_->entry(v).value);
  const int n = num_replicas_in_sync();
  for (int i = 0; i < n; ++i) {
    MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Replica> replica,
                               Replica::Create(i, options_.compute_devices[i], specs_));
    replica->BindValues(values);  // the one central copy: handles, not copies
    replicas_.push_back(std::move(replica));
  }
  losses_.resize(n);
  reduce_time_.resize(n);
  barrier_time_.resize(n);
  replica_done_.resize(n);
  thread_named_.assign(n, 0);
  barrier_ = std::make_unique<ReplicaBarrier>(n, options_.abort);
  if (n > 1) {
    MESHTRAIN_ASSIGN_OR_RETURN(
        statistics_ops_, CreateCrossDeviceOps("reduce_to_one_device", n, nullptr, options_.abort));
    for (int i = 0; i < n; ++i) {
      replicas_[i]->SetSumOverReplicas([this, i](Tensor& values) {
        CollectiveContext ctx{step_, "layer statistics", absl::Now() + absl::Seconds(60),
                              /*exact=*/true};
        return statistics_ops_->AllReduce(
            i, absl::MakeSpan(values.data<float>(), values.num_elements()), ctx);
      });
    }
  }
  pool_ = std::make_unique<ForkJoinPool>(n, ForkJoinPool::Options{.pin = true});
  return absl::OkStatus();
}

absl::Status CentralStorageStrategy::ReplicaStep(int i, const StepFn& step, const Batch& slice,
                                                 float grad_scale) {
  if (options_.tracer != nullptr && !thread_named_[i] && pool_->size() > 1) {
    options_.tracer->NameThread(absl::StrCat("replica ", i));
    thread_named_[i] = 1;
  }
  absl::StatusOr<LossStats> loss;
  {
    TraceSpan trace(options_.tracer, "forward_backward", "compute");
    loss = step(*replicas_[i], slice, grad_scale);
  }
  // Arrive even after a failure, so the others do not wait for the deadline.
  const absl::Time arriving = absl::Now();
  absl::Status arrived;
  {
    TraceSpan trace(options_.tracer, "barrier", "wait");
    arrived = barrier_->Arrive(i, arriving + absl::Seconds(60));
  }
  const absl::Time start = absl::Now();
  barrier_time_[i] = start - arriving;
  MESHTRAIN_RETURN_IF_ERROR(loss.status());
  MESHTRAIN_RETURN_IF_ERROR(arrived);
  losses_[i] = *loss;
  // Sum slice i of every replica's gradients into replica 0's buffer, which is
  // the parameter device's gradient (all CPU replicas share host memory).
  TraceSpan trace(options_.tracer, "reduce", "collective");
  const int n = static_cast<int>(replicas_.size());
  absl::Span<float> total = replicas_[0]->flat_gradients();
  const int64_t size = static_cast<int64_t>(total.size());
  const int64_t begin = size * i / n, end = size * (i + 1) / n;
  std::vector<const float*> sources;
  for (int r = 0; r < n; ++r) sources.push_back(replicas_[r]->flat_gradients().data() + begin);
  SumFloat32(total.data() + begin, sources, static_cast<size_t>(end - begin));
  replica_done_[i] = absl::Now();
  reduce_time_[i] = replica_done_[i] - start;
  return absl::OkStatus();
}

absl::StatusOr<StepResult> CentralStorageStrategy::Run(const StepFn& step, const Batch& batch,
                                                       int64_t global_batch_size) {
  const int n = static_cast<int>(replicas_.size());
  const float grad_scale = 1.0f / static_cast<float>(global_batch_size);
  const std::vector<Batch> slices = SplitBatch(batch, n);
  const int64_t rows = batch.size();
  const absl::Time start = absl::Now();
  ++step_;
  MESHTRAIN_RETURN_IF_ERROR(
      pool_->Run([&](int i) { return ReplicaStep(i, step, slices[i], grad_scale); }));
  const absl::Time all_done = absl::Now();
  {
    // The one update, on the parameter device, while no replica runs (and once
    // a checkpoint has copied the step boundary's values).
    TraceSpan trace(options_.tracer, "apply", "compute");
    snapshot_buffers_->WaitForCapture();
    for (int v = 0; v < static_cast<int>(specs_.size()); ++v) {
      store_->Apply(v, replicas_[0]->Gradient(v));
    }
    MESHTRAIN_RETURN_IF_ERROR(parameter_kernels_->Synchronize());
  }
  StepResult result;
  for (const LossStats& l : losses_) {
    result.loss.loss_sum += l.loss_sum;
    result.loss.correct += l.correct;
  }
  result.examples = rows;
  const absl::Duration total = absl::Now() - start;
  result.timing.communicate = reduce_time_[0];
  result.timing.wait = std::clamp(barrier_time_[0] + (all_done - replica_done_[0]),
                                  absl::ZeroDuration(), total - result.timing.communicate);
  result.timing.compute = total - result.timing.communicate - result.timing.wait;
  return result;
}

absl::Status CentralStorageStrategy::Read(const std::function<absl::Status(ReplicaContext&)>& fn) {
  return fn(*replicas_[0]);
}

void CentralStorageStrategy::Describe(nlohmann::json& summary) const {
  nlohmann::json devices = nlohmann::json::array();
  for (const Device& d : options_.compute_devices) devices.push_back(d.ToString());
  summary["devices"] = devices;
  summary["num_replicas"] = num_replicas_in_sync();
  summary["parameter_device"] = options_.parameter_device.ToString();
  summary["cross_device_ops"] = "sum_on_parameter_device";
  summary["checkpoint_update_wait_ms"] =
      absl::ToDoubleMilliseconds(snapshot_buffers_->total_wait());
}

absl::StatusOr<std::unique_ptr<CheckpointJob>> CentralStorageStrategy::PrepareCheckpoint() {
  return snapshot_buffers_->Capture(*store_);
}

// The replicas hold handles on the central copy, which is restored in place.
absl::Status CentralStorageStrategy::Restore(const CheckpointReader& checkpoint) {
  snapshot_buffers_->WaitForCapture();
  return RestoreStore(checkpoint, *store_);
}

}  // namespace meshtrain

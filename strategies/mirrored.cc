#include "strategies/mirrored.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/base/status_macros.h"
#include "runtime/tensor/cpu_kernels.h"
#include "strategies/store_checkpoint.h"

namespace meshtrain {

absl::StatusOr<std::unique_ptr<MirroredStrategy>> MirroredStrategy::Create(Options options) {
  if (options.devices.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(options.name, " needs at least one device"));
  }
  if (options.optimizer == nullptr) return absl::InvalidArgumentError("no optimizer");
  if (options.num_workers > 1 && options.cross_worker.communicator == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(options.name, " across ", options.num_workers,
                                                   " workers needs a communicator"));
  }
  return std::unique_ptr<MirroredStrategy>(new MirroredStrategy(std::move(options)));
}

MirroredStrategy::~MirroredStrategy() {
  // Combiners and the pool join their threads before the replicas they use go.
  pool_.reset();
  for (ReplicaState& r : replicas_) r.combiner.reset();
}

absl::StatusOr<VariableId> MirroredStrategy::CreateVariable(const VariableSpec& spec) {
  if (!replicas_.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("variable ", spec.name, " declared after the strategy was built"));
  }
  if (spec.sparse) {
    return absl::UnimplementedError(absl::StrCat(options_.name, ": variable ", spec.name,
                                                 " is sparse (an embedding table); train sparse "
                                                 "models with one_device or parameter_server"));
  }
  specs_.push_back(spec);
  return static_cast<VariableId>(specs_.size() - 1);
}

absl::Status MirroredStrategy::Build() {
  const int n = static_cast<int>(options_.devices.size());
  MESHTRAIN_ASSIGN_OR_RETURN(cross_device_ops_,
                             CreateCrossDeviceOps(options_.cross_device_ops, n, cross_worker(),
                                                  options_.abort, options_.devices));
  replicas_.resize(n);
  for (int i = 0; i < n; ++i) {
    ReplicaState& r = replicas_[i];
    MESHTRAIN_ASSIGN_OR_RETURN(r.replica, Replica::Create(i, options_.devices[i], specs_));
    r.store = std::make_unique<VariableStore>(r.replica->kernels(), *options_.optimizer);
    for (const VariableSpec& spec : specs_) MESHTRAIN_RETURN_IF_ERROR(r.store->Add(spec).status());
    // Every copy from the same seed: identical without a broadcast.
    MESHTRAIN_RETURN_IF_ERROR(r.store->Initialize(options_.seed));
    std::vector<Tensor> values;
    for (int v = 0; v < r.store->size(); ++v) values.push_back(r.store->entry(v).value);
    r.replica->BindValues(std::move(values));
    r.buckets =
        std::make_unique<GradientBuckets>(r.replica->layout(), specs_, options_.bytes_per_pack);
  }
  const bool combine = n > 1 || cross_worker() != nullptr;
  for (int i = 0; i < n; ++i) {
    ReplicaState& r = replicas_[i];
    if (!combine) continue;
    if (options_.overlap == GradientOverlap::kThread) {
      r.combiner = std::make_unique<BucketCombiner>(
          [this, i](int bucket) { return CombineBucket(i, bucket); });
      r.replica->SetGradientReadyCallback([&r](VariableId id) {
        const int bucket = r.buckets->MarkReady(id);
        if (bucket >= 0) r.combiner->Enqueue(bucket);
      });
    } else if (options_.overlap == GradientOverlap::kInline) {
      r.replica->SetGradientReadyCallback([this, &r, i](VariableId id) {
        const int bucket = r.buckets->MarkReady(id);
        if (bucket < 0) return;
        // After an error every later bucket fails at once, but each is still
        // attempted: the other replicas meet this one in every bucket.
        const absl::Time start = absl::Now();
        absl::Status status = CombineBucket(i, bucket);
        r.inline_time += absl::Now() - start;
        if (r.inline_status.ok()) r.inline_status = std::move(status);
      });
    }
  }
  for (int i = 0; combine && i < n; ++i) {
    replicas_[i].replica->SetSumOverReplicas(
        [this, i](Tensor& values) { return SumOverReplicas(i, values); });
  }
  pool_ = std::make_unique<ForkJoinPool>(n, ForkJoinPool::Options{.pin = true});
  return absl::OkStatus();
}

absl::Status MirroredStrategy::SumOverReplicas(int replica, Tensor& values) {
  ReplicaState& r = replicas_[replica];
  const absl::Time start = absl::Now();
  // The collective's calls must come in the same order on every replica: with
  // a combiner thread, the buckets handed to it so far go first.
  if (r.combiner != nullptr) {
    absl::Duration busy;
    absl::Status waited = r.combiner->WaitAll(&busy);
    r.early_combining += busy;
    MESHTRAIN_RETURN_IF_ERROR(waited);
  }
  TraceSpan trace(options_.tracer, "allreduce", "collective");
  trace.SetArg(0, "bytes", static_cast<int64_t>(values.bytes()));
  CollectiveContext ctx{step_, "layer statistics", absl::Now() + options_.collective_timeout,
                        /*exact=*/true};
  absl::Status status = cross_device_ops_->AllReduce(
      replica, absl::MakeSpan(values.data<float>(), values.num_elements()), ctx);
  r.inline_time += absl::Now() - start;
  return status;
}

absl::Status MirroredStrategy::CombineBucket(int replica, int bucket) {
  ReplicaState& r = replicas_[replica];
  const GradientBuckets::Bucket& b = r.buckets->buckets()[bucket];
  absl::Span<float> span = r.replica->flat_gradients().subspan(b.offset, b.size);
  if (options_.tracer != nullptr && !r.combiner_thread_named && r.combiner != nullptr) {
    options_.tracer->NameThread(absl::StrCat("combiner ", replica));
    r.combiner_thread_named = true;
  }
  TraceSpan trace(options_.tracer, "allreduce", "collective");
  trace.SetArg(0, "bucket", bucket);
  trace.SetArg(1, "bytes", static_cast<int64_t>(b.size * sizeof(float)));
  CollectiveContext ctx{step_, "gradients", absl::Now() + options_.collective_timeout};
  return cross_device_ops_->AllReduce(replica, span, ctx);
}

absl::Duration MirroredStrategy::Blocked(int replica) const {
  absl::Duration blocked = cross_device_ops_->blocked(replica);
  // Only replica 0 calls into the cross-worker communicator.
  if (replica == 0 && cross_worker() != nullptr) blocked += cross_worker()->stats().blocked;
  return blocked;
}

absl::Status MirroredStrategy::ReplicaStep(int i, const StepFn& step, const Batch& slice,
                                           float grad_scale) {
  ReplicaState& r = replicas_[i];
  if (options_.tracer != nullptr && !r.replica_thread_named && pool_->size() > 1) {
    options_.tracer->NameThread(absl::StrCat("replica ", i));
    r.replica_thread_named = true;
  }
  const absl::Time start = absl::Now();
  r.buckets->Reset();
  r.inline_status = absl::OkStatus();
  r.inline_time = absl::ZeroDuration();
  r.early_combining = absl::ZeroDuration();
  const absl::Duration blocked_before = Blocked(i);
  absl::StatusOr<LossStats> loss;
  {
    TraceSpan trace(options_.tracer, "forward_backward", "compute");
    loss = step(*r.replica, slice, grad_scale);
  }
  const absl::Time backward_done = absl::Now();
  // Even after a failed step every replica must take part in every bucket's
  // combine, or the others would wait for it until the deadline.
  const bool combine = replicas_.size() > 1 || cross_worker() != nullptr;
  absl::Status combined = r.inline_status;
  r.combining = r.inline_time;
  if (combine) {
    TraceSpan trace(options_.tracer, "gradient_sync", "exposed");
    if (r.combiner != nullptr) {
      for (int bucket : r.buckets->TakeIncomplete()) r.combiner->Enqueue(bucket);
      absl::Status waited = r.combiner->WaitAll(&r.combining);
      if (combined.ok()) combined = std::move(waited);
      r.combining += r.early_combining;
    } else {
      // kAfterBackward: every bucket; kInline: those backward did not finish.
      for (int b : r.buckets->TakeIncomplete()) {
        absl::Status status = CombineBucket(i, b);
        if (combined.ok()) combined = std::move(status);
      }
      r.combining += absl::Now() - backward_done;
    }
  }
  const absl::Time combine_done = absl::Now();
  MESHTRAIN_RETURN_IF_ERROR(loss.status());
  MESHTRAIN_RETURN_IF_ERROR(combined);
  {
    TraceSpan trace(options_.tracer, "apply", "compute");
    // A checkpoint copies replica 0's values of the step boundary.
    if (i == 0) snapshot_buffers_->WaitForCapture();
    for (int v = 0; v < static_cast<int>(specs_.size()); ++v) {
      r.store->Apply(v, r.replica->Gradient(v));
    }
    MESHTRAIN_RETURN_IF_ERROR(r.replica->kernels().Synchronize());
  }
  r.loss = *loss;
  // Combining done inside backward (kInline) is exposed too: the replica did
  // nothing else meanwhile.
  r.exposed = (combine_done - backward_done) + r.inline_time;
  r.wait = std::clamp(Blocked(i) - blocked_before, absl::ZeroDuration(), r.exposed);
  r.compute = (backward_done - start - r.inline_time) + (absl::Now() - combine_done);
  return absl::OkStatus();
}

absl::StatusOr<StepResult> MirroredStrategy::Run(const StepFn& step, const Batch& batch,
                                                 int64_t global_batch_size) {
  const int n = static_cast<int>(replicas_.size());
  const float grad_scale = 1.0f / static_cast<float>(global_batch_size);
  const std::vector<Batch> slices = SplitBatch(batch, n);
  const int64_t rows = batch.size();
  const TransportStats wire_before =
      cross_worker() != nullptr ? cross_worker()->stats() : TransportStats{};
  absl::Status status =
      pool_->Run([&](int i) { return ReplicaStep(i, step, slices[i], grad_scale); });
  ++step_;
  if (!status.ok()) return status;
  StepResult result;
  for (const ReplicaState& r : replicas_) {
    result.loss.loss_sum += r.loss.loss_sum;
    result.loss.correct += r.loss.correct;
  }
  result.examples = rows;
  const ReplicaState& lead = replicas_[0];
  result.timing.compute = lead.compute;
  result.timing.communicate = lead.exposed - lead.wait;
  result.timing.wait = lead.wait;
  result.timing.hidden = std::max(absl::ZeroDuration(), lead.combining - lead.exposed);
  if (cross_worker() != nullptr) {
    const TransportStats wire = cross_worker()->stats() - wire_before;
    result.timing.bytes_sent = wire.bytes_sent;
    result.timing.bytes_received = wire.bytes_received;
  }
  return result;
}

absl::Status MirroredStrategy::Read(const std::function<absl::Status(ReplicaContext&)>& fn) {
  return fn(*replicas_[0].replica);
}

absl::StatusOr<std::string> MirroredStrategy::ParameterChecksum() {
  return replicas_[0].store->Checksum();
}

void MirroredStrategy::Describe(nlohmann::json& summary) const {
  nlohmann::json devices = nlohmann::json::array();
  for (const Device& d : options_.devices) devices.push_back(d.ToString());
  summary["devices"] = devices;
  summary["num_replicas"] = num_replicas_in_sync();
  summary["replicas_per_worker"] = options_.devices.size();
  // What ran: "nccl" falls back to "on_device_reduce" on logical GPUs.
  summary["cross_device_ops"] =
      cross_device_ops_ ? std::string(cross_device_ops_->name()) : options_.cross_device_ops;
  summary["bytes_per_pack"] = options_.bytes_per_pack;
  summary["overlap"] = options_.overlap == GradientOverlap::kThread   ? "thread"
                       : options_.overlap == GradientOverlap::kInline ? "inline"
                                                                      : "off";
  summary["gradient_buckets"] = replicas_.empty() ? 0 : replicas_[0].buckets->buckets().size();
  if (cross_worker() != nullptr) {
    summary["communication"] = options_.cross_worker.description;
    summary["wire_dtype"] = WireDtypeName(options_.cross_worker.wire_dtype);
  }
  summary["checkpoint_update_wait_ms"] =
      absl::ToDoubleMilliseconds(snapshot_buffers_->total_wait());
}

// Every replica holds the same values (and every worker: the same sums were
// applied everywhere), so replica 0's copy is the checkpoint.
absl::StatusOr<std::unique_ptr<CheckpointJob>> MirroredStrategy::PrepareCheckpoint() {
  return snapshot_buffers_->Capture(*replicas_[0].store);
}

// Each replica restores the same bytes, so the copies stay bitwise identical.
absl::Status MirroredStrategy::Restore(const CheckpointReader& checkpoint) {
  snapshot_buffers_->WaitForCapture();
  for (ReplicaState& r : replicas_) MESHTRAIN_RETURN_IF_ERROR(RestoreStore(checkpoint, *r.store));
  return absl::OkStatus();
}

absl::Status MirroredStrategy::ShareState(int root) {
  Communicator* across = cross_worker();
  if (across == nullptr) return absl::OkStatus();
  snapshot_buffers_->WaitForCapture();
  // Host copies of replica 0's store travel in place; every replica of every
  // worker then takes them.
  MESHTRAIN_ASSIGN_OR_RETURN(CheckpointSnapshot state, SnapshotStore(*replicas_[0].store));
  const CollectiveContext ctx{step_, "state", absl::Now() + options_.collective_timeout};
  std::vector<int64_t> updates;
  for (SnapshotEntry& e : state.entries) {
    MESHTRAIN_RETURN_IF_ERROR(across->Broadcast(e.value.byte_span(), root, ctx));
    for (Tensor& slot : e.slots) {
      MESHTRAIN_RETURN_IF_ERROR(across->Broadcast(slot.byte_span(), root, ctx));
    }
    updates.push_back(e.updates);
  }
  MESHTRAIN_RETURN_IF_ERROR(
      across->Broadcast(absl::MakeSpan(reinterpret_cast<std::byte*>(updates.data()),
                                       updates.size() * sizeof(int64_t)),
                        root, ctx));
  for (size_t i = 0; i < updates.size(); ++i) state.entries[i].updates = updates[i];
  for (ReplicaState& r : replicas_)
    MESHTRAIN_RETURN_IF_ERROR(WriteSnapshotToStore(state, *r.store));
  return absl::OkStatus();
}

}  // namespace meshtrain

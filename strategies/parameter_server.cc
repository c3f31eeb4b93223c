#include "strategies/parameter_server.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/optim/optimizer.h"
#include "runtime/transport/wire_codec.h"

namespace meshtrain {

// The replica's context, except that embedding rows come from the ps tasks.
class ParameterServerStrategy::Context final : public ReplicaContext {
 public:
  Context(Replica& replica, PsClient& client) : replica_(replica), client_(client) {}

  int replica_id() const override { return replica_.replica_id(); }
  Kernels& kernels() override { return replica_.kernels(); }
  Workspace& workspace() override { return replica_.workspace(); }
  const Tensor& Value(VariableId id) override { return replica_.Value(id); }
  Tensor& Gradient(VariableId id) override { return replica_.Gradient(id); }
  void GradientReady(VariableId id) override { replica_.GradientReady(id); }
  absl::StatusOr<Tensor> ReadRows(VariableId id, const Tensor& ids) override {
    absl::StatusOr<Tensor> rows = client_.PullRows(id, ids);
    if (rows.ok()) rows_bytes_ += static_cast<int64_t>(rows->bytes());
    return rows;
  }
  // Bytes of rows pulled since the last call.
  int64_t TakeRowsBytes() { return std::exchange(rows_bytes_, 0); }
  void SetSparseGradient(VariableId id, Tensor ids, Tensor rows) override {
    replica_.SetSparseGradient(id, std::move(ids), std::move(rows));
  }
  // Workers step asynchronously: no other replica shares this step.
  absl::Status SumOverReplicas(Tensor& values) override { return replica_.SumOverReplicas(values); }

 private:
  Replica& replica_;
  PsClient& client_;
  int64_t rows_bytes_ = 0;
};

namespace {

// A checkpoint's parts written by the ps tasks themselves. Write runs on the
// saver's thread while the training thread keeps using the client: it calls
// only PsClient::SaveShards, which is safe from another thread. Borrows the
// client (the strategy outlives its saver's jobs).
class PsCheckpointJob final : public CheckpointJob {
 public:
  PsCheckpointJob(PsClient& client, std::vector<std::string> slot_names, int64_t bytes)
      : client_(client), slot_names_(std::move(slot_names)), bytes_(bytes) {}

  // `fs` is unused: every ps task writes its part with its own file system,
  // into `checkpoint_dir` as every task sees it (a shared MODEL_DIR).
  absl::StatusOr<std::vector<PartRecord>> Write(FileSystem& fs,
                                                const std::string& checkpoint_dir) override {
    return client_.SaveShards(checkpoint_dir);
  }
  const std::vector<std::string>& slot_names() const override { return slot_names_; }
  int64_t bytes() const override { return bytes_; }

 private:
  PsClient& client_;
  const std::vector<std::string> slot_names_;
  const int64_t bytes_;
};

// The ps tasks holding the plan's slots, in slot order ("ps:0").
std::vector<std::string> PsTaskNames(const PsPlan& plan) {
  std::vector<std::string> names;
  for (int task : plan.Tasks()) names.push_back(absl::StrCat("ps:", task));
  return names;
}

}  // namespace

ParameterServerStrategy::ParameterServerStrategy(Options options) : options_(std::move(options)) {}
ParameterServerStrategy::~ParameterServerStrategy() = default;

absl::StatusOr<std::unique_ptr<ParameterServerStrategy>> ParameterServerStrategy::Create(
    Options options) {
  if (!options.connect) {
    return absl::FailedPreconditionError(
        "parameter_server needs ps tasks: list them in TF_CONFIG's cluster, or run "
        "`meshtrain launch --ps N`");
  }
  if (!options.device.is_cpu()) {
    return absl::UnimplementedError(absl::StrCat(
        "parameter_server on ", options.device.ToString(),
        ": workers compute on the CPU in this build (pulled values are host tensors)"));
  }
  if (options.num_workers < 1 || options.worker_rank < 0 ||
      options.worker_rank >= options.num_workers) {
    return absl::InvalidArgumentError(absl::StrCat("parameter_server: worker rank ",
                                                   options.worker_rank, " of ", options.num_workers,
                                                   " workers"));
  }
  return std::unique_ptr<ParameterServerStrategy>(new ParameterServerStrategy(std::move(options)));
}

absl::StatusOr<VariableId> ParameterServerStrategy::CreateVariable(const VariableSpec& spec) {
  if (client_ != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("variable ", spec.name, " declared after the strategy was built"));
  }
  specs_.push_back(spec);
  return static_cast<VariableId>(specs_.size() - 1);
}

absl::Status ParameterServerStrategy::Build() {
  MESHTRAIN_ASSIGN_OR_RETURN(client_, options_.connect(specs_));
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Optimizer> optimizer,
                             Optimizer::Create(client_->plan().optimizer));
  slot_names_ = optimizer->slot_names();
  MESHTRAIN_ASSIGN_OR_RETURN(replica_, Replica::Create(0, options_.device, specs_));
  values_.resize(specs_.size());
  gradients_.resize(specs_.size());
  for (VariableId id = 0; id < static_cast<VariableId>(specs_.size()); ++id) {
    if (specs_[id].sparse) continue;
    values_[id] = Tensor(DType::kFloat32, specs_[id].shape);
    gradients_[id] = replica_->Gradient(id);
  }
  // What a step's dense push (and the values after it) moves: one message per
  // partition in the plan's wire dtype.
  const PsPlan& plan = client_->plan();
  for (const Partition& p : plan.placement.partitions()) {
    const VariableSpec& spec = plan.specs[p.variable];
    if (spec.sparse) continue;
    dense_bytes_ += static_cast<int64_t>(
        WireBytes(plan.wire_dtype, static_cast<size_t>(p.rows * spec.shape.row_elements())));
  }
  replica_->BindValues(values_);
  context_ = std::make_unique<Context>(*replica_, *client_);
  return client_->PullDense(absl::MakeSpan(values_));
}

absl::StatusOr<StepResult> ParameterServerStrategy::Run(const StepFn& step, const Batch& batch,
                                                        int64_t global_batch_size) {
  StepResult result;
  if (!waited_for_warmup_) {
    waited_for_warmup_ = true;
    if (options_.worker_rank != 0 && options_.warmup_steps > 0) {
      // The chief trains alone until its warm-up steps are applied.
      const absl::Time start = absl::Now();
      MESHTRAIN_RETURN_IF_ERROR(Annotate(
          client_->PullDense(absl::MakeSpan(values_), options_.warmup_steps),
          absl::StrCat("waiting for the chief's ", options_.warmup_steps, " warm-up steps")));
      result.timing.wait = absl::Now() - start;
      MESHTRAIN_LOG(INFO) << "parameter_server: waited "
                          << absl::StrFormat("%.2f", absl::ToDoubleSeconds(result.timing.wait))
                          << "s for the chief's " << options_.warmup_steps << " warm-up steps";
    }
  }
  const absl::Time start = absl::Now();
  context_->TakeRowsBytes();  // evaluation's rows are not this step's
  MESHTRAIN_ASSIGN_OR_RETURN(result.loss,
                             step(*context_, batch, 1.0f / static_cast<float>(global_batch_size)));
  const absl::Time computed = absl::Now();
  std::vector<SparseGradient> sparse;
  int64_t sparse_bytes = 0;
  for (VariableId id = 0; id < static_cast<VariableId>(specs_.size()); ++id) {
    if (!specs_[id].sparse) continue;
    Replica::SparseGradient& g = replica_->sparse_gradients()[id];
    sparse_bytes += static_cast<int64_t>(g.ids.bytes() + g.rows.bytes());
    sparse.push_back(SparseGradient{id, std::move(g.ids), std::move(g.rows)});
    g = Replica::SparseGradient{};
  }
  PushCounts counts;
  MESHTRAIN_RETURN_IF_ERROR(client_->Push(gradients_, sparse, absl::MakeSpan(values_), &counts));
  counts_.Merge(counts);
  ++steps_;
  result.examples = batch.size();
  result.applied = counts.dropped() == 0;
  result.timing.compute = computed - start;
  result.timing.communicate = absl::Now() - computed;
  result.timing.bytes_sent = dense_bytes_ + sparse_bytes;
  result.timing.bytes_received = dense_bytes_ + context_->TakeRowsBytes();
  return result;
}

absl::Status ParameterServerStrategy::Read(const std::function<absl::Status(ReplicaContext&)>& fn) {
  MESHTRAIN_RETURN_IF_ERROR(client_->PullDense(absl::MakeSpan(values_)));
  return fn(*context_);
}

absl::StatusOr<std::string> ParameterServerStrategy::ParameterChecksum() {
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<PsTaskStats> stats, client_->Stats());
  return absl::StrJoin(
      stats, "-", [](std::string* out, const PsTaskStats& s) { absl::StrAppend(out, s.checksum); });
}

absl::Status ParameterServerStrategy::Finish() {
  if (client_ == nullptr) return absl::OkStatus();
  MESHTRAIN_LOG(INFO) << "parameter_server: " << steps_ << " steps, " << counts_.pushes
                      << " gradients pushed, " << counts_.applied << " applied, "
                      << counts_.dropped_stale << " dropped as stale, " << counts_.dropped_warmup
                      << " dropped in warm-up, " << counts_.scaled
                      << " with a scaled learning rate, mean staleness "
                      << counts_.mean_staleness();
  MESHTRAIN_RETURN_IF_ERROR(client_->Leave());
  if (options_.worker_rank == 0) return AwaitOtherWorkers();
  return absl::OkStatus();
}

absl::Status ParameterServerStrategy::AwaitOtherWorkers() {
  constexpr absl::Duration kPoll = absl::Milliseconds(20);
  int64_t last_pushes = -1;
  absl::Time last_progress = absl::Now();
  bool logged = false;
  while (true) {
    MESHTRAIN_ASSIGN_OR_RETURN(std::vector<PsTaskStats> stats,
                               client_->Stats(/*with_checksum=*/false));
    int active = 0;
    int64_t pushes = 0;
    for (const PsTaskStats& s : stats) {
      active = std::max(active, s.stats.active_workers);
      pushes += s.stats.counts.pushes;
    }
    if (active == 0) return absl::OkStatus();
    const absl::Time now = absl::Now();
    if (pushes != last_pushes) {
      last_pushes = pushes;
      last_progress = now;
    } else if (now - last_progress > options_.finish_stall_timeout) {
      MESHTRAIN_LOG(WARNING) << "parameter_server: " << active
                             << " worker(s) still training but no "
                             << "gradient arrived for "
                             << absl::FormatDuration(options_.finish_stall_timeout)
                             << "; evaluating and checkpointing without them";
      return absl::OkStatus();
    }
    if (!logged) {
      MESHTRAIN_LOG(INFO) << "parameter_server: the chief's shard is done; waiting for " << active
                          << " worker(s) still training";
      logged = true;
    }
    absl::SleepFor(kPoll);
  }
}

absl::StatusOr<std::unique_ptr<CheckpointJob>> ParameterServerStrategy::PrepareCheckpoint() {
  if (client_ == nullptr) {
    return absl::FailedPreconditionError("parameter_server: checkpoint before Build()");
  }
  int64_t bytes = 0;
  for (const Partition& p : client_->plan().placement.partitions()) {
    bytes += p.bytes * static_cast<int64_t>(1 + slot_names_.size());
  }
  return std::unique_ptr<CheckpointJob>(new PsCheckpointJob(*client_, slot_names_, bytes));
}

absl::Status ParameterServerStrategy::Restore(const CheckpointReader& checkpoint) {
  if (client_ == nullptr) {
    return absl::FailedPreconditionError("parameter_server: restore before Build()");
  }
  if (options_.worker_rank == 0) {
    // The chief restores the ps tasks before it publishes the restore step, so
    // the others' pulls below read restored values.
    MESHTRAIN_RETURN_IF_ERROR(client_->RestoreShards(checkpoint.path()));
    const PsPlan& plan = client_->plan();
    if (checkpoint.manifest().num_ps != plan.placement.num_ps()) {
      // Elastic (docs/fault_tolerance.md 5.10), or a resume on another shape.
      MESHTRAIN_LOG(WARNING) << "parameter_server: the checkpoint of step " << checkpoint.step()
                             << " was written by " << checkpoint.manifest().num_ps
                             << " ps task(s); its partitions are restored onto "
                             << plan.placement.num_ps() << " ("
                             << absl::StrJoin(PsTaskNames(plan), ", ")
                             << "); every update applied after step " << checkpoint.step()
                             << " is lost";
    }
  } else {
    client_->ForgetVersions();
  }
  // The versions may be back below the warm-up: wait for it again (at once if not).
  waited_for_warmup_ = false;
  return Annotate(client_->PullDense(absl::MakeSpan(values_)),
                  absl::StrCat("pull after restoring ", checkpoint.path()));
}

void ParameterServerStrategy::Describe(nlohmann::json& summary) const {
  summary["num_replicas"] = options_.num_workers;
  summary["devices"] = {options_.device.ToString()};
  if (client_ == nullptr) return;
  const PsPlan& plan = client_->plan();
  summary["data_path"] = client_->data_path();
  summary["wire_dtype"] = WireDtypeName(plan.wire_dtype);
  summary["ps_bytes"] = plan.placement.ps_bytes();
  // This (the last) generation's ps tasks: an elastic cluster may have gone on
  // without some.
  summary["num_ps"] = plan.placement.num_ps();
  summary["ps_tasks"] = PsTaskNames(plan);
  nlohmann::json placement = nlohmann::json::object();
  for (int v = 0; v < static_cast<int>(plan.specs.size()); ++v) {
    nlohmann::json parts = nlohmann::json::array();
    for (const Partition& p : plan.placement.PartitionsOf(v)) {
      parts.push_back(
          {{"ps", plan.TaskOf(p.ps)}, {"rows", {p.row_begin, p.row_end()}}, {"bytes", p.bytes}});
    }
    placement[plan.specs[v].name] = parts;
  }
  summary["placement"] = placement;
  summary["update_rules"] = {{"max_staleness", plan.rules.max_staleness},
                             {"staleness_scaling", plan.rules.staleness_scaling},
                             {"warmup_steps", plan.rules.warmup_steps},
                             {"sync_replicas", plan.rules.sync_replicas}};
  auto counts_json = [](const PushCounts& c) {
    return nlohmann::json{{"pushes", c.pushes},
                          {"applied", c.applied},
                          {"dropped_stale", c.dropped_stale},
                          {"dropped_warmup", c.dropped_warmup},
                          {"scaled", c.scaled},
                          {"mean_staleness", c.mean_staleness()}};
  };
  summary["chief_pushes"] = counts_json(counts_);
  // The ps tasks count every worker's gradients; the chief writes the summary
  // after every worker finished, so these are final.
  absl::StatusOr<std::vector<PsTaskStats>> stats = client_->Stats();
  if (!stats.ok()) {
    summary["ps_stats_error"] = std::string(stats.status().message());
    return;
  }
  nlohmann::json per_ps = nlohmann::json::array();
  PushCounts total;
  for (const PsTaskStats& s : *stats) {
    nlohmann::json entry = counts_json(s.stats.counts);
    entry["value_bytes"] = s.stats.value_bytes;
    entry["slot_bytes"] = s.stats.slot_bytes;
    entry["partitions"] = s.stats.partitions;
    entry["checksum"] = s.checksum;
    per_ps.push_back(entry);
    total.Merge(s.stats.counts);
  }
  summary["ps_stats"] = per_ps;
  summary["pushes"] = counts_json(total);
}

}  // namespace meshtrain

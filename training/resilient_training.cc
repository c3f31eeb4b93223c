#include "training/resilient_training.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "runtime/base/logging.h"
#include "runtime/base/memory_file_system.h"
#include "runtime/base/status_macros.h"
#include "runtime/checkpoint/model_dir.h"
#include "runtime/rpc/coordination_service.h"
#include "training/checkpoint_saver.h"
#include "training/input_resume.h"
#include "training/step_agreement.h"

namespace meshtrain {
namespace {

// How long the chief waits for a worker's end-of-training report.
constexpr absl::Duration kReportWait = absl::Minutes(2);
// Workers that read at their own pace (RecoveryPolicy::independent_workers) publish
// their input position this often, under InputKey; the chief's checkpoints
// record it, and a worker that restarts alone resumes from there.
constexpr absl::Duration kPositionPublishPeriod = absl::Seconds(1);
// The chief tells its coordination service the median of its last
// kStepWindow step times every kStepReportEvery steps (the stuck rule's bound).
constexpr size_t kStepWindow = 31;
constexpr int64_t kStepReportEvery = 8;

// The median of the recent step times, for the stuck rule. Training thread only.
class StepTimeMedian {
 public:
  void Add(absl::Duration step) {
    if (window_.size() < kStepWindow) {
      window_.push_back(step);
    } else {
      window_[next_] = step;
    }
    next_ = (next_ + 1) % kStepWindow;
    ++added_;
  }
  // The median once a report is due (every kStepReportEvery steps), else nullopt.
  std::optional<absl::Duration> Due() const {
    if (added_ % kStepReportEvery != 0) return std::nullopt;
    std::vector<absl::Duration> sorted = window_;
    std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
    return sorted[sorted.size() / 2];
  }

 private:
  std::vector<absl::Duration> window_;
  size_t next_ = 0;
  int64_t added_ = 0;
};

std::string RestoreKey(int64_t generation) {
  return absl::StrCat("checkpoint/restore/g", generation);
}
std::string InputKey(const std::string& task) { return absl::StrCat("input/", task); }
// Elastic (5.9): what each member holds, and the donor's manifest.
std::string HeldKey(int64_t generation, const TaskId& task) {
  return absl::StrCat("elastic/g", generation, "/held/", task.ToString());
}
std::string DonorManifestKey(int64_t generation) {
  return absl::StrCat("elastic/g", generation, "/manifest");
}
// Where a worker keeps its state in memory (a MemoryFileSystem's model dir).
constexpr char kHeldDir[] = "/held";

// The state a failed life left at its last step boundary, as a checkpoint in memory.
struct HeldState {
  std::unique_ptr<MemoryFileSystem> fs;
  int64_t step = 0;
  std::string checksum;  // the strategy's ParameterChecksum
};

// What one member of an elastic generation holds ("none", or "STEP CHECKSUM").
struct MemberHold {
  TaskId task;
  std::optional<int64_t> step;
  std::string checksum;
};

std::string Describe(const std::vector<MemberHold>& holds) {
  std::vector<std::string> described;
  for (const MemberHold& h : holds) {
    described.push_back(h.step.has_value()
                            ? absl::StrCat(h.task.ToString(), " step ", *h.step, " ", h.checksum)
                            : absl::StrCat(h.task.ToString(), " none"));
  }
  return absl::StrJoin(described, ", ");
}

// Every member's hold of `generation` (5.9, step 5), in `workers` order,
// waiting for each until `deadline`.
absl::StatusOr<std::vector<MemberHold>> ReadHolds(Mesh& mesh, const std::vector<TaskId>& workers,
                                                  int64_t generation, absl::Time deadline) {
  std::vector<MemberHold> holds;
  for (const TaskId& t : workers) {
    MESHTRAIN_ASSIGN_OR_RETURN(std::string text,
                               mesh.coordination().KvGet(HeldKey(generation, t), deadline));
    MemberHold h{t, std::nullopt, ""};
    std::vector<std::string> parts = absl::StrSplit(text, ' ');
    int64_t step = 0;
    if (parts.size() == 2 && absl::SimpleAtoi(parts[0], &step)) {
      h.step = step;
      h.checksum = parts[1];
    }
    holds.push_back(std::move(h));
  }
  return holds;
}

// The donor every member picks alike: the first in rank order of those
// holding the newest step. Nullopt, and the latest checkpoint on disk for
// everyone, when nobody holds a state or holders of that step disagree
// (equal steps of a synchronous strategy must mean equal parameters).
std::optional<int> ChooseDonor(const std::vector<MemberHold>& holds) {
  int donor = -1;
  for (size_t i = 0; i < holds.size(); ++i) {
    if (holds[i].step.has_value() && (donor < 0 || *holds[i].step > *holds[donor].step)) {
      donor = static_cast<int>(i);
    }
  }
  if (donor < 0) {
    MESHTRAIN_LOG(WARNING) << "elastic: no member holds a state (" << Describe(holds)
                           << "); restoring the latest checkpoint";
    return std::nullopt;
  }
  for (const MemberHold& h : holds) {
    if (h.step == holds[donor].step && h.checksum != holds[donor].checksum) {
      MESHTRAIN_LOG(ERROR) << "elastic: members hold different parameters at step "
                           << *holds[donor].step << " (" << Describe(holds)
                           << "); restoring the latest checkpoint instead";
      return std::nullopt;
    }
  }
  return donor;
}

// Resuming on a full disk: the restore worked, but the next save will not
// fit. Says so up front, with what to free, instead of at the first save.
void WarnIfNoRoomForCheckpoint(FileSystem& fs, const std::string& model_dir,
                               const Manifest& restored) {
  int64_t needed_bytes = 0;
  for (const FileRecord& f : restored.files) needed_bytes += f.bytes;
  const absl::StatusOr<int64_t> free_bytes = fs.AvailableBytes(model_dir);
  if (!free_bytes.ok() || *free_bytes >= needed_bytes) return;
  MESHTRAIN_LOG(WARNING) << "restore: " << model_dir << " has " << *free_bytes
                         << " bytes free but a checkpoint needs about " << needed_bytes
                         << ": free at least " << needed_bytes - *free_bytes
                         << " bytes there (older checkpoints, event files, other data) or point "
                            "--model-dir elsewhere; training goes on and saves are retried";
}

// The final save's error that ends the task now. A full disk is not one:
// training is done and its results are worth reporting, so it goes to `run`
// and the caller writes what it can, then exits non-zero with it
// (docs/fault_tolerance.md, 3.1).
absl::Status KeepFinalCheckpointStatus(absl::Status final_saved, ResilientRun& run) {
  if (!absl::IsResourceExhausted(final_saved)) return final_saved;
  MESHTRAIN_LOG(ERROR) << "final " << final_saved.message();
  run.final_checkpoint = std::move(final_saved);
  return absl::OkStatus();
}

// How many corrupt checkpoints an all-corrupt error names before "and N more".
constexpr size_t kMaxProblemsNamed = 5;

// An error that no restart can fix: a bad config, flag or input (never a
// consequence of another task's failure, which arrives as kAborted).
bool IsConfigurationError(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument;
}

double UnixSeconds(absl::Time t) { return absl::ToDoubleSeconds(t - absl::UnixEpoch()); }

// One recovery, as summary.json reports it.
struct RecoveryRecord {
  int64_t generation = 0;
  std::string cause;
  int64_t failed_at_step = -1;  // the last step this task completed before it (-1: unknown)
  absl::Time last_step_end = absl::InfinitePast();
  absl::Time detected;  // when this task's life failed (or, for a restarted chief, its start)
  std::optional<int64_t> restored_from_step;
  absl::Time resumed;   // the first step completed after the restore
  int64_t workers = 0;  // training workers of the generation it resumed with

  // A worker behind the state it resumed from (elastic, 5.9) lost nothing.
  int64_t StepsLost() const {
    return std::max<int64_t>(0, failed_at_step - restored_from_step.value_or(0));
  }

  nlohmann::json ToJson() const {
    nlohmann::json j = {{"generation", generation},
                        {"cause", cause},
                        {"detected_unix", UnixSeconds(detected)},
                        {"resumed_unix", UnixSeconds(resumed)},
                        {"recovery_seconds", absl::ToDoubleSeconds(resumed - detected)}};
    j["failed_at_step"] = failed_at_step >= 0 ? nlohmann::json(failed_at_step) : nlohmann::json();
    j["restored_from_step"] =
        restored_from_step ? nlohmann::json(*restored_from_step) : nlohmann::json();
    j["steps_lost"] = failed_at_step >= 0 ? nlohmann::json(StepsLost()) : nlohmann::json();
    j["workers"] = workers;
    // From the end of the last good step to the error: an upper bound on how
    // long the failure went unnoticed (it happened within the step after).
    j["detection_seconds"] = last_step_end != absl::InfinitePast()
                                 ? nlohmann::json(absl::ToDoubleSeconds(detected - last_step_end))
                                 : nlohmann::json();
    return j;
  }
};

class Session {
 public:
  Session(const TrainingTask& task, const ResilienceOptions& options)
      : task_(task),
        options_(options),
        fs_(options.fs != nullptr ? *options.fs : DefaultFileSystem()),
        chief_(task.cluster->is_chief()),
        me_(task.cluster->task.ToString()),
        process_start_(task.process_start) {}

  absl::StatusOr<ResilientRun> Run();

 private:
  class Observer;

  absl::Status Build(int64_t generation, TrainingLife& life);
  // The newest checkpoint that verifies, of at most `max_step` steps (-1:
  // any); corrupt ones are named and skipped. Null when there is none;
  // DataLoss naming them when there are checkpoints but every one is corrupt,
  // since starting over silently would throw the run's work away.
  absl::StatusOr<std::unique_ptr<CheckpointReader>> OpenLatest(int64_t max_step = -1);
  // The chief's choice: OpenLatest, or (--restore none) nothing at first and
  // then only what this run saved.
  absl::StatusOr<std::unique_ptr<CheckpointReader>> ChooseCheckpoint();
  absl::StatusOr<InputResume> Restore(int64_t generation, Strategy& strategy);
  // Where this task resumes after restoring `m` (read from `source`); a
  // checkpoint on disk also carries the chief's recovery history.
  absl::StatusOr<InputResume> Resume(const Manifest& m, const Strategy& strategy,
                                     absl::string_view source, bool from_disk);
  // Elastic (5.9): keeps the failed life's state in memory as a checkpoint,
  // if the life got as far as a valid state.
  void HoldState(Strategy& strategy, InputPosition next);
  // Elastic (5.9): every member of `generation` resumes from the most
  // advanced state a member holds, shared over the data path. Nullopt when no
  // member holds one (the disk's checkpoint then).
  absl::StatusOr<std::optional<InputResume>> RestoreHeld(int64_t generation, Strategy& strategy);
  // This life's global batch (global_batch_) and, when it differs from the
  // job's (elastic, keep per_replica_batch), an optimizer with the learning
  // rate scaled by the same factor; null: the task's optimizer.
  absl::StatusOr<std::unique_ptr<Optimizer>> LifeOptimizer();
  // The checkpoint saver's options for this life: the chief's (on the model
  // directory) or the one that keeps a held state (in memory).
  CheckpointSaverOptions SaverOptions(const Strategy& strategy, const std::string& model_dir,
                                      FileSystem* fs);
  // This life's input shards and batching (input_resume.h).
  InputShape ShapeOf(const Strategy& strategy) const;
  // The chief's save hook: every shard's position and the global position.
  absl::Status RecordInput(bool independent, Manifest& m) const;
  absl::Status Live(int64_t generation, ResilientRun& run);
  absl::Status CheckPreemption(int64_t step, InputPosition next, CheckpointSaver* saver);
  // An independent worker's position, published at most every kPositionPublishPeriod.
  absl::Status PublishPosition(InputPosition next, bool now);
  // The chief's view of the independent workers' positions (the saver's own_positions).
  std::map<std::string, InputRecord> WorkerPositions() const;
  bool CanRecover(const absl::Status& status) const;
  // The chief: feeds the stuck rule the median step time (zero: training stopped).
  void ReportStepTime(absl::Duration step);
  void StopStuckRule();
  void Resumed(absl::Time at);
  int64_t Restarts() const;
  nlohmann::json Meta() const;
  nlohmann::json FaultTolerance() const;
  void SetInterrupt(bool waiting) {
    if (options_.preemption != nullptr)
      options_.preemption->InterruptWaits(waiting ? task_.abort : nullptr);
  }

  const TrainingTask& task_;
  const ResilienceOptions& options_;
  FileSystem& fs_;
  const bool chief_;
  const std::string me_;
  const absl::Time process_start_;

  // Across lives.
  int64_t last_step_ = -1;
  absl::Time last_step_end_ = absl::InfinitePast();
  std::map<int64_t, EpochRecord> history_;
  std::optional<RecoveryRecord> recovering_;  // until the next life's first step
  nlohmann::json recoveries_ = nlohmann::json::array();
  int64_t restarts_base_ = 0;  // from the checkpoint this process first restored
  bool first_restore_ = true;
  std::optional<int64_t> restored_from_step_;
  bool restored_final_ = false;
  std::optional<PreemptionCheckpointRequest> preempt_request_;  // a preempted worker's, once asked
  bool publish_position_ = false;  // this life's strategy has independent workers, not the chief
  absl::Time last_publish_ = absl::InfinitePast();
  std::optional<CheckpointStats> checkpoint_stats_;
  // This life's input: its shape, the examples its schedule leaves out, and
  // where each task started (the chief's record of a worker not yet heard from).
  InputShape shape_;
  std::shared_ptr<const GlobalInputPosition> base_;
  std::map<std::string, InputPosition> life_start_;
  int64_t saved_up_to_ = -1;   // the newest step this process's savers committed
  StepTimeMedian step_times_;  // this life's
  bool stuck_rule_logged_ = false;
  // This life's training workers (Mesh::TrainingMembers) and its state: valid
  // once restored, at step boundary_step_ (the global step last completed).
  std::vector<TaskId> workers_;
  bool state_valid_ = false;
  int64_t boundary_step_ = 0;
  std::optional<HeldState> held_;  // elastic: the state the last failed life left
  int64_t global_batch_ = 0;       // this life's (LifeOptimizer)
};

// The loop's hooks for one life: progress across lives, checkpoints,
// preemption at step boundaries.
class Session::Observer final : public TrainingObserver {
 public:
  Observer(Session& session, CheckpointSaver* saver, InputPosition start)
      : session_(session), saver_(saver), next_(start) {}

  absl::Status OnStepEnd(const StepRecord& step) override {
    session_.last_step_ = step.global_step;
    session_.boundary_step_ = step.global_step;
    session_.last_step_end_ = step.end;
    next_ = step.next;
    if (session_.recovering_.has_value()) session_.Resumed(step.end);
    session_.ReportStepTime(step.end - step.start);
    if (saver_ != nullptr) MESHTRAIN_RETURN_IF_ERROR(saver_->OnStepEnd(step));
    MESHTRAIN_RETURN_IF_ERROR(session_.PublishPosition(step.next, /*now=*/false));
    return session_.CheckPreemption(step.global_step, step.next, saver_);
  }

  absl::Status OnEpochEnd(const EpochRecord& epoch) override {
    session_.history_[epoch.epoch] = epoch;
    return absl::OkStatus();
  }

  // A worker on its own stream publishes where it ended before it tells the
  // ps it is done: the chief's final checkpoint records it.
  absl::Status OnTrainingEnd(InputPosition next) override {
    return session_.PublishPosition(next, /*now=*/true);
  }

  InputPosition next() const { return next_; }

 private:
  Session& session_;
  CheckpointSaver* saver_;
  InputPosition next_;
};

absl::Status Session::Build(int64_t generation, TrainingLife& life) {
  StrategyContext context;
  context.cluster = task_.cluster;
  context.mesh = task_.mesh;
  context.generation = generation;
  context.optimizer = life.optimizer != nullptr ? life.optimizer.get() : task_.optimizer;
  context.seed = task_.job->training.seed;
  context.threads = task_.threads;
  context.abort = task_.abort;
  context.tracer = task_.tracer;
  context.rpc_layer = task_.rpc_layer;
  context.startup_timeout = options_.startup_timeout;
  context.workers = workers_;
  MESHTRAIN_ASSIGN_OR_RETURN(life.strategy, task_.strategies->Build(context));
  MESHTRAIN_ASSIGN_OR_RETURN(life.model,
                             CreateModel(task_.job->model, task_.data->shape, *life.strategy));
  return life.strategy->Build();
}

absl::StatusOr<std::unique_ptr<CheckpointReader>> Session::OpenLatest(int64_t max_step) {
  MESHTRAIN_ASSIGN_OR_RETURN(LatestCheckpoint latest,
                             FindLatestCheckpoint(fs_, options_.model_dir, max_step));
  if (latest.reader == nullptr && !latest.skipped.empty()) {
    std::vector<std::string> problems;
    for (const absl::Status& skipped : latest.skipped) {
      if (problems.size() == kMaxProblemsNamed) {
        problems.push_back(
            absl::StrCat("and ", latest.skipped.size() - kMaxProblemsNamed, " more corrupt"));
        break;
      }
      problems.push_back(std::string(skipped.message()));
    }
    return absl::DataLossError(
        absl::StrCat("restore: every checkpoint in ", options_.model_dir, " is corrupt (",
                     absl::StrJoin(problems, "; "),
                     "); refusing to start over silently: move them out of the directory, or pass "
                     "--restore none to train from the initial values"));
  }
  for (const absl::Status& skipped : latest.skipped) {
    MESHTRAIN_LOG(ERROR) << "restore: " << skipped.message() << "; trying an older checkpoint";
  }
  return std::move(latest.reader);
}

absl::StatusOr<std::unique_ptr<CheckpointReader>> Session::ChooseCheckpoint() {
  if (options_.restore_existing) return OpenLatest();
  if (saved_up_to_ >= 0) return OpenLatest(saved_up_to_);
  if (first_restore_) {
    MESHTRAIN_LOG(INFO) << "restore: --restore none: training starts from the initial values; "
                           "checkpoints already in "
                        << options_.model_dir << " are not restored";
  }
  return std::unique_ptr<CheckpointReader>();
}

InputShape Session::ShapeOf(const Strategy& strategy) const {
  const TrainingOptions& t = task_.training;
  InputShape shape{.own_files = t.own_files.has_value(),
                   .global_batch_size = global_batch_,
                   .num_examples = task_.data->train.size(),
                   .seed = t.seed,
                   .shuffle = t.shuffle,
                   .drop_remainder = t.drop_remainder};
  const int shards = strategy.input_shard().num_shards;
  if (static_cast<int>(workers_.size()) == shards) {
    for (const TaskId& w : workers_) shape.tasks.push_back(w.ToString());
  } else if (shards == 1) {
    shape.tasks.push_back(me_);
  } else {
    for (int i = 0; i < shards; ++i) shape.tasks.push_back(absl::StrCat("shard:", i));
  }
  return shape;
}

absl::Status Session::RecordInput(bool independent, Manifest& m) const {
  std::map<std::string, InputRecord> published;
  if (independent) published = WorkerPositions();
  std::vector<InputPosition> next;
  for (const std::string& task : shape_.tasks) {
    InputPosition p{m.input.epoch, m.input.step};
    if (independent && task != me_) {
      // A worker not heard from in this life is where it started.
      auto it = published.find(task);
      if (it != published.end()) {
        p = {it->second.epoch, it->second.step};
      } else {
        auto s = life_start_.find(task);
        p = s != life_start_.end() ? s->second : InputPosition{};  // none: a fresh start
        m.task_inputs[task] = {p.epoch, p.step};
      }
    }
    next.push_back(p);
  }
  return RecordInputPositions(shape_, base_, next, m);
}

absl::StatusOr<InputResume> Session::Restore(int64_t generation, Strategy& strategy) {
  Mesh* mesh = task_.mesh;
  if (options_.elastic && mesh != nullptr && generation > 0 &&
      strategy.recovery_policy().replicated_state) {
    MESHTRAIN_ASSIGN_OR_RETURN(std::optional<InputResume> held, RestoreHeld(generation, strategy));
    if (held.has_value()) return std::move(*held);
  }
  if (options_.model_dir.empty()) return InputResume{};
  std::unique_ptr<CheckpointReader> reader;
  if (chief_) {
    MESHTRAIN_ASSIGN_OR_RETURN(reader, ChooseCheckpoint());
    // Restored before it is published: with independent workers the
    // variables live on the ps tasks, and no worker may push before they
    // hold the checkpoint's values.
    if (reader != nullptr) MESHTRAIN_RETURN_IF_ERROR(strategy.Restore(*reader));
    if (mesh != nullptr) {
      MESHTRAIN_RETURN_IF_ERROR(mesh->coordination().KvSet(
          RestoreKey(generation), reader != nullptr ? absl::StrCat(reader->step()) : "none"));
    }
  } else if (mesh != nullptr) {
    MESHTRAIN_ASSIGN_OR_RETURN(
        std::string chosen,
        mesh->coordination().KvGet(RestoreKey(generation), absl::Now() + options_.startup_timeout));
    if (strategy.recovery_policy().independent_workers) {
      // The chief has restored the variables (waiting for its key ensures
      // it); only the input position is this worker's to restore, from the
      // newest checkpoint: when it restarted alone, a newer one than the
      // chief restored at the generation's start records where it was.
      if (options_.restore_existing || chosen != "none") {
        MESHTRAIN_ASSIGN_OR_RETURN(reader, OpenLatest());
      }
    } else if (chosen != "none") {
      int64_t step = 0;
      if (!absl::SimpleAtoi(chosen, &step)) {
        return absl::InternalError(
            absl::StrCat("restore: the chief published step '", chosen, "'"));
      }
      absl::StatusOr<std::unique_ptr<CheckpointReader>> opened =
          OpenCheckpoint(fs_, options_.model_dir, step);
      if (!opened.ok()) {
        return Annotate(
            opened.status(),
            absl::StrCat("restore on ", me_, ": the chief restored ", CheckpointDirName(step),
                         " but this task cannot read it (is --model-dir on a file "
                         "system every task shares?)"));
      }
      reader = std::move(*opened);
    }
    if (reader != nullptr) MESHTRAIN_RETURN_IF_ERROR(strategy.Restore(*reader));
  }
  if (recovering_.has_value())
    recovering_->restored_from_step = reader ? std::optional<int64_t>(reader->step()) : 0;
  if (reader == nullptr) {
    MESHTRAIN_LOG(INFO) << "restore: no checkpoint in " << options_.model_dir
                        << "; training starts from the initial values";
    restored_from_step_.reset();
    restored_final_ = false;
    first_restore_ = false;
    return InputResume{};
  }
  return Resume(reader->manifest(), strategy, reader->path(), /*from_disk=*/true);
}

absl::StatusOr<InputResume> Session::Resume(const Manifest& m, const Strategy& strategy,
                                            absl::string_view source, bool from_disk) {
  const bool independent = strategy.recovery_policy().independent_workers;
  MESHTRAIN_ASSIGN_OR_RETURN(InputResume resume, PlanInputResume(m, shape_, me_, independent));
  if (chief_) {
    for (const std::string& task : shape_.tasks) {
      MESHTRAIN_ASSIGN_OR_RETURN(InputResume theirs, PlanInputResume(m, shape_, task, independent));
      life_start_[task] = theirs.start;
    }
  }
  if (chief_ && first_restore_ && from_disk) {
    // The history this process does not remember: the checkpoint's.
    if (m.meta.contains("restarts") && m.meta["restarts"].is_number_integer()) {
      restarts_base_ = m.meta["restarts"].get<int64_t>();
    }
    if (m.meta.contains("recoveries") && m.meta["recoveries"].is_array())
      recoveries_ = m.meta["recoveries"];
  }
  first_restore_ = false;
  restored_from_step_ = m.step;
  restored_final_ = m.final;
  MESHTRAIN_LOG(INFO) << "restore: " << source << " (step " << m.step << "; " << resume.summary
                      << ")";
  if (chief_ && from_disk) WarnIfNoRoomForCheckpoint(fs_, options_.model_dir, m);
  return resume;
}

absl::Status Session::PublishPosition(InputPosition next, bool now) {
  if (!publish_position_) return absl::OkStatus();
  const absl::Time t = absl::Now();
  if (!now && t - last_publish_ < kPositionPublishPeriod) return absl::OkStatus();
  last_publish_ = t;
  return task_.mesh->coordination().KvSet(InputKey(me_), absl::StrCat(next.epoch, " ", next.step));
}

std::map<std::string, InputRecord> Session::WorkerPositions() const {
  std::map<std::string, InputRecord> positions;
  CoordinationService* service =
      task_.mesh != nullptr ? task_.mesh->coordination_service() : nullptr;
  if (service == nullptr) return positions;
  for (const TaskId& t : task_.cluster->cluster.TrainingWorkers()) {
    if (t.ToString() == me_) continue;
    std::optional<std::string> text = service->KvPeek(InputKey(t.ToString()));
    InputRecord r;
    std::vector<absl::string_view> parts;
    if (text.has_value()) parts = absl::StrSplit(*text, ' ');
    if (parts.size() == 2 && absl::SimpleAtoi(parts[0], &r.epoch) &&
        absl::SimpleAtoi(parts[1], &r.step)) {
      positions[t.ToString()] = r;
    }
  }
  return positions;
}

absl::Status Session::CheckPreemption(int64_t step, InputPosition next, CheckpointSaver* saver) {
  const bool local = options_.preemption != nullptr && options_.preemption->requested();
  Mesh* mesh = task_.mesh;
  if (chief_) {
    std::optional<std::string> remote;
    if (mesh != nullptr && mesh->coordination_service() != nullptr) {
      remote = mesh->coordination_service()->KvPeek(kPreemptRequestKey);
    }
    if (!local && !remote.has_value()) return absl::OkStatus();
    if (saver != nullptr) MESHTRAIN_RETURN_IF_ERROR(saver->SaveNow(step, next, false));
    if (mesh != nullptr) {
      MESHTRAIN_RETURN_IF_ERROR(mesh->coordination().KvSet(kPreemptSavedKey, absl::StrCat(step)));
      if (remote.has_value()) {
        MESHTRAIN_RETURN_IF_ERROR(mesh->coordination().KvDelete(kPreemptRequestKey));
        MESHTRAIN_LOG(WARNING) << "preemption: " << *remote << " is being preempted; "
                               << (saver != nullptr
                                       ? absl::StrCat(CheckpointDirName(step), " written")
                                       : std::string("no --model-dir, nothing saved"));
      }
    }
    if (!local) return absl::OkStatus();
    return PreemptedError(absl::StrCat(me_, " preempted (SIGTERM) at step ", step, "; ",
                                       saver != nullptr
                                           ? absl::StrCat(CheckpointDirName(step), " written")
                                           : "no --model-dir, nothing saved"));
  }
  if (!local || mesh == nullptr) return absl::OkStatus();
  // A worker asks the chief to checkpoint and goes on stepping (the chief
  // needs it in the collectives to reach a step boundary) until it is done.
  if (!preempt_request_.has_value()) preempt_request_.emplace(mesh->coordination(), me_);
  return preempt_request_->Poll(absl::StrCat("at step ", step));
}

void Session::Resumed(absl::Time at) {
  RecoveryRecord& r = *recovering_;
  r.resumed = at;
  MESHTRAIN_LOG(WARNING)
      << "recovery: " << me_ << " resumed training at step " << last_step_ << ", "
      << absl::StrFormat("%.2f", absl::ToDoubleSeconds(at - r.detected))
      << "s after the error (restored step " << r.restored_from_step.value_or(0)
      << (r.failed_at_step >= 0 ? absl::StrCat(", ", r.StepsLost(), " steps lost") : std::string())
      << (r.workers > 0 ? absl::StrCat(", ", r.workers, " training workers") : std::string())
      << ")";
  if (chief_) recoveries_.push_back(r.ToJson());
  recovering_.reset();
}

int64_t Session::Restarts() const {
  int64_t restarts = restarts_base_;
  CoordinationService* service =
      task_.mesh != nullptr ? task_.mesh->coordination_service() : nullptr;
  if (service != nullptr) {
    restarts += static_cast<int64_t>(service->incarnation_changes().size());
    if (service->resumed()) ++restarts;  // this chief is itself a restart
  }
  return restarts;
}

nlohmann::json Session::Meta() const {
  return {{"restarts", Restarts()}, {"recoveries", recoveries_}};
}

nlohmann::json Session::FaultTolerance() const {
  nlohmann::json j;
  j["restarts"] = Restarts();
  j["restored_from_step"] =
      restored_from_step_ ? nlohmann::json(*restored_from_step_) : nlohmann::json();
  j["recoveries"] = recoveries_;
  // The latest recovery's figures, at the top for quick reading.
  j["detection_seconds"] = nlohmann::json();
  j["recovery_seconds"] = nlohmann::json();
  if (!recoveries_.empty()) {
    j["detection_seconds"] = recoveries_.back()["detection_seconds"];
    j["recovery_seconds"] = recoveries_.back()["recovery_seconds"];
  }
  if (checkpoint_stats_.has_value()) j["checkpoints"] = checkpoint_stats_->ToJson();
  return j;
}

CheckpointSaverOptions Session::SaverOptions(const Strategy& strategy, const std::string& model_dir,
                                             FileSystem* fs) {
  const bool independent = strategy.recovery_policy().independent_workers;
  CheckpointSaverOptions so;
  so.model_dir = model_dir;
  so.fs = fs;
  const ClusterSpec& cluster = task_.cluster->cluster;
  so.base.seed = task_.job->training.seed;
  so.base.strategy = strategy.name();
  so.base.num_workers = static_cast<int>(workers_.size());
  // This generation's ps tasks: an elastic cluster may have gone on without some.
  so.base.num_ps = task_.mesh != nullptr ? static_cast<int>(task_.mesh->PsMembers().size())
                                         : cluster.num_tasks(kPsJob);
  so.base.replicas_in_sync = strategy.num_replicas_in_sync();
  so.base.optimizer = task_.job->optimizer.type;
  for (const TaskId& t : workers_) so.tasks.push_back(t.ToString());
  if (so.tasks.empty()) so.tasks.push_back(me_);
  so.meta = [this] { return Meta(); };
  if (independent) so.own_positions = [this] { return WorkerPositions(); };
  so.input_positions = [this, independent](Manifest& m) { return RecordInput(independent, m); };
  return so;
}

void Session::HoldState(Strategy& strategy, InputPosition next) {
  if (!options_.elastic || !state_valid_ || !strategy.recovery_policy().replicated_state) return;
  auto fs = std::make_unique<MemoryFileSystem>();
  const absl::Time start = absl::Now();
  absl::Status held = [&]() -> absl::Status {
    CheckpointSaver saver(strategy, SaverOptions(strategy, kHeldDir, fs.get()));
    return saver.SaveNow(boundary_step_, next, /*final=*/false);
  }();
  absl::StatusOr<std::string> checksum = strategy.ParameterChecksum();
  if (held.ok()) held = checksum.status();
  if (!held.ok()) {
    MESHTRAIN_LOG(WARNING) << "elastic: could not keep the state of step " << boundary_step_
                           << " in memory (" << held << "); this worker holds none";
    return;
  }
  MESHTRAIN_LOG(INFO) << "elastic: holding the state of step " << boundary_step_ << " in memory ("
                      << fs->bytes() << " bytes, checksum " << *checksum << ", "
                      << absl::FormatDuration(
                             absl::Trunc(absl::Now() - start, absl::Microseconds(100)))
                      << ")";
  held_ = HeldState{std::move(fs), boundary_step_, *checksum};
}

absl::StatusOr<std::optional<InputResume>> Session::RestoreHeld(int64_t generation,
                                                                Strategy& strategy) {
  Mesh& mesh = *task_.mesh;
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + options_.startup_timeout;
  const TaskId me = task_.cluster->task;
  MESHTRAIN_RETURN_IF_ERROR(mesh.coordination().KvSet(
      HeldKey(generation, me),
      held_.has_value() ? absl::StrCat(held_->step, " ", held_->checksum) : "none"));
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<MemberHold> holds,
                             ReadHolds(mesh, workers_, generation, deadline));
  const std::optional<int> donor = ChooseDonor(holds);
  if (!donor.has_value()) return std::optional<InputResume>();
  const MemberHold& from = holds[*donor];
  Manifest manifest;
  if (from.task == me) {
    MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointReader> reader,
                               OpenCheckpoint(*held_->fs, kHeldDir, held_->step));
    MESHTRAIN_RETURN_IF_ERROR(strategy.Restore(*reader));
    manifest = reader->manifest();
    MESHTRAIN_RETURN_IF_ERROR(
        mesh.coordination().KvSet(DonorManifestKey(generation), ManifestToJson(manifest)));
  }
  MESHTRAIN_RETURN_IF_ERROR(strategy.ShareState(*donor));
  if (from.task != me) {
    MESHTRAIN_ASSIGN_OR_RETURN(std::string text,
                               mesh.coordination().KvGet(DonorManifestKey(generation), deadline));
    MESHTRAIN_ASSIGN_OR_RETURN(manifest, ParseManifest(text, DonorManifestKey(generation)));
  }
  MESHTRAIN_ASSIGN_OR_RETURN(std::string checksum, strategy.ParameterChecksum());
  if (checksum != from.checksum) {
    return absl::InternalError(absl::StrCat("elastic: after sharing ", from.task.ToString(),
                                            "'s state this worker's parameters have checksum ",
                                            checksum, ", not ", from.checksum));
  }
  MESHTRAIN_LOG(WARNING) << "elastic: generation " << generation << " trains on " << workers_.size()
                         << " worker(s) from " << from.task.ToString() << "'s state of step "
                         << *from.step << " (held: " << Describe(holds)
                         << "; shared over the data path in "
                         << absl::FormatDuration(
                                absl::Trunc(absl::Now() - start, absl::Microseconds(100)))
                         << ")";
  if (recovering_.has_value()) recovering_->restored_from_step = manifest.step;
  MESHTRAIN_ASSIGN_OR_RETURN(
      InputResume resume,
      Resume(manifest, strategy, absl::StrCat(from.task.ToString(), "'s state in memory"),
             /*from_disk=*/false));
  return std::optional<InputResume>(std::move(resume));
}

absl::StatusOr<std::unique_ptr<Optimizer>> Session::LifeOptimizer() {
  const int64_t g = task_.training.global_batch_size;
  const int64_t all = task_.cluster->cluster.num_training_workers();
  const int64_t members = static_cast<int64_t>(workers_.size());
  global_batch_ = g;
  if (!options_.keep_per_replica_batch || members >= all || all == 0) return nullptr;
  global_batch_ = std::max<int64_t>(members, g * members / all);
  OptimizerConfig config = task_.optimizer->config();
  const float scale = static_cast<float>(global_batch_) / static_cast<float>(g);
  config.learning_rate *= scale;
  MESHTRAIN_LOG(WARNING) << "elastic: keep per_replica_batch: " << members << " of " << all
                         << " workers train a global batch of " << global_batch_ << " (not " << g
                         << ") at " << scale << " x the learning rate";
  return Optimizer::Create(config);
}

absl::Status Session::Live(int64_t generation, ResilientRun& run) {
  workers_ = task_.mesh != nullptr ? task_.mesh->TrainingMembers()
                                   : task_.cluster->cluster.TrainingWorkers();
  state_valid_ = false;
  TrainingLife life;
  MESHTRAIN_ASSIGN_OR_RETURN(life.optimizer, LifeOptimizer());
  TrainingOptions training = task_.training;
  training.global_batch_size = global_batch_;
  MESHTRAIN_RETURN_IF_ERROR(Build(generation, life));
  // Before the restore's first call to the chief: each task finds a bad
  // batch itself rather than learning of it as a peer's departure.
  MESHTRAIN_RETURN_IF_ERROR(ValidateTrainingShape(*life.strategy, task_.data->train, training));
  shape_ = ShapeOf(*life.strategy);
  life_start_.clear();
  MESHTRAIN_ASSIGN_OR_RETURN(InputResume resume, Restore(generation, *life.strategy));
  state_valid_ = true;
  boundary_step_ = resume.start_step.value_or(0);
  base_ = resume.base;
  const InputPosition start = resume.start;
  const bool independent = life.strategy->recovery_policy().independent_workers;

  std::unique_ptr<CheckpointSaver> saver;
  if (chief_ && !options_.model_dir.empty()) {
    CheckpointSaverOptions so = SaverOptions(*life.strategy, options_.model_dir, &fs_);
    so.every_steps = options_.checkpoint_every_steps;
    so.every = options_.checkpoint_every;
    so.max_to_keep = options_.max_to_keep;
    saver = std::make_unique<CheckpointSaver>(*life.strategy, std::move(so));
    saver->Start();
    saver->ResetSchedule(restored_from_step_.value_or(0));
  }
  publish_position_ = task_.mesh != nullptr && !chief_ && independent;
  last_publish_ = absl::InfinitePast();
  MESHTRAIN_RETURN_IF_ERROR(PublishPosition(start, /*now=*/true));
  Observer observer(*this, saver.get(), start);
  training.start = start;
  training.start_step = resume.start_step;
  training.resume_from = resume.base;
  if (training.own_files.has_value() && !independent && task_.mesh != nullptr) {
    training.own_files->agree_steps_per_epoch = [this, generation](int64_t full_batches) {
      return AgreeStepsPerEpoch(task_.mesh, *task_.cluster, generation, full_batches,
                                absl::Now() + options_.startup_timeout);
    };
  }
  training.observers.push_back(&observer);

  SetInterrupt(false);  // step boundaries poll SIGTERM now
  absl::StatusOr<TrainingReport> report =
      RunTraining(*life.strategy, *life.model, task_.data->train, &task_.data->test, training);
  StopStuckRule();  // the final save and the reports are no steps
  SetInterrupt(true);
  if (!report.ok() && task_.mesh != nullptr && !task_.abort->aborted() &&
      !IsPreempted(report.status()) &&
      !(options_.preemption != nullptr && options_.preemption->requested())) {
    // Report before this life's transport closes: a neighbour that sees it
    // close must already be able to learn from the chief who failed first.
    (void)task_.mesh->coordination().ReportError(report.status());
  }
  // Resumed at the final step: no step ran, but the recovery is over.
  if (report.ok() && recovering_.has_value()) Resumed(absl::Now());
  absl::Status final_saved;
  if (report.ok() && saver != nullptr &&
      !(restored_final_ && restored_from_step_ == report->final_step)) {
    final_saved = saver->SaveNow(report->final_step, observer.next(), /*final=*/true);
  }
  if (saver != nullptr) {
    saver->Stop();  // a write in flight finishes: the next life may restore it
    checkpoint_stats_ = saver->stats();
    saved_up_to_ = std::max(saved_up_to_, saver->last_committed());
  }
  if (!report.ok()) HoldState(*life.strategy, observer.next());
  MESHTRAIN_RETURN_IF_ERROR(report.status());
  MESHTRAIN_RETURN_IF_ERROR(KeepFinalCheckpointStatus(std::move(final_saved), run));

  // Every worker's parameters meet at the chief (summary.json's param_checksums).
  MESHTRAIN_ASSIGN_OR_RETURN(std::string checksum, life.strategy->ParameterChecksum());
  const WorkerReport mine{checksum, PeakRssBytes(), report->examples, report->train_seconds,
                          restored_from_step_.value_or(-1)};
  MESHTRAIN_ASSIGN_OR_RETURN(run.reports, ExchangeWorkerReports(task_.mesh, *task_.cluster,
                                                                generation, mine, kReportWait));
  run.report = std::move(*report);
  run.report.epochs.clear();
  for (const auto& [epoch, record] : history_) run.report.epochs.push_back(record);
  run.life = std::move(life);
  return absl::OkStatus();
}

void Session::ReportStepTime(absl::Duration step) {
  CoordinationService* service =
      task_.mesh != nullptr ? task_.mesh->coordination_service() : nullptr;
  if (service == nullptr) return;
  step_times_.Add(step);
  const std::optional<absl::Duration> median = step_times_.Due();
  if (!median.has_value()) return;
  const absl::Duration bound = service->SetTrainingStepTime(*median);
  if (!stuck_rule_logged_ && bound > absl::ZeroDuration()) {
    stuck_rule_logged_ = true;
    MESHTRAIN_LOG(INFO) << "stuck rule: a task silent for "
                        << absl::FormatDuration(service->StuckSilence(*median))
                        << " while training is stuck; every task knows within "
                        << absl::FormatDuration(bound) << " (max(2s or --stuck-timeout, 10 x the "
                        << "median step time "
                        << absl::FormatDuration(absl::Trunc(*median, absl::Microseconds(100)))
                        << "))";
  }
}

void Session::StopStuckRule() {
  step_times_ = StepTimeMedian();
  stuck_rule_logged_ = false;
  CoordinationService* service =
      task_.mesh != nullptr ? task_.mesh->coordination_service() : nullptr;
  if (service != nullptr) service->SetTrainingStepTime(absl::ZeroDuration());
}

bool Session::CanRecover(const absl::Status& status) const {
  if (task_.mesh == nullptr || (options_.model_dir.empty() && !options_.elastic) ||
      options_.recovery_timeout <= absl::ZeroDuration()) {
    return false;
  }
  // A bad configuration fails the same way after any restart: it ends the
  // task at once, whether this task found it or the cluster's first error
  // (which aborted this one) was it.
  if (IsConfigurationError(status)) return false;
  if (task_.abort->aborted() && IsConfigurationError(task_.abort->status())) return false;
  return IsRecoverable(status) || task_.abort->aborted();
}

absl::StatusOr<ResilientRun> Session::Run() {
  SetInterrupt(true);
  Mesh* mesh = task_.mesh;
  int64_t generation = mesh != nullptr ? mesh->generation() : 0;
  if (chief_ && mesh != nullptr && mesh->coordination_service()->resumed()) {
    RecoveryRecord r;
    r.cause = "the chief restarted; the workers rejoined it";
    r.detected = process_start_;
    recovering_ = r;
  }
  ResilientRun run;
  while (true) {
    const absl::Status status = Live(generation, run);
    if (status.ok()) break;
    const bool preempted = options_.preemption != nullptr && options_.preemption->requested();
    if (preempted || IsPreempted(status)) {
      SetInterrupt(false);
      return IsPreempted(status) ? status : PreemptedError(status.message());
    }
    if (!CanRecover(status)) {
      SetInterrupt(false);
      return status;
    }
    RecoveryRecord r;
    r.detected = absl::Now();
    r.failed_at_step = last_step_;
    r.last_step_end = last_step_end_;
    MESHTRAIN_LOG(ERROR) << "training failed "
                         << (last_step_ >= 0 ? absl::StrCat("after ", last_step_, " steps")
                                             : std::string("after 0 steps (before the first)"))
                         << ": " << status << "; recovering: waiting up to "
                         << absl::FormatDuration(options_.recovery_timeout)
                         << " for the cluster to come back, then "
                         << (options_.elastic ? "resuming from the state the members hold"
                                              : "restoring the latest checkpoint");
    if (!task_.abort->aborted()) (void)mesh->coordination().ReportError(status);
    // The cluster's first error is the cause. This task's own may only be a
    // consequence of it: a peer that aborted first and closed its connections.
    const absl::Status cause = task_.abort->aborted() ? task_.abort->status() : status;
    if (cause.message() != status.message()) {
      MESHTRAIN_LOG(ERROR) << "the cluster's first error: " << cause;
    }
    r.cause = std::string(cause.message());
    recovering_ = r;
    const absl::Status rejoined = mesh->Rejoin(options_.recovery_timeout);
    if (!rejoined.ok()) {
      SetInterrupt(false);
      if (options_.preemption != nullptr && options_.preemption->requested()) {
        return PreemptedError(rejoined.message());
      }
      return rejoined;
    }
    generation = mesh->generation();
    recovering_->generation = generation;
    recovering_->workers = static_cast<int64_t>(mesh->TrainingMembers().size());
  }
  SetInterrupt(false);
  run.fault_tolerance = FaultTolerance();
  return run;
}

}  // namespace

absl::StatusOr<ResilientRun> RunResilientTraining(const TrainingTask& task,
                                                  const ResilienceOptions& options) {
  Session session(task, options);
  return session.Run();
}

}  // namespace meshtrain

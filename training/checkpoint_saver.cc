#include "training/checkpoint_saver.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/checkpoint/model_dir.h"

namespace meshtrain {
namespace {

double Millis(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

// What a save that ran out of space needs: where, how much, what to do.
absl::Status NoSpaceStatus(FileSystem& fs, const std::string& model_dir, int64_t step,
                           int64_t bytes, const absl::Status& status) {
  const absl::StatusOr<int64_t> free_bytes = fs.AvailableBytes(model_dir);
  return absl::ResourceExhaustedError(absl::StrCat(
      "checkpoint at step ", step, ": no space left in ", model_dir, ": a checkpoint needs about ",
      bytes, " bytes", free_bytes.ok() ? absl::StrCat(", ", *free_bytes, " are free") : "",
      "; free space there or point --model-dir elsewhere (", status.message(), ")"));
}

}  // namespace

nlohmann::json CheckpointStats::ToJson() const {
  auto mean_ms = [](absl::Duration total, int64_t n) { return n > 0 ? Millis(total) / n : 0.0; };
  const double step_ms = mean_ms(step_time_during_write + step_time_without_write,
                                 steps_during_write + steps_without_write);
  const double snapshot_ms = mean_ms(snapshot_total, saves + failures);
  return {{"saves", saves},
          {"deferred", deferred},
          {"failures", failures},
          {"bytes", last_bytes},
          {"snapshot_ms_mean", snapshot_ms},
          {"snapshot_ms_max", Millis(snapshot_max)},
          {"write_ms_mean", mean_ms(write_total, saves)},
          {"write_mb_per_sec",
           write_total > absl::ZeroDuration()
               ? static_cast<double>(last_bytes) * saves / 1e6 / absl::ToDoubleSeconds(write_total)
               : 0.0},
          {"step_ms_mean", step_ms},
          {"steps_during_write", steps_during_write},
          {"step_ms_during_write", mean_ms(step_time_during_write, steps_during_write)},
          {"step_ms_without_write", mean_ms(step_time_without_write, steps_without_write)},
          // What a saving step waits for, against a mean step.
          {"snapshot_fraction_of_step", step_ms > 0 ? snapshot_ms / step_ms : 0.0}};
}

CheckpointSaver::CheckpointSaver(Strategy& strategy, CheckpointSaverOptions options)
    : strategy_(strategy),
      options_(std::move(options)),
      fs_(options_.fs != nullptr ? *options_.fs : DefaultFileSystem()) {}

CheckpointSaver::~CheckpointSaver() { Stop(); }

void CheckpointSaver::Start() {
  absl::MutexLock lock(&mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
}

void CheckpointSaver::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void CheckpointSaver::ResetSchedule(int64_t step) {
  scheduled_from_step_ = step;
  scheduled_from_time_ = absl::Now();
}

absl::StatusOr<Manifest> CheckpointSaver::MakeManifest(int64_t step, InputPosition next,
                                                       bool final) const {
  Manifest m = options_.base;
  m.step = step;
  m.final = final;
  m.input = {next.epoch, next.step};
  for (const std::string& task : options_.tasks) m.task_inputs[task] = m.input;
  if (options_.own_positions) {
    for (const auto& [task, position] : options_.own_positions()) m.task_inputs[task] = position;
  }
  if (options_.input_positions) MESHTRAIN_RETURN_IF_ERROR(options_.input_positions(m));
  if (options_.meta) m.meta = options_.meta();
  return m;
}

absl::StatusOr<CheckpointSaver::Pending> CheckpointSaver::Snapshot(int64_t step, InputPosition next,
                                                                   bool final) {
  const absl::Time start = absl::Now();
  Pending pending;
  absl::StatusOr<std::unique_ptr<CheckpointJob>> job = strategy_.PrepareCheckpoint();
  if (absl::IsUnimplemented(job.status())) {
    // A strategy without checkpoints yet: train on, say so once.
    if (!unsupported_) {
      MESHTRAIN_LOG(WARNING) << "checkpoint: " << job.status().message()
                             << "; training goes on without checkpoints";
    }
    unsupported_ = true;
    return job.status();
  }
  MESHTRAIN_RETURN_IF_ERROR(job.status());
  pending.job = std::move(*job);
  MESHTRAIN_ASSIGN_OR_RETURN(pending.manifest, MakeManifest(step, next, final));
  const absl::Duration took = absl::Now() - start;
  absl::MutexLock lock(&mu_);
  stats_.snapshot_total += took;
  stats_.snapshot_max = std::max(stats_.snapshot_max, took);
  return pending;
}

absl::Status CheckpointSaver::Write(Pending& pending) {
  const int64_t step = pending.manifest.step;
  MESHTRAIN_LOG(INFO) << "checkpoint: writing " << CheckpointPath(options_.model_dir, step)
                      << (pending.manifest.final ? " (final)" : "");
  const absl::Time start = absl::Now();
  absl::Status status = WriteCheckpoint(fs_, options_.model_dir, pending.manifest, *pending.job,
                                        options_.max_to_keep);
  const absl::Duration took = absl::Now() - start;
  const int64_t bytes = pending.job->bytes();
  if (!status.ok()) {
    absl::MutexLock lock(&mu_);
    ++stats_.failures;
  }
  if (absl::IsResourceExhausted(status)) {
    return NoSpaceStatus(fs_, options_.model_dir, step, bytes, status);
  }
  if (!status.ok()) return Annotate(status, absl::StrCat("checkpoint at step ", step));
  absl::MutexLock lock(&mu_);
  ++stats_.saves;
  stats_.write_total += took;
  stats_.last_bytes = bytes;
  last_committed_ = std::max(last_committed_, step);
  MESHTRAIN_LOG(INFO) << "checkpoint: " << CheckpointDirName(step) << " committed ("
                      << absl::StrFormat("%.1f MB in %.1f ms", bytes / 1e6, Millis(took)) << ")";
  return absl::OkStatus();
}

void CheckpointSaver::Loop() {
  while (true) {
    std::unique_ptr<Pending> pending;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ != nullptr || stop_; };
      mu_.Await(absl::Condition(&ready));
      if (pending_ == nullptr) return;  // stopping with nothing left to write
      pending = std::move(pending_);
      writing_ = true;
    }
    const absl::Status status = Write(*pending);
    if (!status.ok()) {
      MESHTRAIN_LOG(ERROR) << status
                           << "; training goes on, the previous checkpoint stays valid and the "
                              "next interval tries again";
    }
    absl::MutexLock lock(&mu_);
    writing_ = false;
    last_write_end_ = absl::Now();
  }
}

absl::Status CheckpointSaver::OnStepEnd(const StepRecord& step) {
  bool busy = false;
  {
    absl::MutexLock lock(&mu_);
    busy = Busy();
    const absl::Duration took = step.end - step.start;
    if (busy || last_write_end_ > step.start) {
      ++stats_.steps_during_write;
      stats_.step_time_during_write += took;
    } else {
      ++stats_.steps_without_write;
      stats_.step_time_without_write += took;
    }
  }
  const bool due_by_steps =
      options_.every_steps > 0 && step.global_step >= scheduled_from_step_ + options_.every_steps;
  const bool due_by_time = options_.every > absl::ZeroDuration() &&
                           scheduled_from_time_ != absl::InfinitePast() &&
                           absl::Now() >= scheduled_from_time_ + options_.every;
  if (!due_by_steps && !due_by_time) return absl::OkStatus();
  if (busy) {
    absl::MutexLock lock(&mu_);
    ++stats_.deferred;
    return absl::OkStatus();
  }
  if (unsupported_) return absl::OkStatus();
  absl::StatusOr<Pending> pending = Snapshot(step.global_step, step.next, false);
  if (unsupported_) return absl::OkStatus();
  MESHTRAIN_RETURN_IF_ERROR(pending.status());
  ResetSchedule(step.global_step);
  absl::MutexLock lock(&mu_);
  pending_ = std::make_unique<Pending>(std::move(*pending));
  return absl::OkStatus();
}

absl::Status CheckpointSaver::SaveNow(int64_t step, InputPosition next, bool final) {
  {
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !Busy(); };
    mu_.Await(absl::Condition(&idle));
  }
  if (unsupported_) return absl::OkStatus();
  absl::StatusOr<Pending> pending = Snapshot(step, next, final);
  if (unsupported_) return absl::OkStatus();
  MESHTRAIN_RETURN_IF_ERROR(pending.status());
  ResetSchedule(step);
  return Write(*pending);
}

CheckpointStats CheckpointSaver::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

int64_t CheckpointSaver::last_committed() const {
  absl::MutexLock lock(&mu_);
  return last_committed_;
}

}  // namespace meshtrain

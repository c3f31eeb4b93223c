#include "runtime/rpc/coordination_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

// How often a waiting request looks whether its caller went away.
constexpr absl::Duration kCancelPollPeriod = absl::Milliseconds(100);

std::string ListTasks(const ClusterSpec& cluster, const std::vector<TaskId>& tasks) {
  std::vector<std::string> names;
  for (const TaskId& task : tasks) names.push_back(DescribeTask(cluster, task));
  return JoinWithAnd(names);
}

}  // namespace

bool IsRecoverable(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kInternal:
      return true;
    default:
      return false;
  }
}

std::string ClusterFingerprint(const ClusterSpec& cluster) {
  std::vector<std::string> jobs;
  for (const auto& [job, addresses] : cluster.jobs()) {
    jobs.push_back(absl::StrCat(job, "=", absl::StrJoin(addresses, ",")));
  }
  return absl::StrJoin(jobs, ";");
}

absl::StatusOr<std::unique_ptr<CoordinationService>> CoordinationService::Create(
    CoordinationServiceOptions options) {
  if (options.heartbeat_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("coordination service: heartbeat_timeout must be positive");
  }
  if (options.restart_silence < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("coordination service: restart_silence must not be negative");
  }
  const std::vector<TaskId> all = options.cluster.AllTasks();
  if (std::find(all.begin(), all.end(), options.chief) == all.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "coordination service: chief ", options.chief.ToString(), " is not in the cluster"));
  }
  return std::unique_ptr<CoordinationService>(new CoordinationService(std::move(options)));
}

CoordinationService::CoordinationService(CoordinationServiceOptions options)
    : options_(std::move(options)),
      env_(options_.env != nullptr ? *options_.env : Env::Default()),
      fingerprint_(ClusterFingerprint(options_.cluster)) {
  for (const TaskId& task : options_.cluster.AllTasks()) {
    TaskRecord record;
    record.info.task = task;
    record.info.address = options_.cluster.address(task);
    tasks_.emplace(task, std::move(record));
  }
}

CoordinationService::~CoordinationService() { Stop(); }

void CoordinationService::Start() {
  absl::MutexLock lock(&mu_);
  if (started_ || stopping_) return;
  started_ = true;
  monitor_ = std::thread([this] { MonitorLoop(); });
}

void CoordinationService::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (monitor_.joinable()) monitor_.join();
}

absl::Duration CoordinationService::MonitorPeriod() const {
  return std::max(std::min(options_.heartbeat_timeout, options_.heartbeat_interval) / 4,
                  absl::Milliseconds(10));
}

absl::Duration CoordinationService::StuckBound(absl::Duration median_step) const {
  return std::max(options_.stuck_floor, options_.stuck_step_multiple * median_step);
}

absl::Duration CoordinationService::StuckSilence(absl::Duration median_step) const {
  return std::max(StuckBound(median_step) - options_.heartbeat_interval - MonitorPeriod(),
                  3 * options_.heartbeat_interval);
}

absl::Duration CoordinationService::SetTrainingStepTime(absl::Duration median_step) {
  absl::MutexLock lock(&mu_);
  median_step_ = options_.stuck_floor > absl::ZeroDuration()
                     ? std::max(median_step, absl::ZeroDuration())
                     : absl::ZeroDuration();
  return median_step_ > absl::ZeroDuration() ? StuckBound(median_step_) : absl::ZeroDuration();
}

void CoordinationService::MonitorLoop() {
  const absl::Duration period = MonitorPeriod();
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    env_.AwaitWithDeadline(mu_, absl::Condition(&stopping_), env_.Now() + period);
    if (!stopping_) CheckLiveness();
  }
}

void CoordinationService::CheckHeartbeats() {
  absl::MutexLock lock(&mu_);
  CheckLiveness();
}

void CoordinationService::CheckLiveness() {
  // The clock starts at the rendezvous: before it, registered tasks block in
  // Register and send no heartbeats. After a shutdown request, silence is normal.
  if (!rendezvous_done_ || shutdown_requested_) return;
  const absl::Time now = env_.Now();
  const bool training = median_step_ > absl::ZeroDuration();
  const absl::Duration stuck_silence =
      training ? StuckSilence(median_step_) : absl::InfiniteDuration();
  for (auto& [task, record] : tasks_) {
    // Tasks waiting in a recovery send no heartbeats; their call is their pulse.
    if (task == options_.chief || record.info.state != TaskState::kConnected ||
        record.waiting > 0 || absent_.contains(task)) {
      continue;
    }
    const absl::Duration silent = now - record.last_heartbeat;
    if (silent <= std::min(options_.heartbeat_timeout, stuck_silence)) continue;
    record.info.state = TaskState::kDead;
    ++version_;
    const std::string silent_text =
        absl::FormatDuration(absl::Trunc(silent, absl::Milliseconds(1)));
    // Stuck: no other task saw it exit (that would already be the first
    // error), yet it has stopped. Dead: silent past the heartbeat timeout.
    const bool stuck = silent <= options_.heartbeat_timeout && !first_error_.has_value();
    const std::string message =
        stuck ? absl::StrCat(
                    "heartbeat: ", Describe(task), " is stuck, not gone: no heartbeat for ",
                    silent_text, " while training, though no task saw it exit (the stuck bound is ",
                    absl::FormatDuration(StuckBound(median_step_)), ": max(",
                    absl::FormatDuration(options_.stuck_floor), ", ", options_.stuck_step_multiple,
                    " x the median step time ",
                    absl::FormatDuration(absl::Trunc(median_step_, absl::Microseconds(100))),
                    ")); it is alive but makes no progress (stopped by SIGSTOP or a debugger, a "
                    "frozen host, a cut link); treating it as dead: restart it and recover from "
                    "the last checkpoint")
              : absl::StrCat("heartbeat: ", Describe(task), " sent no heartbeat for ", silent_text,
                             " (timeout ", absl::FormatDuration(options_.heartbeat_timeout),
                             ") and is presumed dead; restart it and recover from the last "
                             "checkpoint");
    MESHTRAIN_LOG(ERROR) << message;
    if (task.job != kEvaluatorJob && !options_.independent_tasks.contains(task) &&
        !first_error_.has_value()) {
      first_error_ = ClusterError{task, absl::UnavailableError(message)};
    }
  }
}

absl::Status CoordinationService::CheckSender(const TaskId& task, uint64_t incarnation) const {
  auto it = tasks_.find(task);
  if (it == tasks_.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown task ", task.ToString(), ": not in the chief's cluster; check its TF_CONFIG"));
  }
  const uint64_t current = it->second.info.incarnation;
  if (current == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(Describe(task), " has not registered with the coordination service"));
  }
  if (incarnation != current) {
    // No incarnation in the message: the current one authorises every call.
    return absl::AbortedError(absl::StrCat(Describe(task),
                                           ": stale incarnation: the task restarted; this process ",
                                           "belongs to an earlier life and must exit"));
  }
  if (absent_.contains(task)) return DepartedError(task);
  return absl::OkStatus();
}

absl::Status CoordinationService::FinishedError(const TaskId& task) const {
  return absl::FailedPreconditionError(
      absl::StrCat("register: ", Describe(task),
                   " cannot join: the cluster has finished its job (the chief asked every task "
                   "to shut down); start a new job to train again"));
}

absl::Status CoordinationService::DepartedError(const TaskId& task) const {
  return absl::AbortedError(
      absl::StrCat(Describe(task), " left the cluster: it did not rejoin within the rejoin grace (",
                   absl::FormatDuration(options_.elastic.rejoin_grace),
                   ") and the others went on without it; this process must exit; start it again to "
                   "join the cluster"));
}

absl::Status CoordinationService::CheckRestart(const TaskRecord& record) const {
  const TaskId& task = record.info.task;
  if (task == options_.chief) {
    // A chief that restarts hosts a new service; this one's chief is running.
    return absl::FailedPreconditionError(
        absl::StrCat("register: ", Describe(task),
                     " hosts this coordination service and is running; a restarted chief "
                     "starts a new service"));
  }
  if (record.info.state != TaskState::kConnected) return absl::OkStatus();
  if (record.waiting > 0) {
    return absl::UnavailableError(absl::StrCat(
        "register: ", Describe(task),
        " is alive (its previous incarnation is waiting in a call); a restarted task registers "
        "only after its previous incarnation stopped; retry"));
  }
  const absl::Duration silent = env_.Now() - record.last_heartbeat;
  if (silent > options_.restart_silence) return absl::OkStatus();
  // Unavailable: a real restart retries until its previous life has been silent long enough.
  return absl::UnavailableError(
      absl::StrCat("register: ", Describe(task), " is alive (heartbeat ",
                   absl::FormatDuration(absl::Trunc(silent, absl::Milliseconds(100))),
                   " ago); a restarted task registers only after its previous incarnation stopped "
                   "heartbeating for ",
                   absl::FormatDuration(options_.restart_silence), "; retry"));
}

std::vector<TaskId> CoordinationService::StartsWithout() const {
  const int initial = options_.elastic.initial_workers;
  const std::vector<TaskId> workers = options_.cluster.TrainingWorkers();
  if (!options_.elastic.enabled || initial <= 0 || initial >= static_cast<int>(workers.size())) {
    return {};
  }
  const std::vector<TaskId> later(workers.begin() + initial, workers.end());
  for (const auto& [task, record] : tasks_) {
    const bool optional =
        task.job == kEvaluatorJob || std::find(later.begin(), later.end(), task) != later.end();
    if (!optional && record.info.incarnation == 0) return {};
  }
  return later;
}

bool CoordinationService::AllExpectedRegistered() const {
  for (const auto& [task, record] : tasks_) {
    if (task.job != kEvaluatorJob && record.info.incarnation == 0) return false;
  }
  return true;
}

std::vector<PeerInfo> CoordinationService::Snapshot() const {
  std::vector<PeerInfo> tasks;
  for (const auto& [task, record] : tasks_) tasks.push_back(record.info);
  return tasks;
}

absl::Status CoordinationService::FirstErrorAsAbort() const {
  return absl::AbortedError(first_error_->status.message());
}

bool CoordinationService::Wait(const std::function<bool()>& done, absl::Time deadline,
                               const CancelledFn& cancelled) {
  auto stop_waiting = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return done() || stopping_ || first_error_.has_value();
  };
  while (!stop_waiting()) {
    const absl::Time now = env_.Now();
    if (now >= deadline || (cancelled && cancelled())) break;
    env_.AwaitWithDeadline(mu_, absl::Condition(&stop_waiting),
                           std::min(deadline, now + kCancelPollPeriod));
  }
  return done();
}

absl::StatusOr<CoordinationService::View> CoordinationService::Register(
    const Registration& registration, const CancelledFn& cancelled) {
  const TaskId& task = registration.task;
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("register: the coordination service is stopping");
  auto it = tasks_.find(task);
  if (it == tasks_.end()) {
    return absl::InvalidArgumentError(absl::StrCat("register: unknown task ", task.ToString(),
                                                   ": not in the chief's cluster; check its "
                                                   "TF_CONFIG"));
  }
  if (registration.cluster_fingerprint != fingerprint_) {
    // The chief's fingerprint stays in the chief's log, out of the reply.
    MESHTRAIN_LOG(WARNING) << "register: " << task.ToString() << " has cluster {"
                           << absl::CHexEscape(registration.cluster_fingerprint.substr(0, 200))
                           << "} but the chief has {" << fingerprint_ << "}";
    return absl::InvalidArgumentError(
        absl::StrCat("register: ", task.ToString(),
                     ": wrong cluster: its TF_CONFIG cluster differs from the chief's; give "
                     "every task the same TF_CONFIG cluster (the chief's log shows both)"));
  }
  if (registration.incarnation == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("register: ", task.ToString(), " sent incarnation 0"));
  }
  TaskRecord& record = it->second;
  const uint64_t old_incarnation = record.info.incarnation;
  const bool restarted = old_incarnation != 0 && old_incarnation != registration.incarnation;
  if (restarted) MESHTRAIN_RETURN_IF_ERROR(CheckRestart(record));
  const bool joins = absent_.contains(task);
  if (joins) {
    // Step 7: the departed life itself may not come back; a new one joins.
    if (absent_.at(task) == registration.incarnation) return DepartedError(task);
    if (shutdown_requested_) return FinishedError(task);
    MESHTRAIN_RETURN_IF_ERROR(Return(task));
  }
  if (old_incarnation != registration.incarnation || record.info.state != TaskState::kConnected) {
    if (old_incarnation != 0 && old_incarnation != registration.incarnation) {
      MESHTRAIN_LOG(WARNING) << "register: " << Describe(task) << " restarted: incarnation "
                             << old_incarnation << " -> " << registration.incarnation;
      changes_.push_back({task, old_incarnation, registration.incarnation});
    }
    record.info.incarnation = registration.incarnation;
    record.info.host_identity = registration.host_identity;
    record.info.state = TaskState::kConnected;
    ++version_;
  }
  record.last_heartbeat = env_.Now();
  if (rendezvous_done_ &&
      (registration.rejoin || joins ||
       (restarted && (!options_.independent_tasks.contains(task) || first_error_.has_value())))) {
    return JoinRecovery(record, restarted || joins, registration.wait, cancelled);
  }
  if (registration.rejoin && !rendezvous_done_ && !resumed_) {
    resumed_ = true;
    MESHTRAIN_LOG(WARNING)
        << "startup: " << Describe(task)
        << " rejoins a running cluster: the chief restarted and the cluster resumes";
  }
  if (first_error_.has_value()) return FirstErrorAsAbort();

  ++record.waiting;
  const bool all = Wait(
      [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return rendezvous_done_ || AllExpectedRegistered() || !StartsWithout().empty();
      },
      env_.Now() + registration.wait, cancelled);
  --record.waiting;
  if (all) {
    if (!rendezvous_done_) {
      if (!AllExpectedRegistered()) {
        for (const TaskId& t : StartsWithout()) {
          if (tasks_.at(t).info.incarnation != 0) continue;  // in already
          absent_[t] = 0;
          departed_.push_back(t);
        }
        MESHTRAIN_LOG(INFO) << "startup: elastic: the cluster starts with " << NumTrainingMembers()
                            << " training workers; " << ListTasks(options_.cluster, departed_)
                            << " may join later";
      } else {
        MESHTRAIN_LOG(INFO) << "startup: all " << tasks_.size() << " tasks of the cluster joined";
      }
      rendezvous_done_ = true;
      const absl::Time now = env_.Now();
      for (auto& [t, r] : tasks_) r.last_heartbeat = now;
    }
    return CurrentView();
  }
  if (first_error_.has_value()) return FirstErrorAsAbort();
  if (stopping_) return absl::UnavailableError("register: the coordination service is stopping");
  if (cancelled && cancelled()) return absl::CancelledError("register: the caller went away");
  std::vector<TaskId> missing;
  for (const auto& [t, r] : tasks_) {
    if (t.job != kEvaluatorJob && r.info.incarnation == 0) missing.push_back(t);
  }
  return absl::DeadlineExceededError(
      absl::StrCat("startup: ", ListTasks(options_.cluster, missing), " did not join within ",
                   absl::FormatDuration(registration.startup_timeout),
                   missing.size() == 1 ? "; start it or check its TF_CONFIG"
                                       : "; start them or check their TF_CONFIG"));
}

CoordinationService::View CoordinationService::CurrentView() const {
  return View{version_, Snapshot(), generation_, departed_};
}

int CoordinationService::NumTrainingMembers() const {
  int members = 0;
  for (const auto& [task, record] : tasks_) {
    if (task.is_training_worker() && !absent_.contains(task)) ++members;
  }
  return members;
}

absl::Status CoordinationService::Return(const TaskId& task) {
  const int max = options_.elastic.max_workers;
  if (max > 0 && task.is_training_worker() && NumTrainingMembers() + 1 > max) {
    return absl::FailedPreconditionError(absl::StrCat(
        "register: ", Describe(task), " cannot join: the cluster already has ", max,
        " training workers (--max-workers ", max, "); raise --max-workers or stop a worker"));
  }
  absent_.erase(task);
  MESHTRAIN_LOG(WARNING) << "elastic: " << Describe(task)
                         << " is back; the cluster grows at its next generation";
  return absl::OkStatus();
}

std::vector<TaskId> CoordinationService::Departing(int64_t target) const {
  if (!options_.elastic.enabled) return {};
  const absl::Time now = env_.Now();
  if (now < recovery_began_ + options_.elastic.rejoin_grace) return {};
  std::vector<TaskId> away;
  int workers_away = 0;
  int ps_members = 0;
  for (const auto& [task, r] : tasks_) {
    if (task.job == kEvaluatorJob || absent_.contains(task)) continue;
    if (task.job == kPsJob) ++ps_members;
    if (r.rejoined_generation >= target && r.info.state == TaskState::kConnected) continue;
    // Only a worker or a ps that is gone may be left behind (a ps's partitions
    // are restored from the checkpoint onto the others): the chief hosts this
    // service, a live task is on its way.
    if (task == options_.chief || (!task.is_training_worker() && task.job != kPsJob)) return {};
    const bool alive = r.info.state == TaskState::kConnected &&
                       (r.waiting > 0 || now - r.last_heartbeat <= 2 * options_.heartbeat_interval);
    if (alive) return {};
    away.push_back(task);
    if (task.is_training_worker()) ++workers_away;
  }
  const int ps_away = static_cast<int>(away.size()) - workers_away;
  if (away.empty() || NumTrainingMembers() - workers_away < options_.elastic.min_workers ||
      (ps_away > 0 && ps_members - ps_away < 1)) {
    return {};
  }
  return away;
}

bool CoordinationService::AllRejoined(int64_t target) const {
  for (const auto& [task, record] : tasks_) {
    if (task.job == kEvaluatorJob || absent_.contains(task)) continue;
    if (record.rejoined_generation < target || record.info.state != TaskState::kConnected) {
      return false;
    }
  }
  return true;
}

void CoordinationService::CompleteRecovery(int64_t target) {
  if (!AllRejoined(target)) {
    const std::vector<TaskId> departing = Departing(target);
    if (departing.empty()) return;  // someone is still on the way
    for (const TaskId& t : departing) {
      TaskRecord& away = tasks_.at(t);
      absent_[t] = away.info.incarnation;
      away.info.state = TaskState::kDead;
      MESHTRAIN_LOG(WARNING) << "elastic: " << Describe(t) << " did not rejoin within "
                             << absl::FormatDuration(options_.elastic.rejoin_grace)
                             << " (--rejoin-grace); the cluster goes on without it with "
                             << NumTrainingMembers() << " training workers";
    }
  }
  departed_.clear();
  for (const auto& [t, incarnation] : absent_) departed_.push_back(t);
  generation_ = target;
  first_error_.reset();
  ++version_;
  const absl::Time now = env_.Now();
  for (auto& [t, r] : tasks_) r.last_heartbeat = now;
  for (auto& [id, barrier] : barriers_) barrier.arrived.clear();
  MESHTRAIN_LOG(WARNING) << "recovery: every task rejoined; the cluster resumes as generation "
                         << generation_;
}

absl::StatusOr<CoordinationService::View> CoordinationService::JoinRecovery(
    TaskRecord& record, bool restarted, absl::Duration wait, const CancelledFn& cancelled) {
  const TaskId task = record.info.task;
  auto failed_for_good = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return first_error_.has_value() && !first_error_->recoverable;
  };
  auto fatal = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "recovery: the cluster failed for good: ", first_error_->status.message(),
        "; fix the cause and start the job again (it resumes from the last checkpoint)"));
  };
  if (failed_for_good()) return fatal();
  if (!first_error_.has_value()) {
    // Nobody reported this yet (a fast restart, before any survivor noticed).
    const bool joins = std::find(departed_.begin(), departed_.end(), task) != departed_.end();
    const std::string message =
        joins       ? absl::StrCat(Describe(task),
                                   " joins the cluster; every worker stops its step and the "
                                         "cluster re-forms with it")
        : restarted ? absl::StrCat(Describe(task),
                                   " restarted: its previous life died mid-step; every task "
                                   "recovers from the last checkpoint")
                    : absl::StrCat(Describe(task), " asked the cluster to recover");
    MESHTRAIN_LOG(ERROR) << "first error of the cluster: " << message;
    first_error_ = ClusterError{task, absl::UnavailableError(message), true};
  }
  const int64_t target = generation_ + 1;
  if (recovery_target_ != target) {
    recovery_target_ = target;
    recovery_began_ = env_.Now();
  }
  record.rejoined_generation = target;
  ++record.waiting;
  MESHTRAIN_LOG(INFO) << "recovery: " << Describe(task) << " is ready for generation " << target;
  const absl::Time deadline = env_.Now() + wait;
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return generation_ >= target || AllRejoined(target) || !Departing(target).empty() ||
           stopping_ || failed_for_good() || shutdown_requested_;
  };
  while (!done()) {
    const absl::Time now = env_.Now();
    if (now >= deadline || (cancelled && cancelled())) break;
    env_.AwaitWithDeadline(mu_, absl::Condition(&done),
                           std::min(deadline, now + kCancelPollPeriod));
  }
  if (generation_ < target && !failed_for_good()) CompleteRecovery(target);
  --record.waiting;
  record.last_heartbeat = env_.Now();
  if (generation_ >= target) return CurrentView();
  if (failed_for_good()) return fatal();
  if (shutdown_requested_) return FinishedError(task);
  if (stopping_) return absl::UnavailableError("recovery: the coordination service is stopping");
  if (cancelled && cancelled()) {
    record.rejoined_generation = 0;
    return absl::CancelledError("recovery: the caller went away");
  }
  std::vector<TaskId> missing;
  for (const auto& [t, r] : tasks_) {
    if (t.job != kEvaluatorJob &&
        (r.rejoined_generation < target || r.info.state != TaskState::kConnected)) {
      missing.push_back(t);
    }
  }
  absl::Status gave_up = absl::DeadlineExceededError(absl::StrCat(
      "recovery: ", ListTasks(options_.cluster, missing),
      missing.size() == 1 ? " did not come back" : " did not all come back", " within ",
      absl::FormatDuration(wait),
      "; restart failed tasks (meshtrain launch --max-restarts, Kubernetes, systemd, Slurm) or "
      "raise --recovery-timeout"));
  if (task == options_.chief) {
    // The chief gives up and stops its service: the recovery failed for
    // everyone. Tasks still waiting learn why now, not by losing the chief.
    first_error_ = ClusterError{task, gave_up, /*recoverable=*/false};
    ++version_;
  }
  return gave_up;
}

absl::StatusOr<CoordinationService::HeartbeatReply> CoordinationService::Heartbeat(
    const TaskId& task, uint64_t incarnation, int64_t known_version) {
  absl::MutexLock lock(&mu_);
  MESHTRAIN_RETURN_IF_ERROR(CheckSender(task, incarnation));
  tasks_[task].last_heartbeat = env_.Now();
  HeartbeatReply reply;
  reply.version = version_;
  if (known_version != version_) reply.tasks = Snapshot();
  reply.first_error = first_error_;
  reply.shutdown_requested = shutdown_requested_;
  return reply;
}

absl::Status CoordinationService::ReportError(const TaskId& task, uint64_t incarnation,
                                              const absl::Status& error) {
  absl::MutexLock lock(&mu_);
  MESHTRAIN_RETURN_IF_ERROR(CheckSender(task, incarnation));
  if (error.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("report error: ", task.ToString(), " reported an OK status"));
  }
  if (first_error_.has_value()) {
    MESHTRAIN_LOG(WARNING) << "report error: " << task.ToString()
                           << " (not the first error): " << error.ToString();
    return absl::OkStatus();
  }
  const std::string message = absl::StrCat(
      Describe(task), " failed: ", absl::StatusCodeToString(error.code()), ": ", error.message());
  MESHTRAIN_LOG(ERROR) << "first error of the cluster: " << message;
  first_error_ = ClusterError{task, absl::Status(error.code(), message), IsRecoverable(error)};
  return absl::OkStatus();
}

absl::Status CoordinationService::Barrier(const TaskId& task, uint64_t incarnation,
                                          absl::string_view id,
                                          const std::vector<TaskId>& participants,
                                          absl::Duration timeout, const CancelledFn& cancelled) {
  const std::string op = absl::StrCat("barrier '", id, "'");
  std::vector<TaskId> sorted = participants;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());

  absl::MutexLock lock(&mu_);
  MESHTRAIN_RETURN_IF_ERROR(CheckSender(task, incarnation));
  if (stopping_) {
    return absl::UnavailableError(absl::StrCat(op, ": the coordination service is stopping"));
  }
  for (const TaskId& t : sorted) {
    if (tasks_.count(t) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": participant ", t.ToString(), " is not in the cluster"));
    }
  }
  if (!std::binary_search(sorted.begin(), sorted.end(), task)) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": ", task.ToString(), " is not among its participants"));
  }
  if (first_error_.has_value()) return FirstErrorAsAbort();
  auto [it, inserted] = barriers_.try_emplace(std::string(id));
  BarrierState& barrier = it->second;
  if (inserted) {
    barrier.participants = sorted;
  } else if (barrier.participants != sorted) {
    return absl::InvalidArgumentError(absl::StrCat(
        op, ": ", task.ToString(), " names participants {", ListTasks(options_.cluster, sorted),
        "} but others named {", ListTasks(options_.cluster, barrier.participants), "}"));
  }
  const int64_t generation = barrier.generation;
  barrier.arrived.insert(task);
  if (barrier.arrived.size() == barrier.participants.size()) {
    // The last one in opens the barrier for everyone and resets it for the next round.
    ++barrier.generation;
    barrier.arrived.clear();
    return absl::OkStatus();
  }
  auto participant_gone = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const TaskId& t : barrier.participants) {
      const TaskState state = tasks_.at(t).info.state;
      if (state == TaskState::kDead || state == TaskState::kLeft) return true;
    }
    return false;
  };
  const bool passed =
      Wait([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(
               mu_) { return barrier.generation != generation || participant_gone(); },
           env_.Now() + timeout, cancelled);
  if (passed && barrier.generation != generation) return absl::OkStatus();
  // Not passed: withdraw, so that a retry (or the next round) starts clean.
  barrier.arrived.erase(task);
  if (first_error_.has_value()) return FirstErrorAsAbort();
  if (stopping_) {
    return absl::UnavailableError(absl::StrCat(op, ": the coordination service is stopping"));
  }
  std::vector<TaskId> gone;
  std::vector<TaskId> absent;
  for (const TaskId& t : barrier.participants) {
    const TaskState state = tasks_.at(t).info.state;
    if (state == TaskState::kDead || state == TaskState::kLeft) gone.push_back(t);
    if (barrier.arrived.count(t) == 0 && t != task) absent.push_back(t);
  }
  if (!gone.empty()) {
    return absl::UnavailableError(absl::StrCat(op, ": ", ListTasks(options_.cluster, gone),
                                               gone.size() == 1 ? " has" : " have",
                                               " left the cluster or died"));
  }
  if (cancelled && cancelled()) {
    return absl::CancelledError(absl::StrCat(op, ": the caller went away"));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(op, ": ", ListTasks(options_.cluster, absent), " did not arrive within ",
                   absl::FormatDuration(timeout), " (", task.ToString(), " waited)"));
}

absl::Status CoordinationService::KvSet(const TaskId& task, uint64_t incarnation,
                                        absl::string_view key, absl::string_view value) {
  absl::MutexLock lock(&mu_);
  MESHTRAIN_RETURN_IF_ERROR(CheckSender(task, incarnation));
  kv_.insert_or_assign(std::string(key), std::string(value));
  return absl::OkStatus();
}

absl::StatusOr<std::string> CoordinationService::KvGet(const TaskId& task, uint64_t incarnation,
                                                       absl::string_view key,
                                                       absl::Duration timeout,
                                                       const CancelledFn& cancelled) {
  absl::MutexLock lock(&mu_);
  MESHTRAIN_RETURN_IF_ERROR(CheckSender(task, incarnation));
  auto present = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return kv_.find(key) != kv_.end(); };
  if (timeout > absl::ZeroDuration() && !present()) {
    Wait(present, env_.Now() + timeout, cancelled);
  }
  auto it = kv_.find(key);
  if (it != kv_.end()) return it->second;
  if (first_error_.has_value()) return FirstErrorAsAbort();
  if (stopping_) return absl::UnavailableError("kv get: the coordination service is stopping");
  if (timeout <= absl::ZeroDuration()) {
    return absl::NotFoundError(absl::StrCat("kv get '", key, "': no such key"));
  }
  if (cancelled && cancelled()) return absl::CancelledError("kv get: the caller went away");
  return absl::DeadlineExceededError(
      absl::StrCat("kv get '", key, "': no task set it within ", absl::FormatDuration(timeout)));
}

absl::Status CoordinationService::KvDelete(const TaskId& task, uint64_t incarnation,
                                           absl::string_view key) {
  absl::MutexLock lock(&mu_);
  MESHTRAIN_RETURN_IF_ERROR(CheckSender(task, incarnation));
  auto it = kv_.find(key);
  if (it != kv_.end()) kv_.erase(it);
  return absl::OkStatus();
}

absl::Status CoordinationService::RequestShutdown(const TaskId& task, uint64_t incarnation) {
  absl::MutexLock lock(&mu_);
  MESHTRAIN_RETURN_IF_ERROR(CheckSender(task, incarnation));
  if (!shutdown_requested_) {
    MESHTRAIN_LOG(INFO) << task.ToString() << " requested shutdown";
  }
  shutdown_requested_ = true;
  return absl::OkStatus();
}

absl::Status CoordinationService::Disconnect(const TaskId& task, uint64_t incarnation) {
  absl::MutexLock lock(&mu_);
  MESHTRAIN_RETURN_IF_ERROR(CheckSender(task, incarnation));
  TaskRecord& record = tasks_[task];
  if (record.info.state != TaskState::kLeft) {
    record.info.state = TaskState::kLeft;
    ++version_;
  }
  return absl::OkStatus();
}

std::optional<ClusterError> CoordinationService::first_error() const {
  absl::MutexLock lock(&mu_);
  return first_error_;
}

std::vector<IncarnationChange> CoordinationService::incarnation_changes() const {
  absl::MutexLock lock(&mu_);
  return changes_;
}

std::optional<std::string> CoordinationService::KvPeek(absl::string_view key) const {
  absl::MutexLock lock(&mu_);
  auto it = kv_.find(key);
  if (it == kv_.end()) return std::nullopt;
  return it->second;
}

int64_t CoordinationService::generation() const {
  absl::MutexLock lock(&mu_);
  return generation_;
}

bool CoordinationService::resumed() const {
  absl::MutexLock lock(&mu_);
  return resumed_;
}

bool CoordinationService::WaitForRegistration(const std::vector<TaskId>& tasks,
                                              absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto registered = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const TaskId& t : tasks) {
      auto it = tasks_.find(t);
      if (it == tasks_.end() || it->second.info.incarnation == 0) return false;
    }
    return true;
  };
  return env_.AwaitWithDeadline(mu_, absl::Condition(&registered), deadline);
}

bool CoordinationService::WaitForOthersToLeave(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto all_gone = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const auto& [t, r] : tasks_) {
      if (t == options_.chief || r.info.incarnation == 0) continue;
      if (r.info.state == TaskState::kConnected) return false;
    }
    return true;
  };
  return env_.AwaitWithDeadline(mu_, absl::Condition(&all_gone), deadline);
}

}  // namespace meshtrain

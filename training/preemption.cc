#include "training/preemption.h"

#include <signal.h>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

constexpr absl::string_view kPreemptedPayload = "meshtrain/preempted";

}  // namespace

absl::Status PreemptedError(absl::string_view message) {
  absl::Status status = absl::UnavailableError(message);
  status.SetPayload(kPreemptedPayload, absl::Cord("1"));
  return status;
}

bool IsPreempted(const absl::Status& status) {
  return status.GetPayload(kPreemptedPayload).has_value();
}

absl::StatusOr<std::unique_ptr<PreemptionWatcher>> PreemptionWatcher::Start() {
  std::unique_ptr<PreemptionWatcher> watcher(new PreemptionWatcher());
  MESHTRAIN_ASSIGN_OR_RETURN(watcher->signals_, SignalPipe::Install({SIGTERM}));
  watcher->thread_ = std::thread([w = watcher.get()] { w->Loop(); });
  return watcher;
}

PreemptionWatcher::~PreemptionWatcher() {
  if (thread_.joinable()) {
    signals_->Wake();
    thread_.join();
  }
}

void PreemptionWatcher::Loop() {
  while (signals_->Wait() != 0) {
    MESHTRAIN_LOG(WARNING) << "preemption: SIGTERM received; checkpointing at the next step "
                              "boundary, then exiting with status "
                           << kPreemptedExitCode << " (restart me)";
    Request();
  }
}

void PreemptionWatcher::Request() {
  requested_.store(true, std::memory_order_release);
  absl::MutexLock lock(&mu_);
  if (interrupt_ != nullptr) {
    interrupt_->Abort(PreemptedError("preempted (SIGTERM) while waiting; exiting to be restarted"));
  }
}

void PreemptionWatcher::InterruptWaits(AbortSignal* abort) {
  absl::MutexLock lock(&mu_);
  interrupt_ = abort;
  if (abort != nullptr && requested()) {
    abort->Abort(PreemptedError("preempted (SIGTERM) while waiting; exiting to be restarted"));
  }
}

absl::Status PreemptionCheckpointRequest::Poll(absl::string_view where) {
  const std::string who = where.empty() ? task_ : absl::StrCat(task_, " ", where);
  if (!sent_) {
    MESHTRAIN_ASSIGN_OR_RETURN(saved_before_, coordination_.KvTryGet(kPreemptSavedKey));
    sent_ = true;
    deadline_ = absl::Now() + kPreemptionSaveWait;
    MESHTRAIN_LOG(WARNING) << "preemption: " << task_
                           << " asks the chief for a checkpoint before it leaves";
    return coordination_.KvSet(kPreemptRequestKey, who);
  }
  MESHTRAIN_ASSIGN_OR_RETURN(std::optional<std::string> saved,
                             coordination_.KvTryGet(kPreemptSavedKey));
  if (saved.has_value() && saved != saved_before_) {
    return PreemptedError(absl::StrCat(who, " preempted (SIGTERM); the chief wrote ckpt-", *saved));
  }
  if (absl::Now() >= deadline_) {
    return PreemptedError(
        absl::StrCat(who, " preempted (SIGTERM); the chief wrote no checkpoint within ",
                     absl::FormatDuration(kPreemptionSaveWait)));
  }
  return absl::OkStatus();
}

}  // namespace meshtrain

#include "training/preemption.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

constexpr absl::string_view kPreemptedPayload = "meshtrain/preempted";
// A byte the handler never writes: tells the thread to stop.
constexpr unsigned char kStopByte = 0;

// The handler's only way out: the write end of the watcher's pipe.
volatile int g_preemption_pipe = -1;
struct sigaction g_previous_action;

void OnSigterm(int signo) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(signo);
  if (g_preemption_pipe >= 0) {
    ssize_t ignored = ::write(g_preemption_pipe, &byte, 1);
    (void)ignored;
  }
  errno = saved;
}

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
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("preemption watcher: pipe: ", std::strerror(errno)));
  }
  watcher->read_fd_ = fds[0];
  watcher->write_fd_ = fds[1];
  g_preemption_pipe = fds[1];
  struct sigaction action {};
  action.sa_handler = &OnSigterm;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  ::sigaction(SIGTERM, &action, &g_previous_action);
  watcher->thread_ = std::thread([w = watcher.get()] { w->Loop(); });
  return watcher;
}

PreemptionWatcher::~PreemptionWatcher() {
  ::sigaction(SIGTERM, &g_previous_action, nullptr);
  g_preemption_pipe = -1;
  const unsigned char stop = kStopByte;
  ssize_t ignored = ::write(write_fd_, &stop, 1);
  (void)ignored;
  if (thread_.joinable()) thread_.join();
  ::close(read_fd_);
  ::close(write_fd_);
}

void PreemptionWatcher::Loop() {
  while (true) {
    unsigned char byte = 0;
    const ssize_t n = ::read(read_fd_, &byte, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || byte == kStopByte) return;
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
    MESHTRAIN_LOG(WARNING) << "preemption: " << task_ << " asks the chief for a checkpoint before it leaves";
    return coordination_.KvSet(kPreemptRequestKey, who);
  }
  MESHTRAIN_ASSIGN_OR_RETURN(std::optional<std::string> saved, coordination_.KvTryGet(kPreemptSavedKey));
  if (saved.has_value() && saved != saved_before_) {
    return PreemptedError(absl::StrCat(who, " preempted (SIGTERM); the chief wrote ckpt-", *saved));
  }
  if (absl::Now() >= deadline_) {
    return PreemptedError(absl::StrCat(who, " preempted (SIGTERM); the chief wrote no checkpoint within ",
                                       absl::FormatDuration(kPreemptionSaveWait)));
  }
  return absl::OkStatus();
}

}  // namespace meshtrain

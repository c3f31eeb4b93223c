// Graceful preemption: SIGTERM to a `meshtrain train` process (Kubernetes,
// Slurm, systemd and `meshtrain launch` all send it before killing) asks the
// cluster to checkpoint at the next step boundary; the task then exits with
// kPreemptedExitCode, which tells an orchestrator "restart me" (the restarted
// task rejoins and resumes from that checkpoint). docs/fault_tolerance.md,
// protocol 6.
//
// PreemptionWatcher installs SIGTERM's SignalPipe and a
// thread that turns the signal into a flag the training loop polls at step
// boundaries. Outside training steps (start-up, a recovery wait) a SIGTERM
// also aborts the task's AbortSignal so that no wait outlives it. One per
// process; thread-safe.
#ifndef MESHTRAIN_TRAINING_PREEMPTION_H_
#define MESHTRAIN_TRAINING_PREEMPTION_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/base/abort_signal.h"
#include "runtime/base/signal_pipe.h"
#include "runtime/rpc/coordination_client.h"

namespace meshtrain {

// EX_TEMPFAIL: a temporary failure; run me again.
inline constexpr int kPreemptedExitCode = 75;

// A preempted task other than the chief asks the chief for a checkpoint under
// this key of the coordination service; the chief saves at its next step
// boundary, answers with the step under kPreemptSavedKey and deletes the
// request (PreemptionCheckpointRequest is the asking side).
inline constexpr absl::string_view kPreemptRequestKey = "preempt/request";
inline constexpr absl::string_view kPreemptSavedKey = "preempt/saved";
// How long the asking task waits for that checkpoint before it leaves anyway
// (its orchestrator's grace period is usually 30 s or more).
inline constexpr absl::Duration kPreemptionSaveWait = absl::Seconds(20);

// A status that says "this task stopped because it was preempted".
absl::Status PreemptedError(absl::string_view message);
bool IsPreempted(const absl::Status& status);

// The asking side, for a preempted worker or ps task. Poll() sends the
// request the first time, then answers OK while the chief has not saved, and
// a PreemptedError (the task leaves) once kPreemptSavedKey changed after the
// request (a checkpoint taken after it, whoever asked) or kPreemptionSaveWait
// passed. `where` says where the task stands ("at step 120"; may be empty).
class PreemptionCheckpointRequest {
 public:
  PreemptionCheckpointRequest(CoordinationClient& coordination, std::string task)
      : coordination_(coordination), task_(std::move(task)) {}

  absl::Status Poll(absl::string_view where);

 private:
  CoordinationClient& coordination_;
  const std::string task_;
  bool sent_ = false;
  std::optional<std::string> saved_before_;
  absl::Time deadline_;
};

class PreemptionWatcher {
 public:
  static absl::StatusOr<std::unique_ptr<PreemptionWatcher>> Start();
  ~PreemptionWatcher();  // restores SIGTERM's previous handler, joins the thread
  PreemptionWatcher(const PreemptionWatcher&) = delete;
  PreemptionWatcher& operator=(const PreemptionWatcher&) = delete;

  bool requested() const { return requested_.load(std::memory_order_acquire); }
  // While `abort` is set (not null), a SIGTERM also aborts it with a
  // PreemptedError: the task is waiting, not training. `abort` must outlive
  // the setting.
  void InterruptWaits(AbortSignal* abort);
  // For tests and the watcher thread: as if SIGTERM arrived.
  void Request();

 private:
  PreemptionWatcher() = default;
  void Loop();

  std::unique_ptr<SignalPipe> signals_;
  std::thread thread_;
  std::atomic<bool> requested_{false};
  absl::Mutex mu_;
  AbortSignal* interrupt_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_PREEMPTION_H_

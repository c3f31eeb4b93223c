#include "training/serving_task.h"

#include <optional>
#include <string>

#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/rpc/coordination_service.h"

namespace meshtrain {
namespace {

// The poll of a serving task that honours SIGTERM: asks the chief for a
// checkpoint and, once it is written (or the wait is over), reports the
// departure as the cluster's first error, so every task stops at once and
// recovers when this one is back.
class ServingPreemption {
 public:
  ServingPreemption(Mesh& mesh, PreemptionWatcher& watcher)
      : mesh_(mesh), watcher_(watcher), request_(mesh.coordination(), mesh.task().ToString()) {}

  absl::Status Poll() {
    if (!watcher_.requested()) return absl::OkStatus();
    const absl::Status status = request_.Poll("");
    if (IsPreempted(status)) (void)mesh_.coordination().ReportError(status);
    return status;
  }

 private:
  Mesh& mesh_;
  PreemptionWatcher& watcher_;
  PreemptionCheckpointRequest request_;
};

}  // namespace

absl::Status RunServingTask(Mesh& mesh, StrategyBuilder& strategy, absl::Duration startup_timeout,
                            absl::Duration recovery_timeout, PreemptionWatcher* preemption) {
  std::optional<ServingPreemption> preempted;
  std::function<absl::Status()> poll;
  if (preemption != nullptr) {
    preempted.emplace(mesh, *preemption);
    poll = [&preempted] { return preempted->Poll(); };
  }
  while (true) {
    // SIGTERM is the poll's to handle while serving (the chief's save needs
    // this task), and ends the waits of a recovery.
    if (preemption != nullptr) preemption->InterruptWaits(nullptr);
    const absl::Status status = strategy.Serve(mesh, startup_timeout, poll);
    if (preemption != nullptr) preemption->InterruptWaits(&mesh.abort_signal());
    if (status.ok() || IsPreempted(status)) return status;
    if (preemption != nullptr && preemption->requested()) return PreemptedError(status.message());
    const bool recoverable = IsRecoverable(status) || mesh.abort_signal().aborted();
    if (recovery_timeout <= absl::ZeroDuration() || !recoverable) return status;
    MESHTRAIN_LOG(ERROR) << mesh.task().ToString() << " stopped serving: " << status
                         << "; recovering: waiting up to " << absl::FormatDuration(recovery_timeout)
                         << " for the cluster to come back";
    if (!mesh.abort_signal().aborted()) (void)mesh.coordination().ReportError(status);
    const absl::Status rejoined = mesh.Rejoin(recovery_timeout);
    if (!rejoined.ok()) {
      if (preemption != nullptr && preemption->requested())
        return PreemptedError(rejoined.message());
      return rejoined;
    }
    MESHTRAIN_LOG(INFO) << mesh.task().ToString() << " serves generation " << mesh.generation();
  }
}

}  // namespace meshtrain

// CoordinationClient: one task's handle on the chief's coordination service
// (runtime/rpc/coordination_service.h gives the protocol). It registers the
// task, sends heartbeats from its own thread, and offers barriers, the
// key-value store, error reporting and shutdown to the rest of the runtime.
//
// What the heartbeat thread does with the replies:
//  - a newer task table goes to the PeerDirectory (restarts are noted there);
//  - the cluster's first error aborts this task's AbortSignal (kAborted, with
//    the failing task's message), so every wait in the process stops;
//  - a shutdown request is remembered and wakes WaitForShutdown();
//  - no successful reply for longer than the heartbeat timeout aborts with
//    kUnavailable "chief:0 (addr) is unreachable" (unless shutdown was seen);
//  - a rejection (stale incarnation, unknown task) aborts with that reason.
//
// Every call has a deadline and ends early when the AbortSignal fires. No
// generated proto type appears here. Thread-safe; StartHeartbeats() starts the
// thread, StopHeartbeats() or the destructor joins it.
#ifndef MESHTRAIN_RUNTIME_RPC_COORDINATION_CLIENT_H_
#define MESHTRAIN_RUNTIME_RPC_COORDINATION_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/base/abort_signal.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/rpc/peer_directory.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace meshtrain {

struct CoordinationClientOptions {
  TaskId task;
  uint64_t incarnation = 0;
  std::string host_identity;
  ClusterSpec cluster;
  // To the chief's server (an in-process channel on the chief itself).
  std::shared_ptr<grpc::Channel> channel;
  absl::Duration heartbeat_interval = absl::Seconds(1);
  absl::Duration heartbeat_timeout = absl::Seconds(5);
  // Deadline of the calls that do not wait for other tasks (KvSet, ReportError...).
  absl::Duration rpc_timeout = absl::Seconds(30);
  AbortSignal* abort = nullptr;          // required; must outlive the client
  std::shared_ptr<PeerDirectory> peers;  // required; Register and heartbeats fill it
};

class CoordinationClient {
 public:
  static absl::StatusOr<std::unique_ptr<CoordinationClient>> Create(
      CoordinationClientOptions options);
  ~CoordinationClient();
  CoordinationClient(const CoordinationClient&) = delete;
  CoordinationClient& operator=(const CoordinationClient&) = delete;

  const TaskId& task() const { return options_.task; }
  uint64_t incarnation() const { return options_.incarnation; }
  // "chief:0 (10.0.0.1:2222)".
  const std::string& chief_name() const { return chief_name_; }

  // Registers this task and blocks until every expected task has registered,
  // retrying while the chief is unreachable. DeadlineExceeded past
  // `startup_timeout` names the tasks that never joined (or the chief, if it
  // never answered).
  absl::Status Register(absl::Duration startup_timeout);
  // Registers again after this task's work was aborted, to join the cluster's
  // recovery (CoordinationService protocol step 6), retrying while the chief is
  // unreachable (it may be restarting) until `timeout`. Heartbeats must be
  // stopped and the abort signal re-armed first (Mesh::Rejoin does both).
  // FailedPrecondition if the cluster failed for good; DeadlineExceeded names
  // the tasks that did not come back.
  absl::Status Rejoin(absl::Duration timeout);
  // Recoveries completed by the chief's service, as of the last registration.
  int64_t generation() const;
  // The training workers that generation goes on without (elastic membership,
  // coordination_service.h step 7), as of the last registration.
  std::vector<TaskId> departed() const;

  void StartHeartbeats();
  void StopHeartbeats();

  // Blocks until every training worker (chief and workers) reached barrier
  // `name`, or until every task of `tasks`. A name may be used again once passed.
  absl::Status Barrier(absl::string_view name, absl::Time deadline);
  absl::Status Barrier(absl::string_view name, const std::vector<TaskId>& tasks,
                       absl::Time deadline);

  absl::Status KvSet(absl::string_view key, absl::string_view value);
  // Waits until some task set `key`, or DeadlineExceeded at `deadline`.
  absl::StatusOr<std::string> KvGet(absl::string_view key, absl::Time deadline);
  // The value if set now, else nullopt.
  absl::StatusOr<std::optional<std::string>> KvTryGet(absl::string_view key);
  absl::Status KvDelete(absl::string_view key);

  // Records `error` as this task's failure with the chief (the first one of
  // the cluster aborts every task) and aborts this task's own signal with the
  // cluster's first error: `error` itself, or an earlier one of another task
  // (then kAborted naming that task).
  absl::Status ReportError(const absl::Status& error);

  // Asks every task to shut down; they learn it from their next heartbeat.
  absl::Status RequestShutdown();
  // Blocks until shutdown was requested (OK), the task aborted (its status),
  // or `deadline`. What a ps task does instead of serving forever.
  absl::Status WaitForShutdown(absl::Time deadline);
  bool shutdown_requested() const;

  // Leaves the cluster gracefully: the chief will not count this task as dead.
  absl::Status Disconnect();

 private:
  struct Rpc;    // the generated stub
  struct State;  // shared with abort callbacks

  explicit CoordinationClient(CoordinationClientOptions options);
  absl::Status RegisterWithChief(absl::Duration timeout, bool rejoin);
  void HeartbeatLoop();
  // KvGet with the chief waiting up to `wait_ms` (0: not at all).
  absl::StatusOr<std::string> GetKey(absl::string_view key, int64_t wait_ms, absl::Time deadline);
  // Sends one heartbeat; false once the chief rejected this task for good.
  bool HeartbeatOnce(absl::Time* last_success);
  // The deadline a waiting call asks the chief to answer by: a little before
  // the caller's, so the chief's explanation arrives in time.
  static absl::Time ServerDeadline(absl::Time deadline);

  const CoordinationClientOptions options_;
  const std::string chief_name_;
  std::unique_ptr<Rpc> rpc_;
  std::shared_ptr<State> state_;
  int abort_callback_ = -1;
  std::thread heartbeat_thread_;
  std::atomic<int64_t> generation_{0};
  mutable absl::Mutex departed_mu_;
  std::vector<TaskId> departed_ ABSL_GUARDED_BY(departed_mu_);
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_COORDINATION_CLIENT_H_

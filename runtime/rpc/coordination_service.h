// CoordinationService: the cluster's coordinator, hosted by the chief
// (ClusterSpec::Chief()) as in TensorFlow's coordination service. This class
// holds the state and the rules; runtime/rpc/server.cc exposes it as the gRPC
// service Coordination (proto/coordination.proto).
//
// Protocol, as the chief sees it:
//  1. Every task registers with its incarnation (a random 64-bit number per
//     process start). Register blocks until every expected task (all but the
//     evaluator, which is optional) has registered; past the caller's wait it
//     fails naming each missing task and its address. A known task that
//     registers with a new incarnation restarted: the change is recorded, but
//     only once its current incarnation has stopped. Nothing authenticates a
//     Register, so a restart claimed for a task that is alive is refused
//     before anything changes (no recovery, no task table in the reply):
//     Unavailable ("retry") while the current incarnation is waiting in a call
//     or sent a heartbeat within `restart_silence`; a real restart (its
//     previous life was SIGKILLed and fell silent at once) succeeds on a retry
//     a moment later. A task declared dead or gone registers at once. A new
//     incarnation of the chief is always refused: a restarted chief hosts a
//     new service.
//     Errors never quote an incarnation or the cluster fingerprint: the
//     incarnation authorises every later call, and the fingerprint a Register.
//  2. After the rendezvous every task sends heartbeats. A task silent for
//     longer than `heartbeat_timeout` is marked dead; unless it is the
//     evaluator or an independent task, that becomes the cluster's first
//     error. While training runs (SetTrainingStepTime), the stuck rule
//     tightens this: a task is *stuck* when it is silent for longer than
//     StuckSilence(): alive as far as the network shows (a task that exited
//     would have reset its connections and been reported at once) but making
//     no progress (SIGSTOP, a frozen host or VM). It is marked dead the same
//     way, with a message that says it is stuck, not gone, so that every task
//     knows within StuckBound() = max(stuck_floor, stuck_step_multiple x the
//     median step time) of the moment it stopped.
//  3. ReportError records the first error of the cluster (later ones are
//     logged only). Heartbeat replies carry it, so every task aborts
//     ("first error wins and aborts the peers").
//  4. Barrier, KvSet/KvGet/KvDelete serve the tasks; every wait ends at its
//     deadline, at the first error, or when the service stops.
//  5. RequestShutdown raises a flag the heartbeat replies carry; tasks then
//     Disconnect (leave gracefully, never counted as dead).
//  6. Recovery (docs/fault_tolerance.md, "Synchronous worker dies"). After
//     the rendezvous, a Register with `rejoin` (a survivor whose work was
//     aborted) or from a new incarnation of a known task (a restarted one)
//     that is not independent, or of any task while a first error stands,
//     joins the recovery of the current generation G: it records a first error if none is recorded
//     (so every task aborts), marks the task as rejoined for G + 1 and waits. When every task but
//     the evaluator has rejoined (the dead ones come back as new incarnations), the last one in
//     completes it: the generation becomes G + 1, the first error is cleared, heartbeat clocks
//     restart, and every waiting Register returns the new generation. Tasks waiting there are not
//     declared dead for their silence. A first error whose code is not
//     recoverable (IsRecoverable: e.g. a bad config) makes the cluster fail
//     for good: rejoining answers FailedPrecondition with that error.
//     Before the rendezvous a rejoin is a plain registration (the chief
//     itself restarted and this service is new); resumed() then says so.
//  7. Elastic membership (options.elastic, docs/fault_tolerance.md 5.9). A
//     recovery also completes without the tasks that did not rejoin, once
//     `rejoin_grace` has passed since it began, when every one of them is a
//     training worker other than the chief or a ps task, none of them is
//     alive (each is declared dead or silent for two heartbeat intervals, and
//     not waiting in a call), at least `min_workers` training workers and at
//     least one ps task (if the cluster has any) rejoined. They
//     *depart*: View::departed lists them for the generation, their calls fail
//     with Aborted, and they are neither waited for nor declared dead again.
//     A departed task that registers again (restarted: a new incarnation)
//     *joins*: it takes part in a recovery like any restart (the cluster's
//     first error if none stands, so every member aborts its step and
//     rejoins), which completes with it unless that would exceed
//     `max_workers` (then FailedPrecondition). With `initial_workers`, the
//     rendezvous (step 1) completes without the training workers past the
//     first `initial_workers`: they start departed and join the same way.
// Requests from an unknown task fail with InvalidArgument, from an earlier
// incarnation of a task with Aborted.
//
// Thread-safe; Start() runs the liveness monitor thread, Stop() joins it.
#ifndef MESHTRAIN_RUNTIME_RPC_COORDINATION_SERVICE_H_
#define MESHTRAIN_RUNTIME_RPC_COORDINATION_SERVICE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/base/env.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/rpc/peer_directory.h"

namespace meshtrain {

// A canonical text of a ClusterSpec: equal for equal clusters.
std::string ClusterFingerprint(const ClusterSpec& cluster);

struct CoordinationServiceOptions {
  ClusterSpec cluster;
  TaskId chief;  // the task hosting the service; it is never declared dead
  absl::Duration heartbeat_timeout = absl::Seconds(5);
  // Tasks whose failure concerns nobody else (steps 2 and 6): one declared
  // dead is only logged, and one that restarts registers again without a
  // recovery. Parameter servers: the workers but the chief, each training on
  // its own. Synchronous training: none; any task's death or restart (it died
  // mid-step) makes every task recover.
  std::set<TaskId> independent_tasks;
  // Step 1: a restart (new incarnation) of a task is accepted only once the
  // current incarnation has sent no heartbeat for longer than this (or was
  // declared dead, or left). The mesh uses 2 s or twice the clients' heartbeat
  // interval if longer: a live task is never this silent, and a SIGKILLed one
  // is after a moment.
  absl::Duration restart_silence = absl::Seconds(2);
  // The clients' heartbeat interval: the stuck rule leaves room for one
  // heartbeat in flight and one reply to carry the news.
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // The stuck rule's bound: max(stuck_floor, stuck_step_multiple x median
  // step). A zero floor turns the rule off.
  absl::Duration stuck_floor = absl::Seconds(2);
  int stuck_step_multiple = 10;
  // Step 7: a recovery may complete without dead training workers.
  struct Elastic {
    bool enabled = false;
    absl::Duration rejoin_grace = absl::Seconds(3);
    int min_workers = 1;  // the fewest training workers a generation may have
    int max_workers = 0;  // the most; 0: every training worker of the cluster
    // > 0: the rendezvous completes once the first this many training
    // workers (TrainingWorkers order) and every other task but the evaluator
    // are in; the remaining workers start departed and join later.
    int initial_workers = 0;
  } elastic;
  // Its clock (heartbeat silence, every wait's deadline); null: Env::Default().
  // A fake clock stands still, so waits check `cancelled` only as it moves.
  Env* env = nullptr;
};

// Errors after which restarting the failed task and restoring a checkpoint
// can help: a peer went away or timed out (Unavailable, DeadlineExceeded,
// Aborted, Cancelled) or a transport lost its framing (Internal). Others (a
// bad config, a shape mismatch, a corrupt checkpoint) fail the same way again.
bool IsRecoverable(const absl::Status& status);

// The first error of the cluster: the task that failed and what it said.
struct ClusterError {
  TaskId source;
  absl::Status status;
  bool recoverable = true;
};

class CoordinationService {
 public:
  // True while the waiting request's caller is still there (gRPC: not cancelled).
  using CancelledFn = std::function<bool()>;

  struct Registration {
    TaskId task;
    uint64_t incarnation = 0;
    std::string host_identity;
    std::string cluster_fingerprint;
    absl::Duration wait;             // how long to wait for the others
    absl::Duration startup_timeout;  // quoted in the error
    bool rejoin = false;             // step 6
  };
  struct View {
    int64_t version = 0;
    std::vector<PeerInfo> tasks;
    int64_t generation = 0;
    // Training workers and ps tasks not in this generation (step 7), in TaskId order.
    std::vector<TaskId> departed;
  };
  struct HeartbeatReply {
    int64_t version = 0;
    std::optional<std::vector<PeerInfo>> tasks;  // when the caller's version is old
    std::optional<ClusterError> first_error;
    bool shutdown_requested = false;
  };

  static absl::StatusOr<std::unique_ptr<CoordinationService>> Create(
      CoordinationServiceOptions options);
  ~CoordinationService();
  CoordinationService(const CoordinationService&) = delete;
  CoordinationService& operator=(const CoordinationService&) = delete;

  void Start();
  // Ends every wait with Unavailable and joins the monitor thread. Idempotent.
  void Stop();

  absl::StatusOr<View> Register(const Registration& registration, const CancelledFn& cancelled);
  absl::StatusOr<HeartbeatReply> Heartbeat(const TaskId& task, uint64_t incarnation,
                                           int64_t known_version);
  absl::Status ReportError(const TaskId& task, uint64_t incarnation, const absl::Status& error);
  // `participants` must include `task`; a later round of the same id must name
  // the same participants.
  absl::Status Barrier(const TaskId& task, uint64_t incarnation, absl::string_view id,
                       const std::vector<TaskId>& participants, absl::Duration timeout,
                       const CancelledFn& cancelled);
  absl::Status KvSet(const TaskId& task, uint64_t incarnation, absl::string_view key,
                     absl::string_view value);
  // Waits up to `timeout` for the key; NotFound at once for a zero timeout.
  absl::StatusOr<std::string> KvGet(const TaskId& task, uint64_t incarnation, absl::string_view key,
                                    absl::Duration timeout, const CancelledFn& cancelled);
  absl::Status KvDelete(const TaskId& task, uint64_t incarnation, absl::string_view key);
  absl::Status RequestShutdown(const TaskId& task, uint64_t incarnation);
  absl::Status Disconnect(const TaskId& task, uint64_t incarnation);

  // Declares dead every task silent for longer than heartbeat_timeout (or,
  // while training, StuckSilence()) by the Env's clock, as the monitor thread
  // does every min(heartbeat_timeout, heartbeat_interval) / 4.
  void CheckHeartbeats();

  // The chief's training loop reports its median step time while training
  // runs; zero (the default, and at the end of each life) turns the stuck
  // rule off. Returns the bound now in force (zero: off).
  absl::Duration SetTrainingStepTime(absl::Duration median_step);
  // max(stuck_floor, stuck_step_multiple x median_step): how soon every task
  // learns of a stuck task, from its last heartbeat.
  absl::Duration StuckBound(absl::Duration median_step) const;
  // The silence that marks a task stuck: the bound less one heartbeat
  // interval (the reply that tells the others) and one monitor period, at
  // least three heartbeat intervals.
  absl::Duration StuckSilence(absl::Duration median_step) const;

  // Observers, for the chief's Stop, diagnostics and tests.
  std::optional<ClusterError> first_error() const;
  // The key's value, read in-process by the chief without a call (its step
  // loop polls requests from other tasks cheaply); nullopt if unset.
  std::optional<std::string> KvPeek(absl::string_view key) const;
  std::vector<IncarnationChange> incarnation_changes() const;
  // Recoveries completed (step 6).
  int64_t generation() const;
  // True if tasks rejoined before the rendezvous: this service replaced one
  // that died with its chief, and the cluster resumed rather than started.
  bool resumed() const;
  // Blocks until every task of `tasks` has registered, or `deadline`.
  bool WaitForRegistration(const std::vector<TaskId>& tasks, absl::Time deadline) const;
  // Blocks until every other registered task has left or died, or `deadline`.
  bool WaitForOthersToLeave(absl::Time deadline) const;

 private:
  struct TaskRecord {
    PeerInfo info;
    absl::Time last_heartbeat;
    int64_t rejoined_generation = 0;  // the generation it joined the recovery of + 1
    int waiting = 0;                  // Register calls waiting (rendezvous or recovery)
  };
  struct BarrierState {
    std::vector<TaskId> participants;  // sorted
    std::set<TaskId> arrived;
    int64_t generation = 0;
  };

  explicit CoordinationService(CoordinationServiceOptions options);

  void MonitorLoop();
  absl::Duration MonitorPeriod() const;
  void CheckLiveness() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckSender(const TaskId& task, uint64_t incarnation) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DepartedError(const TaskId& task) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A join (or rejoin) after the chief requested shutdown: nothing is left to train.
  absl::Status FinishedError(const TaskId& task) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AllExpectedRegistered() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Step 7's start: the training workers past elastic.initial_workers, if
  // every other expected task is in (else empty: not ready).
  std::vector<TaskId> StartsWithout() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<PeerInfo> Snapshot() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status FirstErrorAsAbort() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Step 6 for a registered task; `restarted` when it is a new incarnation.
  absl::StatusOr<View> JoinRecovery(TaskRecord& record, bool restarted, absl::Duration wait,
                                    const CancelledFn& cancelled)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Step 1's restart rule: OK if `record`'s current incarnation has stopped.
  absl::Status CheckRestart(const TaskRecord& record) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AllRejoined(int64_t target) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Step 7: the tasks the recovery of `target` may go on without (empty when
  // it may not: not elastic, within the grace, one of them alive or neither a
  // worker nor a ps, too few left).
  std::vector<TaskId> Departing(int64_t target) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Step 7: a departed task registering again; FailedPrecondition past max_workers.
  absl::Status Return(const TaskId& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int NumTrainingMembers() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Step 6's last one in completes the recovery of `target` for everyone,
  // with step 7's departures where they are due; nothing while a task that
  // may still come is on its way.
  void CompleteRecovery(int64_t target) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  View CurrentView() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits for `done` (or stop or the first error, which callers check) until
  // `deadline`, looking at `cancelled` every 100 ms. Returns done().
  bool Wait(const std::function<bool()>& done, absl::Time deadline, const CancelledFn& cancelled)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string Describe(const TaskId& task) const { return DescribeTask(options_.cluster, task); }

  const CoordinationServiceOptions options_;
  Env& env_;
  const std::string fingerprint_;
  std::thread monitor_;

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<TaskId, TaskRecord> tasks_ ABSL_GUARDED_BY(mu_);
  int64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  bool rendezvous_done_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<ClusterError> first_error_ ABSL_GUARDED_BY(mu_);
  bool shutdown_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::string, std::less<>> kv_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, BarrierState, std::less<>> barriers_ ABSL_GUARDED_BY(mu_);
  std::vector<IncarnationChange> changes_ ABSL_GUARDED_BY(mu_);
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool resumed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration median_step_ ABSL_GUARDED_BY(mu_);  // zero: the stuck rule is off
  // Step 7: the tasks away now (departed, not back), and the set the current
  // generation was formed without (what View::departed says).
  std::map<TaskId, uint64_t> absent_ ABSL_GUARDED_BY(mu_);  // task -> its departed incarnation
  std::vector<TaskId> departed_ ABSL_GUARDED_BY(mu_);
  int64_t recovery_target_ ABSL_GUARDED_BY(mu_) = 0;  // the recovery in progress
  absl::Time recovery_began_ ABSL_GUARDED_BY(mu_);
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_COORDINATION_SERVICE_H_

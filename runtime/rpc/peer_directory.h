// PeerDirectory: this task's view of the cluster: every task's address, current
// incarnation, host identity and state, as the chief's coordination service
// last reported them (at registration, then in heartbeat replies whenever its
// version changes). The data service checks a chunk's source incarnation here;
// the transports read destination incarnations and host identities here. When a
// known task shows up with a new incarnation (it restarted), the change is
// recorded and kept for the recovery logic. Thread-safe.
#ifndef MESHTRAIN_RUNTIME_RPC_PEER_DIRECTORY_H_
#define MESHTRAIN_RUNTIME_RPC_PEER_DIRECTORY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/cluster/cluster_spec.h"

namespace meshtrain {

enum class TaskState {
  kUnregistered,  // never registered
  kConnected,     // registered, sending heartbeats
  kDead,          // silent past the heartbeat timeout
  kLeft,          // left gracefully
};
absl::string_view TaskStateName(TaskState state);

struct PeerInfo {
  TaskId task;
  uint64_t incarnation = 0;  // 0 while unregistered
  std::string address;
  std::string host_identity;
  TaskState state = TaskState::kUnregistered;
};

struct IncarnationChange {
  TaskId task;
  uint64_t old_incarnation = 0;
  uint64_t new_incarnation = 0;
};

// "worker:2 (127.0.0.1:23456)": how errors name a task.
std::string DescribeTask(const ClusterSpec& cluster, const TaskId& task);
// "a", "a and b", "a, b and c".
std::string JoinWithAnd(const std::vector<std::string>& items);

class PeerDirectory {
 public:
  // Every task of `cluster`, unregistered, at its ClusterSpec address.
  explicit PeerDirectory(ClusterSpec cluster);

  const ClusterSpec& cluster() const { return cluster_; }
  std::string Describe(const TaskId& task) const { return DescribeTask(cluster_, task); }

  // Replaces the view with version `version` unless a newer one is held. A task
  // whose nonzero incarnation differs from the held nonzero one is recorded as
  // restarted. Unknown tasks in `peers` are ignored.
  void Update(int64_t version, const std::vector<PeerInfo>& peers);
  // The same, whatever version is held: after registering again with a chief
  // that restarted (its versions start from 0 again).
  void Replace(int64_t version, const std::vector<PeerInfo>& peers);

  int64_t version() const;
  std::optional<PeerInfo> Find(const TaskId& task) const;
  // 0 for an unknown or unregistered task.
  uint64_t incarnation(const TaskId& task) const;
  std::vector<PeerInfo> All() const;
  std::vector<IncarnationChange> incarnation_changes() const;
  // Blocks until `task` is known at `incarnation`, or `deadline`; returns whether it is.
  bool WaitForIncarnation(const TaskId& task, uint64_t incarnation, absl::Time deadline) const;

 private:
  void Apply(int64_t version, const std::vector<PeerInfo>& peers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ClusterSpec cluster_;
  mutable absl::Mutex mu_;
  int64_t version_ ABSL_GUARDED_BY(mu_) = -1;
  std::map<TaskId, PeerInfo> peers_ ABSL_GUARDED_BY(mu_);
  std::vector<IncarnationChange> changes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_PEER_DIRECTORY_H_

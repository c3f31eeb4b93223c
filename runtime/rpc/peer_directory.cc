#include "runtime/rpc/peer_directory.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/logging.h"

namespace meshtrain {

absl::string_view TaskStateName(TaskState state) {
  switch (state) {
    case TaskState::kUnregistered:
      return "unregistered";
    case TaskState::kConnected:
      return "connected";
    case TaskState::kDead:
      return "dead";
    case TaskState::kLeft:
      return "left";
  }
  return "unknown";
}

std::string DescribeTask(const ClusterSpec& cluster, const TaskId& task) {
  if (task.index < 0 || task.index >= cluster.num_tasks(task.job)) {
    return absl::StrCat(task.ToString(), " (not in the cluster)");
  }
  return absl::StrCat(task.ToString(), " (", cluster.address(task), ")");
}

std::string JoinWithAnd(const std::vector<std::string>& items) {
  if (items.empty()) return "";
  if (items.size() == 1) return items[0];
  std::vector<std::string> head(items.begin(), items.end() - 1);
  return absl::StrCat(absl::StrJoin(head, ", "), " and ", items.back());
}

PeerDirectory::PeerDirectory(ClusterSpec cluster) : cluster_(std::move(cluster)) {
  for (const TaskId& task : cluster_.AllTasks()) {
    PeerInfo info;
    info.task = task;
    info.address = cluster_.address(task);
    peers_.emplace(task, std::move(info));
  }
}

void PeerDirectory::Update(int64_t version, const std::vector<PeerInfo>& peers) {
  absl::MutexLock lock(&mu_);
  if (version <= version_) return;
  Apply(version, peers);
}

void PeerDirectory::Replace(int64_t version, const std::vector<PeerInfo>& peers) {
  absl::MutexLock lock(&mu_);
  Apply(version, peers);
}

void PeerDirectory::Apply(int64_t version, const std::vector<PeerInfo>& peers) {
  version_ = version;
  for (const PeerInfo& peer : peers) {
    auto it = peers_.find(peer.task);
    if (it == peers_.end()) continue;
    const uint64_t old_incarnation = it->second.incarnation;
    if (old_incarnation != 0 && peer.incarnation != 0 && old_incarnation != peer.incarnation) {
      MESHTRAIN_LOG(WARNING) << DescribeTask(cluster_, peer.task) << " restarted: incarnation "
                             << old_incarnation << " -> " << peer.incarnation;
      changes_.push_back({peer.task, old_incarnation, peer.incarnation});
    }
    it->second = peer;
  }
}

int64_t PeerDirectory::version() const {
  absl::MutexLock lock(&mu_);
  return version_;
}

std::optional<PeerInfo> PeerDirectory::Find(const TaskId& task) const {
  absl::MutexLock lock(&mu_);
  auto it = peers_.find(task);
  if (it == peers_.end()) return std::nullopt;
  return it->second;
}

uint64_t PeerDirectory::incarnation(const TaskId& task) const {
  absl::MutexLock lock(&mu_);
  auto it = peers_.find(task);
  return it == peers_.end() ? 0 : it->second.incarnation;
}

std::vector<PeerInfo> PeerDirectory::All() const {
  absl::MutexLock lock(&mu_);
  std::vector<PeerInfo> all;
  for (const auto& [task, info] : peers_) all.push_back(info);
  return all;
}

std::vector<IncarnationChange> PeerDirectory::incarnation_changes() const {
  absl::MutexLock lock(&mu_);
  return changes_;
}

bool PeerDirectory::WaitForIncarnation(const TaskId& task, uint64_t incarnation,
                                       absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto known = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = peers_.find(task);
    return it != peers_.end() && it->second.incarnation == incarnation;
  };
  return mu_.AwaitWithDeadline(absl::Condition(&known), deadline);
}

}  // namespace meshtrain

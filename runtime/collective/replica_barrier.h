// ReplicaBarrier: a reusable barrier for the replica threads of one process
// (CrossDeviceOps' phases). A party spins briefly (only when every party can
// have its own core), then blocks on an absl::Mutex condition. A party that
// reaches its deadline breaks the barrier, naming the parties that never came;
// an abort breaks it too. Once broken every Arrive fails with that status:
// build a new barrier to recover. Each party's time spent waiting for the
// others is counted (blocked()), for the strategies' step timing. Thread-safe;
// `abort` (nullable) must outlive it.
#ifndef MESHTRAIN_RUNTIME_COLLECTIVE_REPLICA_BARRIER_H_
#define MESHTRAIN_RUNTIME_COLLECTIVE_REPLICA_BARRIER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/base/abort_signal.h"

namespace meshtrain {

class ReplicaBarrier {
 public:
  ReplicaBarrier(int parties, AbortSignal* abort = nullptr);
  ~ReplicaBarrier();
  ReplicaBarrier(const ReplicaBarrier&) = delete;
  ReplicaBarrier& operator=(const ReplicaBarrier&) = delete;

  // Returns once all parties (0 .. parties-1, each once per phase) arrived.
  absl::Status Arrive(int party, absl::Time deadline);

  // Fails every current and later Arrive with `status` (first one wins).
  void Break(absl::Status status);

  // How long `party` has waited in Arrive for the others, in all; readable
  // from any thread.
  absl::Duration blocked(int party) const {
    return absl::Nanoseconds(blocked_ns_[party].load(std::memory_order_relaxed));
  }

 private:
  const int parties_;
  AbortSignal* const abort_;
  int abort_callback_ = -1;
  absl::Duration spin_;
  std::atomic<uint64_t> generation_seen_{0};  // mirrors generation_ for spinning
  std::atomic<bool> broken_flag_{false};
  std::unique_ptr<std::atomic<int64_t>[]> blocked_ns_;  // per party
  absl::Mutex mu_;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  int arrived_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<bool> here_ ABSL_GUARDED_BY(mu_);
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_COLLECTIVE_REPLICA_BARRIER_H_

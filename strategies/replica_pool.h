// ReplicaPool: one thread per replica, started once, each running the step's
// work for its replica while the caller waits. Waiting blocks on a condition
// (no spinning), and a thread is pinned to a core where the machine has enough,
// so N replicas use N cores without the OS shuffling them. With one replica the
// work runs on the caller's thread. Thread-safe for one caller at a time.
#ifndef MESHTRAIN_STRATEGIES_REPLICA_POOL_H_
#define MESHTRAIN_STRATEGIES_REPLICA_POOL_H_

#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace meshtrain {

class ReplicaPool {
 public:
  // `pin` asks to pin thread i to core i % cores (ignored where it fails).
  ReplicaPool(int num_replicas, bool pin);
  ~ReplicaPool();
  ReplicaPool(const ReplicaPool&) = delete;
  ReplicaPool& operator=(const ReplicaPool&) = delete;

  int size() const { return num_replicas_; }

  // Runs work(i) for every replica i concurrently; returns the first error by
  // replica order once every replica has finished.
  absl::Status RunOnAll(const std::function<absl::Status(int replica)>& work);

 private:
  void ThreadMain(int replica);

  const int num_replicas_;
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  const std::function<absl::Status(int)>* work_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<absl::Status> results_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_STRATEGIES_REPLICA_POOL_H_

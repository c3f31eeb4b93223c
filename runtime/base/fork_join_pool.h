// ForkJoinPool: runs fn(i) for every i of [0, n) at once and waits for all,
// the runtime's one fork-join mechanism (a step's replicas, a worker's calls
// to every ps). The threads are started once and block between calls (no
// spinning: on a 2-core machine a spinning thread steals the working core).
// Errors: the first by index order, once every index has finished.
// Run() is for one caller at a time; RunOnNewThreads() for anyone, anytime.
#ifndef MESHTRAIN_RUNTIME_BASE_FORK_JOIN_POOL_H_
#define MESHTRAIN_RUNTIME_BASE_FORK_JOIN_POOL_H_

#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace meshtrain {

class ForkJoinPool {
 public:
  using Fn = std::function<absl::Status(int index)>;
  struct Options {
    // Index 0 runs on the caller's thread (which would otherwise only wait);
    // otherwise every index has a thread of its own.
    bool caller_runs_first = false;
    // Pin the thread of index i to core i where the machine has n cores or
    // more, so that the OS does not shuffle them (ignored where it fails).
    bool pin = false;
  };

  // n <= 1: no thread; fn(0) runs on the caller's.
  ForkJoinPool(int n, Options options);
  ~ForkJoinPool();
  ForkJoinPool(const ForkJoinPool&) = delete;
  ForkJoinPool& operator=(const ForkJoinPool&) = delete;

  int size() const { return n_; }
  absl::Status Run(const Fn& fn);

  // fn(i) for every i at once, i > 0 on threads made for this call.
  static absl::Status RunOnNewThreads(int n, const Fn& fn);

 private:
  void ThreadMain(int index);

  const int n_;
  const int first_threaded_;  // 1 when the caller runs index 0
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  const Fn* fn_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<absl::Status> results_;  // index i written by its runner, read once running_ == 0
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_BASE_FORK_JOIN_POOL_H_

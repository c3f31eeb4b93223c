#include "strategies/replica_pool.h"

#include <pthread.h>
#include <sched.h>

namespace meshtrain {

ReplicaPool::ReplicaPool(int num_replicas, bool pin)
    : num_replicas_(num_replicas), results_(num_replicas) {
  if (num_replicas_ <= 1) return;
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  for (int i = 0; i < num_replicas_; ++i) {
    threads_.emplace_back([this, i] { ThreadMain(i); });
    if (pin && cores >= num_replicas_) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(i % cores, &set);
      pthread_setaffinity_np(threads_.back().native_handle(), sizeof(set), &set);
    }
  }
}

ReplicaPool::~ReplicaPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

absl::Status ReplicaPool::RunOnAll(const std::function<absl::Status(int)>& work) {
  if (num_replicas_ <= 1) return work(0);
  absl::MutexLock lock(&mu_);
  work_ = &work;
  running_ = num_replicas_;
  ++generation_;
  auto all_done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; };
  mu_.Await(absl::Condition(&all_done));
  work_ = nullptr;
  absl::Status first;
  for (absl::Status& status : results_) {
    if (first.ok()) first = status;
    status = absl::OkStatus();
  }
  return first;
}

void ReplicaPool::ThreadMain(int replica) {
  uint64_t seen = 0;
  while (true) {
    const std::function<absl::Status(int)>* work;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || generation_ != seen; };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      seen = generation_;
      work = work_;
    }
    absl::Status status = (*work)(replica);
    absl::MutexLock lock(&mu_);
    results_[replica] = std::move(status);
    --running_;
  }
}

}  // namespace meshtrain

#include "runtime/base/fork_join_pool.h"

#include <pthread.h>
#include <sched.h>

namespace meshtrain {
namespace {

// The first error by index, clearing every result for the next call.
absl::Status FirstError(std::vector<absl::Status>& results) {
  absl::Status first;
  for (absl::Status& status : results) {
    if (first.ok()) first = status;
    status = absl::OkStatus();
  }
  return first;
}

}  // namespace

ForkJoinPool::ForkJoinPool(int n, Options options)
    : n_(n), first_threaded_(options.caller_runs_first ? 1 : 0), results_(n > 0 ? n : 0) {
  if (n_ <= 1) return;
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  for (int i = first_threaded_; i < n_; ++i) {
    threads_.emplace_back([this, i] { ThreadMain(i); });
    if (options.pin && cores >= n_) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(i % cores, &set);
      pthread_setaffinity_np(threads_.back().native_handle(), sizeof(set), &set);
    }
  }
}

ForkJoinPool::~ForkJoinPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

absl::Status ForkJoinPool::Run(const Fn& fn) {
  if (n_ <= 1) return fn(0);
  {
    absl::MutexLock lock(&mu_);
    fn_ = &fn;
    running_ = n_ - first_threaded_;
    ++generation_;
  }
  if (first_threaded_ == 1) results_[0] = fn(0);
  absl::MutexLock lock(&mu_);
  auto all_done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; };
  mu_.Await(absl::Condition(&all_done));
  fn_ = nullptr;
  return FirstError(results_);
}

void ForkJoinPool::ThreadMain(int index) {
  uint64_t seen = 0;
  while (true) {
    const Fn* fn;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || generation_ != seen;
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      seen = generation_;
      fn = fn_;
    }
    absl::Status status = (*fn)(index);
    absl::MutexLock lock(&mu_);
    results_[index] = std::move(status);
    --running_;
  }
}

absl::Status ForkJoinPool::RunOnNewThreads(int n, const Fn& fn) {
  std::vector<absl::Status> results(static_cast<size_t>(n > 0 ? n : 0));
  std::vector<std::thread> threads;
  for (int i = 1; i < n; ++i) threads.emplace_back([&results, &fn, i] { results[i] = fn(i); });
  if (n > 0) results[0] = fn(0);
  for (std::thread& t : threads) t.join();
  return FirstError(results);
}

}  // namespace meshtrain

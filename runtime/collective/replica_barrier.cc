#include "runtime/collective/replica_barrier.h"

#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"

namespace meshtrain {

ReplicaBarrier::ReplicaBarrier(int parties, AbortSignal* abort)
    : parties_(parties),
      abort_(abort),
      blocked_ns_(new std::atomic<int64_t>[parties]),
      here_(parties, false) {
  for (int p = 0; p < parties; ++p) blocked_ns_[p].store(0, std::memory_order_relaxed);
  // Spinning only pays when no party waits for a core held by a spinner.
  unsigned cores = std::thread::hardware_concurrency();
  spin_ = (cores == 0 || parties <= static_cast<int>(cores)) ? absl::Microseconds(20)
                                                             : absl::ZeroDuration();
  if (abort_ != nullptr) {
    abort_callback_ = abort_->AddCallback([this] { Break(abort_->status()); });
  }
}

ReplicaBarrier::~ReplicaBarrier() {
  if (abort_ != nullptr) abort_->RemoveCallback(abort_callback_);
}

void ReplicaBarrier::Break(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (broken_.ok()) broken_ = std::move(status);
  broken_flag_.store(true, std::memory_order_release);
}

absl::Status ReplicaBarrier::Arrive(int party, absl::Time deadline) {
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) return broken_;
    generation = generation_;
    here_[party] = true;
    if (++arrived_ == parties_) {
      arrived_ = 0;
      here_.assign(parties_, false);
      ++generation_;
      generation_seen_.store(generation_, std::memory_order_release);
      return absl::OkStatus();
    }
  }
  // Not the last: everything from here on is waiting for the others.
  struct CountBlocked {
    ~CountBlocked() {
      counter.fetch_add(absl::ToInt64Nanoseconds(absl::Now() - since), std::memory_order_relaxed);
    }
    std::atomic<int64_t>& counter;
    absl::Time since;
  } count_blocked{blocked_ns_[party], absl::Now()};
  if (spin_ > absl::ZeroDuration()) {
    auto until = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(spin_);
    for (int i = 0;; ++i) {
      if (generation_seen_.load(std::memory_order_acquire) != generation) return absl::OkStatus();
      if (broken_flag_.load(std::memory_order_acquire)) break;
      if ((i & 63) == 63 && std::chrono::steady_clock::now() >= until) break;
    }
  }
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return generation_ != generation || !broken_.ok();
  };
  mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
  if (generation_ != generation) return absl::OkStatus();
  if (broken_.ok()) {
    std::string missing;
    for (int p = 0; p < parties_; ++p) {
      if (!here_[p]) absl::StrAppend(&missing, missing.empty() ? "" : ", ", p);
    }
    broken_ = absl::DeadlineExceededError(absl::StrCat("replicas [", missing, "] of ", parties_,
                                                       " did not arrive before the deadline"));
    broken_flag_.store(true, std::memory_order_release);
  }
  return broken_;
}

}  // namespace meshtrain

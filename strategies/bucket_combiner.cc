#include "strategies/bucket_combiner.h"

#include <utility>

namespace meshtrain {

BucketCombiner::BucketCombiner(std::function<absl::Status(int)> combine)
    : combine_(std::move(combine)), thread_([this] { ThreadMain(); }) {}

BucketCombiner::~BucketCombiner() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void BucketCombiner::Enqueue(int bucket) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(bucket);
  ++in_flight_;
}

absl::Status BucketCombiner::WaitAll(absl::Duration* busy) {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
  mu_.Await(absl::Condition(&done));
  *busy = std::exchange(busy_, absl::ZeroDuration());
  return std::exchange(error_, absl::OkStatus());
}

void BucketCombiner::ThreadMain() {
  while (true) {
    int bucket;
    bool skip;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      bucket = queue_.front();
      queue_.pop_front();
      // After an error the collectives are broken: drain without combining.
      skip = !error_.ok();
    }
    const absl::Time start = absl::Now();
    absl::Status status = skip ? absl::OkStatus() : combine_(bucket);
    absl::MutexLock lock(&mu_);
    busy_ += absl::Now() - start;
    if (error_.ok()) error_ = std::move(status);
    --in_flight_;
  }
}

}  // namespace meshtrain

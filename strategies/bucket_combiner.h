// BucketCombiner: one replica's communication thread. The replica's compute
// thread hands it each gradient bucket as soon as backward has finished it; the
// combiner sums it over all replicas (and workers) through CrossDeviceOps while
// backward goes on, and the compute thread waits for the last bucket before it
// applies the update. Every replica has one, so CrossDeviceOps sees all N
// replicas arrive for each bucket in the same order.
//
// Thread-safe between the compute thread (Enqueue, WaitAll) and its own thread.
#ifndef MESHTRAIN_STRATEGIES_BUCKET_COMBINER_H_
#define MESHTRAIN_STRATEGIES_BUCKET_COMBINER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace meshtrain {

class BucketCombiner {
 public:
  // combine(bucket) runs on the combiner's thread, one bucket at a time, in
  // Enqueue order.
  explicit BucketCombiner(std::function<absl::Status(int bucket)> combine);
  ~BucketCombiner();
  BucketCombiner(const BucketCombiner&) = delete;
  BucketCombiner& operator=(const BucketCombiner&) = delete;

  void Enqueue(int bucket);
  // Blocks until every bucket enqueued so far is combined; returns the first
  // error, and how long combining took in all (busy time of the thread).
  absl::Status WaitAll(absl::Duration* busy);

 private:
  void ThreadMain();

  std::function<absl::Status(int)> combine_;
  absl::Mutex mu_;
  std::deque<int> queue_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  absl::Duration busy_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_STRATEGIES_BUCKET_COMBINER_H_

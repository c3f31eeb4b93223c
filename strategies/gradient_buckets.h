// GradientBuckets: a replica's dense gradients grouped into buckets of adjacent
// variables (in the order backward produces them), and the readiness tracking
// that lets a bucket be combined as soon as its last gradient is final, while
// backward goes on (as PyTorch DDP's buckets). A bucket is one contiguous span
// of the replica's flat gradient buffer, so combining it needs no packing copy.
//
// Per step: Reset(); MarkReady(id) as the model announces gradients; each call
// returns the bucket it completed, if any. Not thread-safe: the replica's thread.
#ifndef MESHTRAIN_STRATEGIES_GRADIENT_BUCKETS_H_
#define MESHTRAIN_STRATEGIES_GRADIENT_BUCKETS_H_

#include <cstdint>
#include <vector>

#include "runtime/model/variable.h"
#include "strategies/replica.h"

namespace meshtrain {

class GradientBuckets {
 public:
  struct Bucket {
    int64_t offset = 0;  // elements into the flat gradient buffer
    int64_t size = 0;    // elements
    int num_variables = 0;
  };

  // Buckets of consecutive variables in layout order, grouped as
  // TensorFlow's bytes_per_pack groups them (runtime/collective/packing.h):
  // a bucket closes once it holds more than `bytes_per_pack` bytes; 0: one
  // bucket of every variable.
  GradientBuckets(const GradientLayout& layout, const std::vector<VariableSpec>& specs,
                  int64_t bytes_per_pack);

  const std::vector<Bucket>& buckets() const { return buckets_; }

  void Reset();
  // Marks `id` ready; returns the bucket this completed, or -1.
  int MarkReady(VariableId id);
  // Buckets not yet complete (the model announced too little), in order; marks them complete.
  std::vector<int> TakeIncomplete();

 private:
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_;  // per VariableId; -1 for sparse
  std::vector<int> remaining_;  // per bucket
  std::vector<bool> ready_;     // per VariableId
};

}  // namespace meshtrain

#endif  // MESHTRAIN_STRATEGIES_GRADIENT_BUCKETS_H_

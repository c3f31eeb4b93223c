#include "strategies/gradient_buckets.h"

#include <algorithm>

#include "runtime/collective/packing.h"

namespace meshtrain {

GradientBuckets::GradientBuckets(const GradientLayout& layout,
                                 const std::vector<VariableSpec>& specs, int64_t bytes_per_pack)
    : bucket_of_(specs.size(), -1), ready_(specs.size(), false) {
  const std::vector<VariableId>& order = layout.order();
  std::vector<size_t> bytes;
  bytes.reserve(order.size());
  for (VariableId id : order) bytes.push_back(specs[id].bytes());
  for (const Pack& pack : PlanPacks(bytes, static_cast<size_t>(bytes_per_pack))) {
    Bucket bucket;
    bucket.offset = layout.offset(order[pack.first_tensor]);
    bucket.num_variables = static_cast<int>(pack.num_tensors);
    for (size_t i = pack.first_tensor; i < pack.first_tensor + pack.num_tensors; ++i) {
      bucket_of_[order[i]] = static_cast<int>(buckets_.size());
      bucket.size += specs[order[i]].shape.num_elements();
    }
    buckets_.push_back(bucket);
  }
  Reset();
}

void GradientBuckets::Reset() {
  remaining_.clear();
  for (const Bucket& b : buckets_) remaining_.push_back(b.num_variables);
  std::fill(ready_.begin(), ready_.end(), false);
}

int GradientBuckets::MarkReady(VariableId id) {
  const int bucket = bucket_of_[id];
  if (bucket < 0 || ready_[id]) return -1;
  ready_[id] = true;
  return --remaining_[bucket] == 0 ? bucket : -1;
}

std::vector<int> GradientBuckets::TakeIncomplete() {
  std::vector<int> incomplete;
  for (int b = 0; b < static_cast<int>(buckets_.size()); ++b) {
    if (remaining_[b] > 0) {
      remaining_[b] = 0;
      incomplete.push_back(b);
    }
  }
  return incomplete;
}

}  // namespace meshtrain

#include "strategies/gradient_buckets.h"

#include <algorithm>

namespace meshtrain {

GradientBuckets::GradientBuckets(const GradientLayout& layout,
                                 const std::vector<VariableSpec>& specs, int64_t bytes_per_pack)
    : bucket_of_(specs.size(), -1), ready_(specs.size(), false) {
  Bucket current;
  int64_t current_bytes = 0;
  for (VariableId id : layout.order()) {
    if (current.num_variables == 0) current.offset = layout.offset(id);
    bucket_of_[id] = static_cast<int>(buckets_.size());
    current.size += specs[id].shape.num_elements();
    current_bytes += static_cast<int64_t>(specs[id].bytes());
    ++current.num_variables;
    if (current_bytes >= bytes_per_pack) {
      buckets_.push_back(current);
      current = Bucket{};
      current_bytes = 0;
    }
  }
  if (current.num_variables > 0) buckets_.push_back(current);
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

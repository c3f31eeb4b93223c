// Packing: many small gradients reduced as a few large buffers, so a tensor of
// 100 floats does not pay a whole collective's latency. As TensorFlow's
// CommunicationOptions(bytes_per_pack) and its group_by_size:
//   - bytes_per_pack == 0: one pack holding every tensor;
//   - otherwise tensors are taken in order and a new pack starts once the
//     current one holds MORE than bytes_per_pack bytes, so each pack except
//     the last has at least bytes_per_pack bytes (few, large packs).
// The strategies' gradient buckets (strategies/gradient_buckets.h) are planned
// with it: their gradients lie in one arena, so a pack is reduced in place.
#ifndef MESHTRAIN_RUNTIME_COLLECTIVE_PACKING_H_
#define MESHTRAIN_RUNTIME_COLLECTIVE_PACKING_H_

#include <cstddef>
#include <vector>

#include "absl/types/span.h"

namespace meshtrain {

struct Pack {
  size_t first_tensor = 0;
  size_t num_tensors = 0;
  size_t bytes = 0;
  bool operator==(const Pack& o) const {
    return first_tensor == o.first_tensor && num_tensors == o.num_tensors && bytes == o.bytes;
  }
};

// Pure. No tensors gives no packs.
std::vector<Pack> PlanPacks(absl::Span<const size_t> tensor_bytes, size_t bytes_per_pack);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_COLLECTIVE_PACKING_H_

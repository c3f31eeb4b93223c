#include "runtime/collective/packing.h"

namespace meshtrain {

std::vector<Pack> PlanPacks(absl::Span<const size_t> tensor_bytes, size_t bytes_per_pack) {
  std::vector<Pack> packs;
  for (size_t i = 0; i < tensor_bytes.size(); ++i) {
    if (packs.empty() || (bytes_per_pack != 0 && packs.back().bytes > bytes_per_pack)) {
      packs.push_back(Pack{i, 0, 0});
    }
    packs.back().num_tensors += 1;
    packs.back().bytes += tensor_bytes[i];
  }
  return packs;
}

}  // namespace meshtrain

// Packing: many small gradients reduced as a few large buffers, so a tensor of
// 100 floats does not pay a whole collective's latency. As TensorFlow's
// CommunicationOptions(bytes_per_pack) and its group_by_size:
//   - bytes_per_pack == 0: one pack holding every tensor;
//   - otherwise tensors are taken in order and a new pack starts once the
//     current one holds MORE than bytes_per_pack bytes, so each pack except
//     the last has at least bytes_per_pack bytes (few, large packs).
// PackedAllReducer copies each pack's tensors into one reused buffer, reduces
// it and copies the sums back. A pack of one tensor, or of tensors already
// adjacent in memory (a strategy that keeps its gradients in one arena), is
// reduced in place with no copy. Not thread-safe: one per communicator.
#ifndef MESHTRAIN_RUNTIME_COLLECTIVE_PACKING_H_
#define MESHTRAIN_RUNTIME_COLLECTIVE_PACKING_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "runtime/collective/communicator.h"

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

class PackedAllReducer {
 public:
  explicit PackedAllReducer(size_t bytes_per_pack) : bytes_per_pack_(bytes_per_pack) {}

  // Sums every tensor over the communicator's ranks, in place. All ranks pass
  // tensors of the same sizes in the same order. The plan is kept while the
  // sizes stay the same; errors name the pack ("gradients pack 2/3").
  absl::Status AllReduce(Communicator& comm, absl::Span<const absl::Span<float>> tensors,
                         const CollectiveContext& ctx);

  // Packs used by the last call.
  const std::vector<Pack>& packs() const { return packs_; }
  // Bytes copied into and out of the pack buffer by the last call.
  size_t copied_bytes() const { return copied_bytes_; }

 private:
  const size_t bytes_per_pack_;
  std::vector<size_t> planned_bytes_;
  std::vector<Pack> packs_;
  std::vector<float> buffer_;
  std::string names_for_;               // ctx.name the pack names were made for
  std::vector<std::string> pack_names_;  // "<name> pack 2/3", kept across calls
  size_t copied_bytes_ = 0;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_COLLECTIVE_PACKING_H_

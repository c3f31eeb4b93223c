// Workspace: one replica's scratch tensors (activations, their gradients) that
// persist across steps so a step allocates nothing. Slots are numbered by the
// model; a slot's buffer grows to the largest shape asked of it and is reused.
// Owned by one replica; not thread-safe.
#ifndef MESHTRAIN_RUNTIME_MODEL_WORKSPACE_H_
#define MESHTRAIN_RUNTIME_MODEL_WORKSPACE_H_

#include <vector>

#include "absl/status/statusor.h"
#include "runtime/tensor/allocator.h"
#include "runtime/tensor/tensor.h"

namespace meshtrain {

class Workspace {
 public:
  // `allocator` must outlive the workspace.
  explicit Workspace(Allocator& allocator) : allocator_(allocator) {}

  // A tensor of exactly `shape` backed by slot `slot`'s buffer. The contents are
  // whatever the slot last held. Invalidated by the next Get of the same slot
  // with a larger shape.
  absl::StatusOr<Tensor> Get(int slot, DType dtype, Shape shape);

 private:
  Allocator& allocator_;
  std::vector<Tensor> buffers_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_MODEL_WORKSPACE_H_

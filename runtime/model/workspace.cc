#include "runtime/model/workspace.h"

namespace meshtrain {

absl::StatusOr<Tensor> Workspace::Get(int slot, DType dtype, Shape shape) {
  if (slot >= static_cast<int>(buffers_.size())) buffers_.resize(slot + 1);
  const size_t bytes = static_cast<size_t>(shape.num_elements()) * DTypeSize(dtype);
  Tensor& buffer = buffers_[slot];
  if (buffer.bytes() < bytes) {
    auto grown = Tensor::Allocate(allocator_, DType::kUInt8, Shape{static_cast<int64_t>(bytes)});
    if (!grown.ok()) return grown.status();
    buffer = *std::move(grown);
  }
  // View the first `bytes` of the slot with the requested type and shape.
  return buffer.Slice(0, static_cast<int64_t>(bytes)).Reinterpret(dtype, std::move(shape));
}

}  // namespace meshtrain

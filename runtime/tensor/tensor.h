// Tensor: a dtype, a shape, a device and a buffer. A Tensor is a cheap handle:
// copies share the buffer, and Slice() views a range of rows without copying.
// The buffer is freed when the last handle goes. Handles are not synchronised:
// two threads may read one tensor, but writers need their own coordination.
#ifndef MESHTRAIN_RUNTIME_TENSOR_TENSOR_H_
#define MESHTRAIN_RUNTIME_TENSOR_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "runtime/tensor/allocator.h"
#include "runtime/tensor/device.h"
#include "runtime/tensor/dtype.h"
#include "runtime/tensor/shape.h"

namespace meshtrain {

class Tensor {
 public:
  // An empty tensor: no buffer, shape [0].
  Tensor();
  // An uninitialised host tensor. Host allocation failure is fatal, as with new.
  Tensor(DType dtype, Shape shape);

  // An uninitialised tensor from `allocator` (any device).
  static absl::StatusOr<Tensor> Allocate(Allocator& allocator, DType dtype, Shape shape);
  // A host tensor filled with zeros.
  static Tensor Zeros(DType dtype, Shape shape);
  // A host tensor over memory that `owner` keeps alive (a memory-mapped file,
  // say): no copy, and the memory is released when the owner's last
  // reference goes, after the last handle to the tensor. Read-only memory may
  // be wrapped; then no holder may write through the tensor.
  static Tensor WrapHost(DType dtype, Shape shape, const void* data,
                         std::shared_ptr<const void> owner);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  Device device() const;
  int64_t num_elements() const { return shape_.num_elements(); }
  int64_t rows() const { return shape_.rank() == 0 ? 1 : shape_.dim(0); }
  size_t bytes() const { return static_cast<size_t>(num_elements()) * DTypeSize(dtype_); }
  bool empty() const { return num_elements() == 0; }

  void* raw_data() { return data_; }
  const void* raw_data() const { return data_; }
  // Typed access; the caller knows the dtype (checked in debug builds).
  template <typename T>
  T* data() {
    return static_cast<T*>(data_);
  }
  template <typename T>
  const T* data() const {
    return static_cast<const T*>(data_);
  }
  template <typename T>
  absl::Span<T> flat() {
    return absl::Span<T>(data<T>(), static_cast<size_t>(num_elements()));
  }
  template <typename T>
  absl::Span<const T> flat() const {
    return absl::Span<const T>(data<T>(), static_cast<size_t>(num_elements()));
  }
  absl::Span<std::byte> byte_span() { return {static_cast<std::byte*>(data_), bytes()}; }
  absl::Span<const std::byte> byte_span() const {
    return {static_cast<const std::byte*>(data_), bytes()};
  }

  // Rows [begin, end) along dimension 0, sharing this tensor's buffer.
  Tensor Slice(int64_t begin, int64_t end) const;
  // The same buffer seen with another shape of the same element count.
  Tensor Reshaped(Shape shape) const;
  // The same bytes seen as another dtype and shape of the same byte size.
  Tensor Reinterpret(DType dtype, Shape shape) const;
  // A host copy with its own buffer (the tensor must be on the host).
  Tensor Clone() const;

  std::string DebugString() const;  // "float32[256, 784] on cpu:0"

 private:
  struct Buffer;
  Tensor(DType dtype, Shape shape, std::shared_ptr<Buffer> buffer, void* data);

  DType dtype_ = DType::kFloat32;
  Shape shape_;
  std::shared_ptr<Buffer> buffer_;
  void* data_ = nullptr;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_TENSOR_H_

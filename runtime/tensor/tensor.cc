#include "runtime/tensor/tensor.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/base/check.h"

namespace meshtrain {

// Memory from an allocator, returned to it; or host memory someone else owns
// (allocator null), kept alive by `owner`.
struct Tensor::Buffer {
  Buffer(Allocator& allocator, void* ptr, size_t bytes)
      : allocator(&allocator), ptr(ptr), bytes(bytes) {}
  explicit Buffer(std::shared_ptr<const void> owner) : owner(std::move(owner)) {}
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (allocator != nullptr) allocator->Deallocate(ptr, bytes);
  }

  Allocator* allocator = nullptr;
  void* ptr = nullptr;
  size_t bytes = 0;
  std::shared_ptr<const void> owner;
};

Tensor::Tensor() : shape_({0}) {}

Tensor::Tensor(DType dtype, Shape shape) {
  auto tensor = Allocate(CpuAllocator(), dtype, std::move(shape));
  MESHTRAIN_CHECK(tensor.ok()) << tensor.status();
  *this = std::move(*tensor);
}

Tensor::Tensor(DType dtype, Shape shape, std::shared_ptr<Buffer> buffer, void* data)
    : dtype_(dtype), shape_(std::move(shape)), buffer_(std::move(buffer)), data_(data) {}

absl::StatusOr<Tensor> Tensor::Allocate(Allocator& allocator, DType dtype, Shape shape) {
  const size_t bytes = static_cast<size_t>(shape.num_elements()) * DTypeSize(dtype);
  absl::StatusOr<void*> ptr = allocator.Allocate(bytes);
  if (!ptr.ok()) return ptr.status();
  auto buffer = std::make_shared<Buffer>(allocator, *ptr, bytes);
  return Tensor(dtype, std::move(shape), std::move(buffer), *ptr);
}

Tensor Tensor::WrapHost(DType dtype, Shape shape, const void* data,
                        std::shared_ptr<const void> owner) {
  auto buffer = std::make_shared<Buffer>(std::move(owner));
  return Tensor(dtype, std::move(shape), std::move(buffer), const_cast<void*>(data));
}

Tensor Tensor::Zeros(DType dtype, Shape shape) {
  Tensor t(dtype, std::move(shape));
  std::memset(t.raw_data(), 0, t.bytes());
  return t;
}

Device Tensor::device() const {
  return buffer_ != nullptr && buffer_->allocator != nullptr ? buffer_->allocator->device()
                                                             : Device::Cpu(0);
}

Tensor Tensor::Slice(int64_t begin, int64_t end) const {
  MESHTRAIN_CHECK(shape_.rank() >= 1 && 0 <= begin && begin <= end && end <= shape_.dim(0))
      << "slice [" << begin << ", " << end << ") of " << DebugString();
  const size_t row_bytes = static_cast<size_t>(shape_.row_elements()) * DTypeSize(dtype_);
  void* data = static_cast<std::byte*>(data_) + static_cast<size_t>(begin) * row_bytes;
  return Tensor(dtype_, shape_.WithRows(end - begin), buffer_, data);
}

Tensor Tensor::Reshaped(Shape shape) const {
  MESHTRAIN_CHECK(shape.num_elements() == num_elements())
      << "reshape " << DebugString() << " to " << shape.ToString();
  return Tensor(dtype_, std::move(shape), buffer_, data_);
}

Tensor Tensor::Reinterpret(DType dtype, Shape shape) const {
  MESHTRAIN_CHECK(static_cast<size_t>(shape.num_elements()) * DTypeSize(dtype) == bytes())
      << "reinterpret " << DebugString() << " as " << DTypeName(dtype) << shape.ToString();
  return Tensor(dtype, std::move(shape), buffer_, data_);
}

Tensor Tensor::Clone() const {
  MESHTRAIN_CHECK(device().is_cpu()) << "Clone() of " << DebugString();
  Tensor copy(dtype_, shape_);
  if (bytes() > 0) std::memcpy(copy.raw_data(), data_, bytes());
  return copy;
}

std::string Tensor::DebugString() const {
  return absl::StrCat(DTypeName(dtype_), shape_.ToString(), " on ", device().ToString());
}

}  // namespace meshtrain

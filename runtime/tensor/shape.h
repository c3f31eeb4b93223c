// A tensor's dimensions, outermost first. Value type; not thread-safe to mutate.
#ifndef MESHTRAIN_RUNTIME_TENSOR_SHAPE_H_
#define MESHTRAIN_RUNTIME_TENSOR_SHAPE_H_

#include <cstdint>
#include <initializer_list>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/types/span.h"

namespace meshtrain {

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(absl::Span<const int64_t> dims) : dims_(dims.begin(), dims.end()) {}

  int rank() const { return static_cast<int>(dims_.size()); }
  int64_t dim(int i) const { return dims_[i]; }
  absl::Span<const int64_t> dims() const { return dims_; }
  // Product of the dimensions; 1 for a scalar.
  int64_t num_elements() const;
  // Elements in one slice along dimension 0 (the product of the other dimensions).
  int64_t row_elements() const;

  // The same shape with dimension 0 replaced by `rows`.
  Shape WithRows(int64_t rows) const;

  std::string ToString() const;  // "[256, 784]"
  bool operator==(const Shape& other) const { return dims_ == other.dims_; }
  bool operator!=(const Shape& other) const { return !(*this == other); }

 private:
  absl::InlinedVector<int64_t, 4> dims_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_SHAPE_H_

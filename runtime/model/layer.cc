#include "runtime/model/layer.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/check.h"
#include "runtime/base/status_macros.h"
#include "runtime/tensor/counter_random.h"

namespace meshtrain {

int64_t SaturatingProduct(absl::Span<const int64_t> dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) return std::numeric_limits<int64_t>::max();
  }
  return n;
}

int64_t ExampleShape::num_elements() const { return SaturatingProduct(dims); }

Shape ExampleShape::WithBatch(int64_t n) const {
  std::vector<int64_t> all{n};
  all.insert(all.end(), dims.begin(), dims.end());
  return Shape(absl::MakeConstSpan(all));
}

std::string ExampleShape::ToString() const {
  const std::string text = absl::StrCat("[", absl::StrJoin(dims, ", "), "]");
  return dtype == DType::kFloat32 ? text : absl::StrCat(DTypeName(dtype), text);
}

absl::StatusOr<VariableId> LayerBuilder::AddVariable(absl::string_view name, Shape shape,
                                                     Initializer initializer) {
  return Declare(VariableSpec{absl::StrCat(layer_name_, "/", name), std::move(shape),
                              DType::kFloat32, initializer});
}

absl::StatusOr<VariableId> LayerBuilder::AddMovingAverage(absl::string_view name, Shape shape,
                                                          Initializer initializer, float momentum) {
  VariableSpec spec{absl::StrCat(layer_name_, "/", name), std::move(shape), DType::kFloat32,
                    initializer};
  spec.trainable = false;
  spec.moving_average_momentum = momentum;
  return Declare(std::move(spec));
}

absl::StatusOr<VariableId> LayerBuilder::Declare(VariableSpec spec) {
  if (SaturatingProduct(spec.shape.dims()) > kMaxElements) {
    return Error(absl::StrCat("the variable ", spec.name, " ", spec.shape.ToString(),
                              " is too large (more than 2^36 values): choose smaller dimensions"));
  }
  absl::StatusOr<VariableId> id = creator_.CreateVariable(spec);
  if (!id.ok()) return Annotate(id.status(), where_);
  variables_.push_back(std::move(spec));
  return id;
}

absl::Status LayerBuilder::Error(absl::string_view problem) const {
  return absl::InvalidArgumentError(absl::StrCat(where_, ": ", problem));
}

absl::StatusOr<Tensor> LayerContext::Buffer(int index, DType dtype, Shape shape) {
  MESHTRAIN_CHECK(index >= 0 && index < num_slots_)
      << "layer " << layer_index_ << " asked for buffer " << index << " of " << num_slots_
      << " (raise its workspace_buffers())";
  return replica_.workspace().Get(first_slot_ + index, dtype, std::move(shape));
}

uint64_t LayerContext::RandomKey() const {
  const StepRandomness& r = replica_.step_randomness();
  uint64_t key = CounterMix64(r.seed ^ 0x6c61796572ull);  // "layer"
  key = CounterMix64(key ^ static_cast<uint64_t>(r.step));
  key = CounterMix64(key ^ r.replica);
  return CounterMix64(key ^ static_cast<uint64_t>(layer_index_));
}

}  // namespace meshtrain

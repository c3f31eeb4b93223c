// Element types a tensor can hold. float32 is what kernels compute in today;
// bfloat16/float16 are representable (storage, checkpoints) for later kernels.
#ifndef MESHTRAIN_RUNTIME_TENSOR_DTYPE_H_
#define MESHTRAIN_RUNTIME_TENSOR_DTYPE_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshtrain {

enum class DType : uint8_t { kFloat32, kBFloat16, kFloat16, kInt32, kInt64, kUInt8 };

size_t DTypeSize(DType dtype);
// "float32", "bfloat16", ...
absl::string_view DTypeName(DType dtype);
// Accepts the names above and safetensors' ("F32", "BF16", "F16", "I32", "I64", "U8").
absl::StatusOr<DType> ParseDType(absl::string_view name);
// The safetensors spelling ("F32").
absl::string_view SafetensorsDTypeName(DType dtype);

template <typename T>
constexpr DType DTypeOf();
template <>
constexpr DType DTypeOf<float>() {
  return DType::kFloat32;
}
template <>
constexpr DType DTypeOf<int32_t>() {
  return DType::kInt32;
}
template <>
constexpr DType DTypeOf<int64_t>() {
  return DType::kInt64;
}
template <>
constexpr DType DTypeOf<uint8_t>() {
  return DType::kUInt8;
}

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_DTYPE_H_

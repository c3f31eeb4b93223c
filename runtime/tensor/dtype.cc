#include "runtime/tensor/dtype.h"

#include "absl/strings/str_cat.h"

namespace meshtrain {
namespace {

struct DTypeInfo {
  DType dtype;
  size_t size;
  absl::string_view name;
  absl::string_view safetensors_name;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::kFloat32, 4, "float32", "F32"}, {DType::kBFloat16, 2, "bfloat16", "BF16"},
    {DType::kFloat16, 2, "float16", "F16"}, {DType::kInt32, 4, "int32", "I32"},
    {DType::kInt64, 8, "int64", "I64"},     {DType::kUInt8, 1, "uint8", "U8"},
};

const DTypeInfo& Info(DType dtype) { return kDTypes[static_cast<int>(dtype)]; }

}  // namespace

size_t DTypeSize(DType dtype) { return Info(dtype).size; }
absl::string_view DTypeName(DType dtype) { return Info(dtype).name; }
absl::string_view SafetensorsDTypeName(DType dtype) { return Info(dtype).safetensors_name; }

absl::StatusOr<DType> ParseDType(absl::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (name == info.name || name == info.safetensors_name) return info.dtype;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown dtype '", name, "': use float32, bfloat16, float16, int32, int64 or uint8"));
}

}  // namespace meshtrain

#include "runtime/data/dataset.h"

#include <cstddef>
#include <cstring>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/base/check.h"

namespace meshtrain {
namespace {

// Copies whole rows by bytes: one memcpy per example whatever the dtype.
void GatherRows(const Tensor& source, absl::Span<const int64_t> indices, Tensor& target) {
  MESHTRAIN_CHECK(target.dtype() == source.dtype() &&
                  target.shape().rank() == source.shape().rank() &&
                  target.rows() == static_cast<int64_t>(indices.size()) &&
                  target.shape().row_elements() == source.shape().row_elements())
      << "gather of " << indices.size() << " rows of " << source.DebugString() << " into "
      << target.DebugString();
  const size_t row_bytes =
      static_cast<size_t>(source.shape().row_elements()) * DTypeSize(source.dtype());
  const auto* from = static_cast<const std::byte*>(source.raw_data());
  auto* to = static_cast<std::byte*>(target.raw_data());
  const int64_t rows = source.rows();
  for (size_t i = 0; i < indices.size(); ++i) {
    const int64_t row = indices[i];
    MESHTRAIN_CHECK(row >= 0 && row < rows) << "gather index " << row << " of " << rows;
    std::memcpy(to + i * row_bytes, from + static_cast<size_t>(row) * row_bytes, row_bytes);
  }
}

// Pixel bytes to float32, x / divisor as each loader wrote it before inputs
// were kept as bytes (bit for bit the same values). __restrict lets the
// compiler vectorise it.
void ConvertRows(const Tensor& source, float divisor, absl::Span<const int64_t> indices,
                 Tensor& target) {
  MESHTRAIN_CHECK(source.dtype() == DType::kUInt8 && target.dtype() == DType::kFloat32 &&
                  target.rows() == static_cast<int64_t>(indices.size()) &&
                  target.shape().row_elements() == source.shape().row_elements())
      << "convert of " << indices.size() << " rows of " << source.DebugString() << " into "
      << target.DebugString();
  const int64_t width = source.shape().row_elements();
  const int64_t rows = source.rows();
  const auto* from = static_cast<const uint8_t*>(source.raw_data());
  float* to = target.data<float>();
  for (size_t i = 0; i < indices.size(); ++i) {
    const int64_t row = indices[i];
    MESHTRAIN_CHECK(row >= 0 && row < rows) << "gather index " << row << " of " << rows;
    const uint8_t* __restrict in = from + row * width;
    float* __restrict out = to + static_cast<int64_t>(i) * width;
    for (int64_t j = 0; j < width; ++j) out[j] = static_cast<float>(in[j]) / divisor;
  }
}

}  // namespace

absl::string_view SplitName(Split split) { return split == Split::kTrain ? "train" : "test"; }

absl::Status ValidateDataset(const Dataset& dataset) {
  const Tensor& inputs = dataset.inputs;
  const Tensor& labels = dataset.labels;
  auto error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("dataset '", dataset.name, "': ", what));
  };
  if (!inputs.device().is_cpu() || !labels.device().is_cpu()) {
    return error("inputs and labels must be host tensors");
  }
  if (inputs.shape().rank() != 2) {
    return error(absl::StrCat("inputs must be [examples, features], got ", inputs.DebugString()));
  }
  if (inputs.dtype() != DType::kFloat32 && inputs.dtype() != DType::kInt64 &&
      inputs.dtype() != DType::kUInt8) {
    return error(
        absl::StrCat("inputs must be float32, uint8 or int64, got ", inputs.DebugString()));
  }
  if (inputs.dtype() == DType::kUInt8 && !(dataset.input_divisor > 0)) {
    return error(absl::StrCat("uint8 inputs need a positive divisor, got ", dataset.input_divisor));
  }
  if (labels.shape().rank() != 1) {
    return error(absl::StrCat("labels must be [examples], got ", labels.DebugString()));
  }
  if (inputs.rows() != labels.rows()) {
    return error(absl::StrCat(inputs.rows(), " input rows but ", labels.rows(), " labels"));
  }
  if (dataset.num_classes < 0) {
    return error(absl::StrCat("num_classes ", dataset.num_classes, " is negative"));
  }
  if (dataset.num_classes > 0 && labels.dtype() != DType::kInt32) {
    return error(absl::StrCat("class labels must be int32, got ", labels.DebugString()));
  }
  if (dataset.num_classes == 0 && labels.dtype() != DType::kFloat32) {
    return error(
        absl::StrCat("binary targets (num_classes 0) must be float32, got ", labels.DebugString()));
  }
  return absl::OkStatus();
}

DType BatchInputDType(const Dataset& dataset) {
  return dataset.inputs.dtype() == DType::kUInt8 ? DType::kFloat32 : dataset.inputs.dtype();
}

Batch AllocateBatch(const Dataset& dataset, int64_t rows) {
  return Batch{Tensor(BatchInputDType(dataset), dataset.inputs.shape().WithRows(rows)),
               Tensor(dataset.labels.dtype(), dataset.labels.shape().WithRows(rows))};
}

Batch GatherBatch(const Dataset& dataset, absl::Span<const int64_t> indices) {
  Batch batch = AllocateBatch(dataset, static_cast<int64_t>(indices.size()));
  GatherBatchInto(dataset, indices, batch);
  return batch;
}

void GatherBatchInto(const Dataset& dataset, absl::Span<const int64_t> indices, Batch& batch) {
  if (dataset.inputs.dtype() == DType::kUInt8) {
    ConvertRows(dataset.inputs, dataset.input_divisor, indices, batch.inputs);
  } else {
    GatherRows(dataset.inputs, indices, batch.inputs);
  }
  GatherRows(dataset.labels, indices, batch.labels);
}

Batch DatasetRows(const Dataset& dataset, int64_t begin, int64_t end) {
  MESHTRAIN_CHECK(0 <= begin && begin <= end && end <= dataset.size())
      << "rows [" << begin << ", " << end << ") of " << dataset.size();
  if (BatchInputDType(dataset) == dataset.inputs.dtype()) {
    return Batch{dataset.inputs.Slice(begin, end), dataset.labels.Slice(begin, end)};
  }
  std::vector<int64_t> rows(static_cast<size_t>(end - begin));
  std::iota(rows.begin(), rows.end(), begin);
  return GatherBatch(dataset, rows);
}

absl::Status CheckClassesAndDivisor(absl::string_view name, int num_classes, float divisor) {
  if (num_classes < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": data.num_classes ", num_classes, " must be at least 2"));
  }
  if (!(divisor > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": data.divisor must be positive"));
  }
  return absl::OkStatus();
}

}  // namespace meshtrain

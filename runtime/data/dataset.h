// Dataset: an in-memory table of examples, one row per example, and the gather
// that copies chosen rows into a batch. Inputs are float32 [n, d] (dense
// features), uint8 [n, d] (pixel bytes kept in their stored dtype, a quarter of
// float32's memory, turned into float32 x / input_divisor per batch) or int64
// [n, fields] (categorical ids); labels are int32 [n] (class ids in
// [0, num_classes)) or float32 [n] (binary targets, num_classes 0).
// A Dataset is immutable once built; any number of threads may gather from it.
#ifndef MESHTRAIN_RUNTIME_DATA_DATASET_H_
#define MESHTRAIN_RUNTIME_DATA_DATASET_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "runtime/tensor/batch.h"
#include "runtime/tensor/tensor.h"

namespace meshtrain {

enum class Split { kTrain, kTest };

// "train" or "test".
absl::string_view SplitName(Split split);

struct Dataset {
  std::string name;  // "fashion-mnist/train"
  Tensor inputs;
  Tensor labels;
  int num_classes = 0;  // 0 for binary targets
  // uint8 inputs only: a batch holds static_cast<float>(x) / input_divisor,
  // the same float32 a loader that converted up front would have stored.
  float input_divisor = 1.0f;

  int64_t size() const { return labels.rows(); }
};

// OK when the tensors have the layout above (host, rows aligned, dtypes allowed,
// num_classes consistent with the label dtype); InvalidArgument naming the
// dataset and the field otherwise. Label values are not scanned.
absl::Status ValidateDataset(const Dataset& dataset);

// What a dataset read from files (TFRecord, CSV, NumPy) is told by the job
// config: at least 2 classes, and a positive divisor for its inputs.
// InvalidArgument naming `name` and the data.* key otherwise.
absl::Status CheckClassesAndDivisor(absl::string_view name, int num_classes, float divisor);

// The dtype of a batch's inputs: float32 for uint8 inputs, the stored dtype otherwise.
DType BatchInputDType(const Dataset& dataset);

// A host batch with room for `rows` examples of `dataset`'s batch layout
// (uninitialised).
Batch AllocateBatch(const Dataset& dataset, int64_t rows);

// Copies examples `indices` into a fresh batch, rows in that order.
// Indices must be in [0, dataset.size()) (checked: a caller bug otherwise).
Batch GatherBatch(const Dataset& dataset, absl::Span<const int64_t> indices);

// The same into `batch`, whose tensors must have exactly indices.size() rows and
// the dataset's batch dtypes and row widths (e.g. a Slice of an AllocateBatch buffer).
void GatherBatchInto(const Dataset& dataset, absl::Span<const int64_t> indices, Batch& batch);

// Rows [begin, end) as a batch, for evaluation in chunks: a view of the
// dataset's tensors when they are stored as a batch holds them, else a
// converted copy. 0 <= begin <= end <= size() (checked).
Batch DatasetRows(const Dataset& dataset, int64_t begin, int64_t end);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_DATASET_H_

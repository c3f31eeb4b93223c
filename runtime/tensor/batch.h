// Batch: the tensors of one step's examples, rows aligned. `inputs` is float32
// [n, features] (dense models) or int64 [n, fields] (hashed categorical ids);
// `labels` is int32 [n] (classes) or float32 [n] (binary targets). Cheap to copy.
#ifndef MESHTRAIN_RUNTIME_TENSOR_BATCH_H_
#define MESHTRAIN_RUNTIME_TENSOR_BATCH_H_

#include <cstdint>
#include <vector>

#include "runtime/tensor/tensor.h"

namespace meshtrain {

struct Batch {
  Tensor inputs;
  Tensor labels;

  int64_t size() const { return labels.rows(); }
  // Examples [begin, end), sharing the buffers.
  Batch Slice(int64_t begin, int64_t end) const {
    return Batch{inputs.Slice(begin, end), labels.Slice(begin, end)};
  }
};

// `parts` contiguous slices of near-equal size (the first ones take the extra
// rows; some are empty when the batch is smaller than `parts`).
inline std::vector<Batch> SplitBatch(const Batch& batch, int parts) {
  std::vector<Batch> slices;
  const int64_t rows = batch.size();
  int64_t begin = 0;
  for (int i = 0; i < parts; ++i) {
    const int64_t size = rows / parts + (i < rows % parts ? 1 : 0);
    slices.push_back(batch.Slice(begin, begin + size));
    begin += size;
  }
  return slices;
}

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_BATCH_H_

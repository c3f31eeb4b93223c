// Batch: the tensors of one step's examples, rows aligned. `inputs` is float32
// [n, features] (dense models) or int64 [n, fields] (hashed categorical ids);
// `labels` is int32 [n] (classes) or float32 [n] (binary targets). Cheap to copy.
#ifndef MESHTRAIN_RUNTIME_TENSOR_BATCH_H_
#define MESHTRAIN_RUNTIME_TENSOR_BATCH_H_

#include <cstdint>

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

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_BATCH_H_

// Test support: a dataset whose rows say which example they are, so a test can
// check any batch against the indices it should hold. Header-only.
#ifndef MESHTRAIN_TESTS_UNIT_DATA_INDEXED_DATASET_H_
#define MESHTRAIN_TESTS_UNIT_DATA_INDEXED_DATASET_H_

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/data/dataset.h"

namespace meshtrain::testing {

// Input (i, j) is i * 10 + j; label i is i.
inline Dataset IndexedDataset(int64_t n, int64_t d) {
  Dataset dataset{.name = "indexed", .num_classes = static_cast<int>(n) + 1};
  dataset.inputs = Tensor(DType::kFloat32, Shape{n, d});
  dataset.labels = Tensor(DType::kInt32, Shape{n});
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      dataset.inputs.data<float>()[i * d + j] = static_cast<float>(i * 10 + j);
    }
    dataset.labels.data<int32_t>()[i] = static_cast<int32_t>(i);
  }
  return dataset;
}

// True when `batch` holds exactly the rows `indices` of an IndexedDataset.
inline ::testing::AssertionResult HoldsRows(const Batch& batch,
                                            const std::vector<int64_t>& indices) {
  if (batch.size() != static_cast<int64_t>(indices.size()) || batch.inputs.rows() != batch.size()) {
    return ::testing::AssertionFailure()
           << "batch of " << batch.size() << " rows, expected " << indices.size();
  }
  const int64_t d = batch.inputs.shape().dim(1);
  for (size_t r = 0; r < indices.size(); ++r) {
    const int64_t i = indices[r];
    if (batch.labels.data<int32_t>()[r] != i) {
      return ::testing::AssertionFailure() << "row " << r << " has label "
                                           << batch.labels.data<int32_t>()[r] << ", expected " << i;
    }
    for (int64_t j = 0; j < d; ++j) {
      if (batch.inputs.data<float>()[r * d + j] != static_cast<float>(i * 10 + j)) {
        return ::testing::AssertionFailure()
               << "row " << r << " input " << j << " is not example " << i << "'s";
      }
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace meshtrain::testing

#endif  // MESHTRAIN_TESTS_UNIT_DATA_INDEXED_DATASET_H_

#include "runtime/data/dataset.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/data/indexed_dataset.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

using ::meshtrain::testing::HoldsRows;
using ::meshtrain::testing::IndexedDataset;

TEST(DatasetTest, GatherCopiesRowsInIndexOrder) {
  const Dataset d = IndexedDataset(6, 3);
  ASSERT_TRUE(ValidateDataset(d).ok());
  EXPECT_EQ(d.size(), 6);
  const std::vector<int64_t> indices = {4, 0, 4, 5};
  Batch batch = GatherBatch(d, indices);
  ASSERT_EQ(batch.inputs.shape(), (Shape{4, 3}));
  ASSERT_EQ(batch.labels.shape(), (Shape{4}));
  EXPECT_TRUE(HoldsRows(batch, indices));
  EXPECT_EQ(GatherBatch(d, {}).size(), 0);
}

TEST(DatasetTest, GatherIntoReusesABuffer) {
  const Dataset d = IndexedDataset(5, 2);
  Batch buffer = AllocateBatch(d, 4);
  const void* storage = buffer.inputs.raw_data();
  Batch view = buffer.Slice(0, 2);
  GatherBatchInto(d, std::vector<int64_t>{3, 1}, view);
  EXPECT_EQ(view.inputs.raw_data(), storage);
  EXPECT_TRUE(HoldsRows(view, {3, 1}));
}

TEST(DatasetTest, GathersCategoricalIdsAndBinaryTargets) {
  Dataset d{.name = "clicks", .num_classes = 0};
  d.inputs = Tensor(DType::kInt64, Shape{3, 2});
  d.labels = Tensor(DType::kFloat32, Shape{3});
  for (int i = 0; i < 6; ++i) d.inputs.data<int64_t>()[i] = (int64_t{1} << 40) + i;
  for (int i = 0; i < 3; ++i) d.labels.data<float>()[i] = i % 2;
  ASSERT_TRUE(ValidateDataset(d).ok());
  Batch batch = GatherBatch(d, std::vector<int64_t>{2, 1});
  EXPECT_EQ(batch.inputs.data<int64_t>()[0], (int64_t{1} << 40) + 4);
  EXPECT_EQ(batch.inputs.data<int64_t>()[3], (int64_t{1} << 40) + 3);
  EXPECT_EQ(batch.labels.data<float>()[0], 0.0f);
  EXPECT_EQ(batch.labels.data<float>()[1], 1.0f);
}

// Pixel bytes are stored as uint8 and a batch holds x / divisor as float32,
// bit for bit what a loader that converted up front stored.
Dataset BytesDataset(int64_t rows, int64_t width) {
  Dataset d{.name = "bytes", .num_classes = 3, .input_divisor = 255.0f};
  d.inputs = Tensor(DType::kUInt8, Shape{rows, width});
  d.labels = Tensor(DType::kInt32, Shape{rows});
  for (int64_t i = 0; i < rows * width; ++i) d.inputs.data<uint8_t>()[i] = (i * 37) % 256;
  for (int64_t i = 0; i < rows; ++i) d.labels.data<int32_t>()[i] = i % 3;
  return d;
}

TEST(DatasetTest, BytesBecomeFloatsPerBatch) {
  const Dataset d = BytesDataset(7, 5);
  ASSERT_TRUE(ValidateDataset(d).ok());
  EXPECT_EQ(BatchInputDType(d), DType::kFloat32);
  const std::vector<int64_t> indices = {6, 0, 3};
  const Batch batch = GatherBatch(d, indices);
  ASSERT_EQ(batch.inputs.dtype(), DType::kFloat32);
  ASSERT_EQ(batch.inputs.shape(), (Shape{3, 5}));
  for (size_t r = 0; r < indices.size(); ++r) {
    for (int j = 0; j < 5; ++j) {
      const uint8_t stored = d.inputs.data<uint8_t>()[indices[r] * 5 + j];
      ASSERT_EQ(batch.inputs.data<float>()[r * 5 + j], static_cast<float>(stored) / 255.0f);
    }
    EXPECT_EQ(batch.labels.data<int32_t>()[r], indices[r] % 3);
  }
}

TEST(DatasetTest, DatasetRowsViewsStoredFloatsAndConvertsBytes) {
  const Dataset floats = IndexedDataset(6, 2);
  const Batch view = DatasetRows(floats, 2, 5);
  EXPECT_EQ(view.inputs.raw_data(), floats.inputs.Slice(2, 5).raw_data());  // no copy
  EXPECT_TRUE(HoldsRows(view, {2, 3, 4}));
  const Dataset bytes = BytesDataset(6, 4);
  const Batch converted = DatasetRows(bytes, 1, 3);
  ASSERT_EQ(converted.inputs.shape(), (Shape{2, 4}));
  EXPECT_EQ(converted.inputs.data<float>()[4], static_cast<float>((8 * 37) % 256) / 255.0f);
  EXPECT_EQ(DatasetRows(bytes, 6, 6).size(), 0);
}

TEST(DatasetTest, ValidateNamesTheDatasetAndTheFault) {
  Dataset rows_differ = IndexedDataset(4, 2);
  rows_differ.labels = Tensor(DType::kInt32, Shape{3});
  Dataset float_classes = IndexedDataset(4, 2);
  float_classes.labels = Tensor(DType::kFloat32, Shape{4});
  Dataset int_binary = IndexedDataset(4, 2);
  int_binary.num_classes = 0;
  Dataset rank3 = IndexedDataset(4, 2);
  rank3.inputs = Tensor(DType::kFloat32, Shape{4, 1, 2});
  Dataset bytes_without_divisor = BytesDataset(4, 2);
  bytes_without_divisor.input_divisor = 0;
  for (const auto& [dataset, fault] : std::vector<std::pair<Dataset, std::string>>{
           {rows_differ, "4 input rows but 3 labels"},
           {float_classes, "class labels must be int32"},
           {int_binary, "binary targets"},
           {rank3, "inputs must be [examples, features]"},
           {bytes_without_divisor, "uint8 inputs need a positive divisor"}}) {
    const absl::Status status = ValidateDataset(dataset);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("dataset '", dataset.name, "'")));
    EXPECT_THAT(status.message(), HasSubstr(fault));
  }
}

}  // namespace
}  // namespace meshtrain

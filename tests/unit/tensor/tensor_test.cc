#include "runtime/tensor/tensor.h"

#include <cstdint>
#include <memory>
#include <vector>

#include "gtest/gtest.h"

namespace meshtrain {
namespace {

TEST(TensorTest, SlicesShareTheBuffer) {
  Tensor t(DType::kInt32, Shape{4, 2});
  for (int i = 0; i < 8; ++i) t.data<int32_t>()[i] = i;
  const Tensor rows = t.Slice(1, 3);
  EXPECT_EQ(rows.shape(), (Shape{2, 2}));
  EXPECT_EQ(rows.data<int32_t>()[0], 2);
  EXPECT_EQ(rows.raw_data(), t.data<int32_t>() + 2);
}

// The owner of wrapped memory (an mmap in LoadNpyDataset) lives as long as
// the last handle, slices included, and no longer.
TEST(TensorTest, WrappedMemoryLivesAsLongAsItsLastHandle) {
  auto storage = std::make_shared<std::vector<uint8_t>>(std::vector<uint8_t>{1, 2, 3, 4, 5, 6});
  std::weak_ptr<std::vector<uint8_t>> alive = storage;
  Tensor slice;
  {
    Tensor whole = Tensor::WrapHost(DType::kUInt8, Shape{3, 2}, storage->data(), storage);
    storage.reset();
    EXPECT_TRUE(whole.device().is_cpu());
    EXPECT_EQ(whole.bytes(), 6u);
    slice = whole.Slice(2, 3);
  }
  ASSERT_FALSE(alive.expired());
  EXPECT_EQ(slice.data<uint8_t>()[0], 5);
  EXPECT_EQ(slice.data<uint8_t>()[1], 6);
  slice = Tensor();
  EXPECT_TRUE(alive.expired());
}

}  // namespace
}  // namespace meshtrain

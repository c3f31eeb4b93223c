#include "runtime/optim/optimizer.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/tensor/cpu_kernels.h"

namespace meshtrain {
namespace {

TEST(OptimizerTest, SgdWithMomentumHasOneSlot) {
  OptimizerConfig config{.type = "sgd", .learning_rate = 0.05f, .momentum = 0.9f};
  auto opt = Optimizer::Create(config);
  ASSERT_TRUE(opt.ok());
  EXPECT_THAT((*opt)->slot_names(), ::testing::ElementsAre("momentum"));
  OptimizerConfig plain{.type = "sgd", .learning_rate = 0.05f};
  EXPECT_TRUE((*Optimizer::Create(plain))->slot_names().empty());
  OptimizerConfig adam{.type = "adam"};
  EXPECT_THAT((*Optimizer::Create(adam))->slot_names(), ::testing::ElementsAre("m", "v"));
}

TEST(OptimizerTest, RejectsBadHyperParameters) {
  EXPECT_EQ(Optimizer::Create({.type = "sgd", .learning_rate = -1.0f}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      Optimizer::Create({.type = "sgd", .learning_rate = 0.1f, .momentum = 1.5f}).status().code(),
      absl::StatusCode::kInvalidArgument);
  auto unknown = Optimizer::Create({.type = "lamb"});
  EXPECT_THAT(std::string(unknown.status().message()), ::testing::HasSubstr("sgd or adam"));
}

TEST(OptimizerTest, SparseApplyMatchesDenseOnTouchedRowsOnly) {
  auto kernels = CreateCpuKernels(Device::Cpu(0));
  auto opt = Optimizer::Create({.type = "sgd", .learning_rate = 0.1f, .momentum = 0.9f});
  ASSERT_TRUE(opt.ok());
  Tensor var(DType::kFloat32, Shape{5, 2}), slot = Tensor::Zeros(DType::kFloat32, Shape{5, 2});
  for (int i = 0; i < 10; ++i) var.data<float>()[i] = static_cast<float>(i);
  Tensor ids(DType::kInt64, Shape{2});
  ids.data<int64_t>()[0] = 3;
  ids.data<int64_t>()[1] = 1;
  Tensor grad(DType::kFloat32, Shape{2, 2});
  for (int i = 0; i < 4; ++i) grad.data<float>()[i] = 1.0f + i;
  std::vector<Tensor> slots = {slot};
  ASSERT_TRUE((*opt)->ApplySparse(*kernels, ids, grad, 1, 1.0f, var, absl::MakeSpan(slots)).ok());
  // Row 3 got grad (1, 2), row 1 got (3, 4); momentum starts at 0 so v = g.
  EXPECT_FLOAT_EQ(var.data<float>()[6], 6.0f - 0.1f * 1.0f);
  EXPECT_FLOAT_EQ(var.data<float>()[7], 7.0f - 0.1f * 2.0f);
  EXPECT_FLOAT_EQ(var.data<float>()[2], 2.0f - 0.1f * 3.0f);
  EXPECT_FLOAT_EQ(slot.data<float>()[3], 4.0f);
  for (int row : {0, 2, 4}) {
    EXPECT_EQ(var.data<float>()[2 * row], 2.0f * row);
    EXPECT_EQ(slot.data<float>()[2 * row], 0.0f);
  }
}

}  // namespace
}  // namespace meshtrain

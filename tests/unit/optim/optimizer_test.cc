#include "runtime/optim/optimizer.h"

#include <cmath>
#include <vector>

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
  EXPECT_THAT(std::string(unknown.status().message()), ::testing::HasSubstr("sgd, adam or adamw"));
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
  ASSERT_TRUE(
      (*opt)->ApplySparse(*kernels, "emb", ids, grad, 1, 1.0f, var, absl::MakeSpan(slots)).ok());
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

Tensor Filled(const Shape& shape, float first, float stride) {
  Tensor t(DType::kFloat32, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = first + stride * i;
  return t;
}

// AdamW by hand, element by element, in double: decay first, then Adam with
// bias correction (Keras 3 / Loshchilov & Hutter).
void ReferenceAdamW(double lr, double wd, int step, double g, double& w, double& m, double& v) {
  const double b1 = 0.9, b2 = 0.999, eps = 1e-7;
  w -= lr * wd * w;
  m = b1 * m + (1 - b1) * g;
  v = b2 * v + (1 - b2) * g * g;
  const double m_hat = m / (1 - std::pow(b1, step));
  const double v_hat = v / (1 - std::pow(b2, step));
  w -= lr * m_hat / (std::sqrt(v_hat) + eps);
}

TEST(OptimizerTest, AdamWMatchesAHandComputedReferenceOverSteps) {
  auto kernels = CreateCpuKernels(Device::Cpu(0));
  auto opt = Optimizer::Create({.type = "adamw", .learning_rate = 0.01f, .weight_decay = 0.1f});
  ASSERT_TRUE(opt.ok()) << opt.status();
  Tensor var = Filled(Shape{2, 3}, -1.0f, 0.4f);
  std::vector<Tensor> slots = {Tensor::Zeros(DType::kFloat32, Shape{2, 3}),
                               Tensor::Zeros(DType::kFloat32, Shape{2, 3})};
  std::vector<double> w(6), m(6, 0.0), v(6, 0.0);
  for (int i = 0; i < 6; ++i) w[i] = var.data<float>()[i];
  for (int step = 1; step <= 4; ++step) {
    const Tensor grad = Filled(Shape{2, 3}, 0.3f * step, -0.25f);
    (*opt)->ApplyDense(*kernels, "dense/kernel", grad, step, 1.0f, var, absl::MakeSpan(slots));
    for (int i = 0; i < 6; ++i)
      ReferenceAdamW(0.01, 0.1, step, grad.data<float>()[i], w[i], m[i], v[i]);
  }
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(var.data<float>()[i], w[i], 1e-6) << i;
}

TEST(OptimizerTest, AdamWDefaultsToKerasWeightDecayAndAdamToNone) {
  EXPECT_FLOAT_EQ((*Optimizer::Create({.type = "adamw"}))->weight_decay(), 0.004f);
  EXPECT_EQ((*Optimizer::Create({.type = "adam"}))->weight_decay(), 0.0f);
  EXPECT_FALSE((*Optimizer::Create({.type = "adam"}))->DecaysWeights("dense/kernel"));
}

TEST(OptimizerTest, SgdWeightDecayIsDecoupledAndSkipsExcludedNames) {
  auto kernels = CreateCpuKernels(Device::Cpu(0));
  auto opt = Optimizer::Create({.type = "sgd",
                                .learning_rate = 0.1f,
                                .momentum = 0.9f,
                                .weight_decay = 0.5f,
                                .exclude_from_weight_decay = {"bias"}});
  ASSERT_TRUE(opt.ok()) << opt.status();
  Tensor kernel = Filled(Shape{3}, 1.0f, 1.0f), bias = Filled(Shape{3}, 1.0f, 1.0f);
  std::vector<Tensor> kernel_slots = {Tensor::Zeros(DType::kFloat32, Shape{3})};
  std::vector<Tensor> bias_slots = {Tensor::Zeros(DType::kFloat32, Shape{3})};
  std::vector<double> k = {1, 2, 3}, b = {1, 2, 3}, kv(3, 0.0), bv(3, 0.0);
  for (int step = 1; step <= 3; ++step) {
    const Tensor grad = Filled(Shape{3}, 0.5f, static_cast<float>(step));
    (*opt)->ApplyDense(*kernels, "dense/kernel", grad, step, 1.0f, kernel,
                       absl::MakeSpan(kernel_slots));
    (*opt)->ApplyDense(*kernels, "dense/bias", grad, step, 1.0f, bias, absl::MakeSpan(bias_slots));
    for (int i = 0; i < 3; ++i) {
      const double g = grad.data<float>()[i];
      k[i] -= 0.1 * 0.5 * k[i];  // decoupled: not through the momentum
      kv[i] = 0.9 * kv[i] + g;
      k[i] -= 0.1 * kv[i];
      bv[i] = 0.9 * bv[i] + g;
      b[i] -= 0.1 * bv[i];
    }
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(kernel.data<float>()[i], k[i], 1e-5) << i;
    EXPECT_NEAR(bias.data<float>()[i], b[i], 1e-5) << i;
  }
}

TEST(OptimizerTest, SparseWeightDecayTouchesTheUpdatedRowsOnly) {
  auto kernels = CreateCpuKernels(Device::Cpu(0));
  auto opt = Optimizer::Create({.type = "adamw", .learning_rate = 0.01f, .weight_decay = 0.2f});
  ASSERT_TRUE(opt.ok());
  Tensor var = Filled(Shape{4, 2}, 1.0f, 0.5f);
  const Tensor before = var.Clone();
  std::vector<Tensor> slots = {Tensor::Zeros(DType::kFloat32, Shape{4, 2}),
                               Tensor::Zeros(DType::kFloat32, Shape{4, 2})};
  std::vector<double> w(8), m(8, 0.0), v(8, 0.0);
  for (int i = 0; i < 8; ++i) w[i] = var.data<float>()[i];
  Tensor ids(DType::kInt64, Shape{1});
  ids.data<int64_t>()[0] = 2;
  for (int step = 1; step <= 3; ++step) {
    const Tensor rows = Filled(Shape{1, 2}, 0.1f * step, 0.3f);
    ASSERT_TRUE(
        (*opt)
            ->ApplySparse(*kernels, "embedding", ids, rows, step, 1.0f, var, absl::MakeSpan(slots))
            .ok());
    for (int c = 0; c < 2; ++c) {
      ReferenceAdamW(0.01, 0.2, step, rows.data<float>()[c], w[4 + c], m[4 + c], v[4 + c]);
    }
  }
  for (int i = 0; i < 8; ++i) {
    if (i / 2 == 2) {
      EXPECT_NEAR(var.data<float>()[i], w[i], 1e-6) << i;
    } else {
      EXPECT_EQ(var.data<float>()[i], before.data<float>()[i]) << "row " << i / 2 << " decayed";
    }
  }
}

TEST(OptimizerTest, UpdatesFollowTheScheduleOfTheUpdateCount) {
  auto kernels = CreateCpuKernels(Device::Cpu(0));
  OptimizerConfig config{.type = "sgd", .learning_rate = 0.4f};
  config.schedule = {.schedule = "step", .decay_steps = 2, .decay_rate = 0.5};
  auto opt = Optimizer::Create(config);
  ASSERT_TRUE(opt.ok()) << opt.status();
  EXPECT_FLOAT_EQ((*opt)->LearningRate(1), 0.4f);
  EXPECT_FLOAT_EQ((*opt)->LearningRate(2), 0.4f);
  EXPECT_FLOAT_EQ((*opt)->LearningRate(3), 0.2f);
  Tensor var = Tensor::Zeros(DType::kFloat32, Shape{1});
  const Tensor grad = Filled(Shape{1}, 1.0f, 0.0f);
  for (int step = 1; step <= 3; ++step) {
    (*opt)->ApplyDense(*kernels, "w", grad, step, 0.5f, var, {});
  }
  EXPECT_FLOAT_EQ(var.data<float>()[0], -0.5f * (0.4f + 0.4f + 0.2f));
}

TEST(OptimizerTest, LinearScalingRuleMultipliesTheInitialRate) {
  OptimizerConfig config{.type = "sgd", .learning_rate = 0.1f};
  config.reference_batch = 256;
  auto scaled = ScaleLearningRateForBatch(config, 1024);
  ASSERT_TRUE(scaled.ok());
  EXPECT_FLOAT_EQ(scaled->learning_rate, 0.4f);
  EXPECT_EQ(scaled->reference_batch, 0);
  EXPECT_THAT(std::string(Optimizer::Create(config).status().message()),
              ::testing::HasSubstr("scale_learning_rate_with_batch"));
  config.reference_batch = -1;
  EXPECT_THAT(std::string(ScaleLearningRateForBatch(config, 8).status().message()),
              ::testing::HasSubstr("reference_batch: -1 is negative"));
  EXPECT_FLOAT_EQ(ScaleLearningRateForBatch({.learning_rate = 0.1f}, 8)->learning_rate, 0.1f);
}

TEST(OptimizerTest, RejectsBadWeightDecay) {
  auto negative = Optimizer::Create({.type = "sgd", .learning_rate = 0.1f, .weight_decay = -0.1f});
  EXPECT_THAT(std::string(negative.status().message()),
              ::testing::HasSubstr("optimizer.weight_decay: -0.1 is out of range"));
  auto flips = Optimizer::Create({.type = "adamw", .learning_rate = 5.0f, .weight_decay = 0.5f});
  EXPECT_THAT(std::string(flips.status().message()), ::testing::HasSubstr("flip the weights"));
}

}  // namespace
}  // namespace meshtrain

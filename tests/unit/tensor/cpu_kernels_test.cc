#include "runtime/tensor/cpu_kernels.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace meshtrain {
namespace {

Tensor Random(Shape shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Tensor t(DType::kFloat32, shape);
  for (float& v : t.flat<float>()) v = u(rng);
  return t;
}

class CpuKernelsTest : public ::testing::Test {
 protected:
  std::unique_ptr<Kernels> k_ = CreateCpuKernels(Device::Cpu(0));
};

TEST_F(CpuKernelsTest, MatMulAllTransposesMatchNaive) {
  const int64_t m = 7, kk = 5, n = 3;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      Tensor a = Random(ta ? Shape{kk, m} : Shape{m, kk}, 1);
      Tensor b = Random(tb ? Shape{n, kk} : Shape{kk, n}, 2);
      Tensor c = Random(Shape{m, n}, 3);
      Tensor c0 = c.Clone();
      k_->MatMul(a, ta, b, tb, 0.5f, 2.0f, c);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double sum = 0;
          for (int64_t p = 0; p < kk; ++p) {
            const float av = ta ? a.data<float>()[p * m + i] : a.data<float>()[i * kk + p];
            const float bv = tb ? b.data<float>()[j * kk + p] : b.data<float>()[p * n + j];
            sum += static_cast<double>(av) * bv;
          }
          EXPECT_NEAR(c.data<float>()[i * n + j], 0.5 * sum + 2.0 * c0.data<float>()[i * n + j],
                      1e-5)
              << "ta=" << ta << " tb=" << tb;
        }
      }
    }
  }
}

TEST_F(CpuKernelsTest, MatMulWithEmptyInnerDimensionZeroes) {
  Tensor a(DType::kFloat32, Shape{0, 4}), b(DType::kFloat32, Shape{0, 3});
  Tensor c = Random(Shape{4, 3}, 5);
  k_->MatMul(a, true, b, false, 1.0f, 0.0f, c);
  for (float v : c.flat<float>()) EXPECT_EQ(v, 0.0f);
}

TEST_F(CpuKernelsTest, BiasActivationAndGrad) {
  Tensor y = Random(Shape{9, 37}, 1), bias = Random(Shape{37}, 2);
  Tensor y0 = y.Clone();
  k_->BiasActivation(bias, Activation::kRelu, y);
  for (int64_t r = 0; r < 9; ++r) {
    for (int64_t c = 0; c < 37; ++c) {
      EXPECT_EQ(y.data<float>()[r * 37 + c],
                std::max(0.0f, y0.data<float>()[r * 37 + c] + bias.data<float>()[c]));
    }
  }
  Tensor dy = Random(Shape{9, 37}, 3), db(DType::kFloat32, Shape{37});
  Tensor dy0 = dy.Clone();
  k_->BiasActivationGrad(y, Activation::kRelu, dy, db);
  for (int64_t c = 0; c < 37; ++c) {
    double sum = 0;
    for (int64_t r = 0; r < 9; ++r) {
      const float expect = y.data<float>()[r * 37 + c] > 0 ? dy0.data<float>()[r * 37 + c] : 0.0f;
      EXPECT_EQ(dy.data<float>()[r * 37 + c], expect);
      sum += expect;
    }
    EXPECT_NEAR(db.data<float>()[c], sum, 1e-5);
  }
}

TEST_F(CpuKernelsTest, SoftmaxCrossEntropyMatchesDefinition) {
  Tensor logits = Random(Shape{4, 5}, 1);
  Tensor labels(DType::kInt32, Shape{4});
  for (int i = 0; i < 4; ++i) labels.data<int32_t>()[i] = (i * 3) % 5;
  Tensor d(DType::kFloat32, Shape{4, 5});
  LossStats stats = k_->SoftmaxCrossEntropy(logits, labels, 0.5f, &d);
  double loss = 0;
  int64_t correct = 0;
  for (int r = 0; r < 4; ++r) {
    const float* row = logits.data<float>() + r * 5;
    double z = 0;
    int argmax = 0;
    for (int c = 0; c < 5; ++c) {
      z += std::exp(static_cast<double>(row[c]));
      if (row[c] > row[argmax]) argmax = c;
    }
    const int label = labels.data<int32_t>()[r];
    loss += std::log(z) - row[label];
    correct += argmax == label;
    for (int c = 0; c < 5; ++c) {
      const double p = std::exp(static_cast<double>(row[c])) / z;
      EXPECT_NEAR(d.data<float>()[r * 5 + c], 0.5 * (p - (c == label)), 1e-6);
    }
  }
  EXPECT_NEAR(stats.loss_sum, loss, 1e-5);
  EXPECT_EQ(stats.correct, correct);
}

TEST_F(CpuKernelsTest, SigmoidCrossEntropyIsStableForLargeLogits) {
  Tensor logits(DType::kFloat32, Shape{3, 1}), labels(DType::kFloat32, Shape{3});
  logits.data<float>()[0] = 100.0f;
  labels.data<float>()[0] = 1.0f;
  logits.data<float>()[1] = -100.0f;
  labels.data<float>()[1] = 1.0f;
  logits.data<float>()[2] = 0.0f;
  labels.data<float>()[2] = 0.0f;
  Tensor probs(DType::kFloat32, Shape{3});
  LossStats stats = k_->SigmoidCrossEntropy(logits, labels, 1.0f, nullptr, &probs);
  EXPECT_NEAR(stats.loss_sum, 0.0 + 100.0 + std::log(2.0), 1e-4);
  EXPECT_EQ(stats.correct, 2);  // p = 0.5 at logit 0 predicts 0 (right); -100 vs 1 is wrong
  EXPECT_NEAR(probs.data<float>()[2], 0.5f, 1e-7);
}

TEST_F(CpuKernelsTest, GatherScatterRows) {
  Tensor table = Random(Shape{6, 3}, 1);
  Tensor ids(DType::kInt64, Shape{3});
  ids.data<int64_t>()[0] = 4;
  ids.data<int64_t>()[1] = 0;
  ids.data<int64_t>()[2] = 4;
  Tensor out(DType::kFloat32, Shape{3, 3});
  k_->GatherRows(table, ids, out);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(out.data<float>()[c], table.data<float>()[12 + c]);
    EXPECT_EQ(out.data<float>()[3 + c], table.data<float>()[c]);
  }
  Tensor acc = Tensor::Zeros(DType::kFloat32, Shape{6, 3});
  k_->ScatterAddRows(out, ids, acc);
  EXPECT_FLOAT_EQ(acc.data<float>()[12], 2 * table.data<float>()[12]);
  EXPECT_FLOAT_EQ(acc.data<float>()[0], table.data<float>()[0]);
  EXPECT_EQ(acc.data<float>()[3], 0.0f);
}

TEST_F(CpuKernelsTest, SgdMomentumMatchesPyTorchDefinition) {
  Tensor w = Random(Shape{101}, 1), v = Random(Shape{101}, 2), g = Random(Shape{101}, 3);
  Tensor w0 = w.Clone(), v0 = v.Clone();
  k_->SgdUpdate(g, 0.05f, 0.9f, false, w, v);
  for (int i = 0; i < 101; ++i) {
    const float vi = 0.9f * v0.data<float>()[i] + g.data<float>()[i];
    // The vectorised loop may fuse multiply-adds: compare to float rounding.
    EXPECT_NEAR(v.data<float>()[i], vi, 1e-6);
    EXPECT_NEAR(w.data<float>()[i], w0.data<float>()[i] - 0.05f * vi, 1e-6);
  }
}

TEST_F(CpuKernelsTest, AdamMatchesPyTorchDefinition) {
  Tensor w = Random(Shape{33}, 1), g = Random(Shape{33}, 3);
  Tensor m = Tensor::Zeros(DType::kFloat32, Shape{33}),
         v = Tensor::Zeros(DType::kFloat32, Shape{33});
  Tensor w0 = w.Clone();
  AdamParams p{0.01f, 0.9f, 0.999f, 1e-8f};
  k_->AdamUpdate(g, p, 1, w, m, v);
  for (int i = 0; i < 33; ++i) {
    const double gi = g.data<float>()[i];
    const double mi = 0.1 * gi, vi = 0.001 * gi * gi;
    const double mhat = mi / 0.1, vhat = vi / 0.001;
    EXPECT_NEAR(w.data<float>()[i], w0.data<float>()[i] - 0.01 * mhat / (std::sqrt(vhat) + 1e-8),
                1e-6);
  }
}

TEST(TensorTest, SliceSharesAndReinterpret) {
  Tensor t = Tensor::Zeros(DType::kFloat32, Shape{4, 3});
  Tensor s = t.Slice(1, 3);
  EXPECT_EQ(s.shape(), (Shape{2, 3}));
  s.data<float>()[0] = 5.0f;
  EXPECT_EQ(t.data<float>()[3], 5.0f);
  EXPECT_EQ(t.Reinterpret(DType::kUInt8, Shape{48}).bytes(), 48u);
  EXPECT_EQ(t.DebugString(), "float32[4, 3] on cpu:0");
}

TEST(DeviceTest, AllAndAnyGpu) {
  const std::vector<Device> gpus = {Device::Gpu(0), Device::Gpu(1)};
  const std::vector<Device> mixed = {Device::Cpu(0), Device::Gpu(0)};
  const std::vector<Device> cpus = {Device::Cpu(0)};
  EXPECT_TRUE(AllGpus(gpus));
  EXPECT_FALSE(AllGpus(mixed));
  EXPECT_FALSE(AllGpus({}));
  EXPECT_TRUE(AnyGpu(mixed));
  EXPECT_FALSE(AnyGpu(cpus));
  EXPECT_FALSE(AnyGpu({}));
}

TEST(DeviceTest, ParsesListsAndCounts) {
  auto list = ParseDeviceList("cpu:0,cpu:1");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
  auto count = ParseDeviceList("3");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ((*count)[2], Device::Cpu(2));
  EXPECT_EQ(ParseDevice("/device:GPU:1")->ToString(), "gpu:1");
  EXPECT_FALSE(ParseDeviceList("cpu:0,cpu:0").ok());
  EXPECT_FALSE(ParseDeviceList("tpu:0").ok());
  EXPECT_FALSE(ParseDeviceList("0").ok());
}

}  // namespace
}  // namespace meshtrain

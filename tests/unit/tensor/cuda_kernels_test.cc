// Every CUDA kernel against the CPU kernel (relative error < 1e-5 in float32),
// the error paths that differ on a device (faults found by kernels, reported by
// Synchronize), copies, uploads, and the caching allocator. Label `gpu`: each
// test skips with CUDA's reason where no GPU is visible.
#include "runtime/tensor/cuda/cuda_kernels.h"

#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/tensor/cpu_kernels.h"
#include "runtime/tensor/cuda/caching_allocator.h"
#include "tests/unit/tensor/gpu_test_support.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

constexpr double kTolerance = 1e-5;

Tensor Random(Shape shape, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  Tensor t(DType::kFloat32, shape);
  for (float& v : t.flat<float>()) v = u(rng);
  return t;
}

Tensor Labels(int64_t n, int classes, uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor t(DType::kInt32, Shape{n});
  for (int32_t& v : t.flat<int32_t>()) v = static_cast<int32_t>(rng() % classes);
  return t;
}

class CudaKernelsTest : public CudaKernelsTestBase {
 protected:
  // Runs `op` on the CPU on `host` tensors and on the GPU on copies of them,
  // then returns the GPU's results brought back, in order.
  std::vector<Tensor> OnGpu(const std::vector<Tensor>& host) {
    std::vector<Tensor> device;
    for (const Tensor& t : host) device.push_back(ToDevice(*gpu_, t));
    return device;
  }
  std::vector<Tensor> Back(const std::vector<Tensor>& device) {
    std::vector<Tensor> host;
    for (const Tensor& t : device) host.push_back(ToHost(*gpu_, t));
    return host;
  }

  std::unique_ptr<Kernels> cpu_ = CreateCpuKernels(Device::Cpu(0));
};

TEST_F(CudaKernelsTest, ReportsItsDevice) {
  EXPECT_EQ(gpu_->device(), Device::Gpu(0));
  EXPECT_EQ(gpu_->allocator().device(), Device::Gpu(0));
  auto t = gpu_->Allocate(DType::kFloat32, Shape{4});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->device(), Device::Gpu(0));
}

TEST_F(CudaKernelsTest, MatMulAllTransposesMatchCpu) {
  struct Case {
    int64_t m, k, n;
  };
  for (Case s :
       {Case{7, 5, 3}, Case{256, 784, 300}, Case{256, 300, 100}, Case{1, 1, 1}, Case{33, 17, 65}}) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        for (float beta : {0.0f, 0.5f}) {
          Tensor a = Random(ta ? Shape{s.k, s.m} : Shape{s.m, s.k}, 1);
          Tensor b = Random(tb ? Shape{s.n, s.k} : Shape{s.k, s.n}, 2);
          Tensor c = Random(Shape{s.m, s.n}, 3);
          std::vector<Tensor> d = OnGpu({a, b, c});
          cpu_->MatMul(a, ta, b, tb, 1.5f, beta, c);
          gpu_->MatMul(d[0], ta, d[1], tb, 1.5f, beta, d[2]);
          ASSERT_TRUE(gpu_->Synchronize().ok());
          EXPECT_LT(RelativeError(ToHost(*gpu_, d[2]), c), kTolerance)
              << s.m << "x" << s.k << "x" << s.n << " ta=" << ta << " tb=" << tb
              << " beta=" << beta;
        }
      }
    }
  }
}

TEST_F(CudaKernelsTest, MatMulWithEmptyInnerDimensionScalesC) {
  Tensor a(DType::kFloat32, Shape{0, 4}), b(DType::kFloat32, Shape{0, 3});
  for (float beta : {0.0f, 2.0f}) {
    Tensor c = Random(Shape{4, 3}, 5);
    std::vector<Tensor> d = OnGpu({a, b, c});
    cpu_->MatMul(a, true, b, false, 1.0f, beta, c);
    gpu_->MatMul(d[0], true, d[1], false, 1.0f, beta, d[2]);
    EXPECT_LT(RelativeError(ToHost(*gpu_, d[2]), c), kTolerance) << "beta " << beta;
  }
}

TEST_F(CudaKernelsTest, BiasActivationAndGradMatchCpu) {
  for (Activation act : {Activation::kRelu, Activation::kNone}) {
    Tensor y = Random(Shape{257, 300}, 1), bias = Random(Shape{300}, 2);
    Tensor dy = Random(Shape{257, 300}, 3), db(DType::kFloat32, Shape{300});
    std::vector<Tensor> d = OnGpu({y, bias, dy, db});
    cpu_->BiasActivation(bias, act, y);
    gpu_->BiasActivation(d[1], act, d[0]);
    cpu_->BiasActivationGrad(y, act, dy, db);
    gpu_->BiasActivationGrad(d[0], act, d[2], d[3]);
    ASSERT_TRUE(gpu_->Synchronize().ok());
    std::vector<Tensor> back = Back(d);
    EXPECT_LT(RelativeError(back[0], y), kTolerance);
    EXPECT_LT(RelativeError(back[2], dy), kTolerance);
    EXPECT_LT(RelativeError(back[3], db), kTolerance);
  }
}

TEST_F(CudaKernelsTest, BatchNormMatchesCpu) {
  // 1001 rows of 37 channels; gamma given and absent.
  for (bool affine : {true, false}) {
    Tensor x = Random(Shape{1001, 37}, 4), shift = Random(Shape{37}, 5);
    Tensor gamma = Random(Shape{37}, 6), beta = Random(Shape{37}, 7),
           dy = Random(Shape{1001, 37}, 8);
    Tensor sums(DType::kFloat32, Shape{75}), mean(DType::kFloat32, Shape{37});
    Tensor variance(DType::kFloat32, Shape{37}), y(DType::kFloat32, Shape{1001, 37});
    Tensor grad_sums(DType::kFloat32, Shape{75}), dx(DType::kFloat32, Shape{1001, 37});
    std::vector<Tensor> d =
        OnGpu({x, shift, gamma, beta, dy, sums, mean, variance, y, grad_sums, dx});
    const Tensor* g = affine ? &gamma : nullptr;
    const Tensor* b = affine ? &beta : nullptr;
    cpu_->BatchNormSums(x, shift, sums);
    cpu_->BatchNormMoments(sums, shift, mean, variance);
    cpu_->BatchNormForward(x, mean, variance, g, b, 1e-3f, y);
    cpu_->BatchNormGradSums(x, mean, variance, 1e-3f, dy, grad_sums);
    cpu_->BatchNormInputGrad(x, mean, variance, g, 1e-3f, grad_sums, dy, dx);
    gpu_->BatchNormSums(d[0], d[1], d[5]);
    gpu_->BatchNormMoments(d[5], d[1], d[6], d[7]);
    gpu_->BatchNormForward(d[0], d[6], d[7], affine ? &d[2] : nullptr, affine ? &d[3] : nullptr,
                           1e-3f, d[8]);
    gpu_->BatchNormGradSums(d[0], d[6], d[7], 1e-3f, d[4], d[9]);
    gpu_->BatchNormInputGrad(d[0], d[6], d[7], affine ? &d[2] : nullptr, 1e-3f, d[9], d[4], d[10]);
    ASSERT_TRUE(gpu_->Synchronize().ok());
    std::vector<Tensor> back = Back(d);
    EXPECT_LT(RelativeError(back[5], sums), kTolerance);
    EXPECT_EQ(back[5].data<float>()[74], 1001.0f);  // the row count
    EXPECT_LT(RelativeError(back[6], mean), kTolerance);
    EXPECT_LT(RelativeError(back[7], variance), kTolerance);
    EXPECT_LT(RelativeError(back[8], y), kTolerance);
    EXPECT_LT(RelativeError(back[9], grad_sums), kTolerance);
    EXPECT_LT(RelativeError(back[10], dx), kTolerance);
  }
}

TEST_F(CudaKernelsTest, SoftmaxCrossEntropyMatchesCpu) {
  // One block, several blocks, and more rows than an evaluation chunk.
  for (int64_t n : {1, 257, 2500}) {
    Tensor logits = Random(Shape{n, 10}, 7, 5.0f);
    Tensor labels = Labels(n, 10, 8);
    Tensor dlogits(DType::kFloat32, Shape{n, 10});
    std::vector<Tensor> d = OnGpu({logits, labels, dlogits});
    const LossStats want = cpu_->SoftmaxCrossEntropy(logits, labels, 1.0f / 256, &dlogits);
    const LossStats got = gpu_->SoftmaxCrossEntropy(d[0], d[1], 1.0f / 256, &d[2]);
    ASSERT_TRUE(gpu_->Synchronize().ok());
    EXPECT_NEAR(got.loss_sum, want.loss_sum, kTolerance * std::abs(want.loss_sum)) << n;
    EXPECT_EQ(got.correct, want.correct) << n;
    EXPECT_LT(RelativeError(ToHost(*gpu_, d[2]), dlogits), kTolerance) << n;
    const LossStats no_grad = gpu_->SoftmaxCrossEntropy(d[0], d[1], 0.0f, nullptr);
    EXPECT_EQ(no_grad.loss_sum, got.loss_sum);
    EXPECT_EQ(no_grad.correct, got.correct);
  }
}

TEST_F(CudaKernelsTest, BadLabelIsReportedBySynchronize) {
  Tensor logits = Random(Shape{4, 10}, 1);
  Tensor labels = Labels(4, 10, 2);
  labels.data<int32_t>()[2] = 10;
  std::vector<Tensor> d = OnGpu({logits, labels});
  (void)gpu_->SoftmaxCrossEntropy(d[0], d[1], 1.0f, nullptr);
  absl::Status status = gpu_->Synchronize();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("label 10 is out of range for 10 classes"));
  EXPECT_THAT(status.message(), HasSubstr("gpu:0"));
  // Reported once; the kernels go on working.
  EXPECT_TRUE(gpu_->Synchronize().ok());
  labels.data<int32_t>()[2] = 3;
  d = OnGpu({logits, labels});
  const LossStats want = cpu_->SoftmaxCrossEntropy(logits, labels, 1.0f, nullptr);
  const LossStats got = gpu_->SoftmaxCrossEntropy(d[0], d[1], 1.0f, nullptr);
  EXPECT_TRUE(gpu_->Synchronize().ok());
  EXPECT_NEAR(got.loss_sum, want.loss_sum, kTolerance * std::abs(want.loss_sum));
}

TEST_F(CudaKernelsTest, SigmoidCrossEntropyMatchesCpu) {
  const int64_t n = 1000;
  Tensor logits = Random(Shape{n, 1}, 3, 8.0f);
  Tensor labels(DType::kFloat32, Shape{n});
  for (int64_t i = 0; i < n; ++i) labels.data<float>()[i] = static_cast<float>(i % 3 == 0);
  Tensor dlogits(DType::kFloat32, Shape{n, 1}), probabilities(DType::kFloat32, Shape{n});
  std::vector<Tensor> d = OnGpu({logits, labels, dlogits, probabilities});
  const LossStats want = cpu_->SigmoidCrossEntropy(logits, labels, 0.5f, &dlogits, &probabilities);
  const LossStats got = gpu_->SigmoidCrossEntropy(d[0], d[1], 0.5f, &d[2], &d[3]);
  ASSERT_TRUE(gpu_->Synchronize().ok());
  EXPECT_NEAR(got.loss_sum, want.loss_sum, kTolerance * std::abs(want.loss_sum));
  EXPECT_EQ(got.correct, want.correct);
  std::vector<Tensor> back = Back(d);
  EXPECT_LT(RelativeError(back[2], dlogits), kTolerance);
  EXPECT_LT(RelativeError(back[3], probabilities), kTolerance);
}

TEST_F(CudaKernelsTest, GatherAndScatterRowsMatchCpu) {
  Tensor table = Random(Shape{50, 16}, 1);
  Tensor ids(DType::kInt64, Shape{7});
  const int64_t picks[] = {3, 49, 0, 3, 17, 3, 49};  // repeats: scatter-add accumulates
  for (int i = 0; i < 7; ++i) ids.data<int64_t>()[i] = picks[i];
  Tensor gathered(DType::kFloat32, Shape{7, 16});
  Tensor rows = Random(Shape{7, 16}, 2);
  Tensor added = Random(Shape{50, 16}, 3);
  std::vector<Tensor> d = OnGpu({table, ids, gathered, rows, added});
  cpu_->GatherRows(table, ids, gathered);
  gpu_->GatherRows(d[0], d[1], d[2]);
  cpu_->ScatterAddRows(rows, ids, added);
  gpu_->ScatterAddRows(d[3], d[1], d[4]);
  ASSERT_TRUE(gpu_->Synchronize().ok());
  std::vector<Tensor> back = Back(d);
  EXPECT_LT(RelativeError(back[2], gathered), kTolerance);
  EXPECT_LT(RelativeError(back[4], added), kTolerance);

  Tensor distinct(DType::kInt64, Shape{3});
  const int64_t unique[] = {5, 0, 42};
  for (int i = 0; i < 3; ++i) distinct.data<int64_t>()[i] = unique[i];
  Tensor three = Random(Shape{3, 16}, 4);
  Tensor target = Random(Shape{50, 16}, 5);
  std::vector<Tensor> e = OnGpu({distinct, three, target});
  cpu_->ScatterRows(three, distinct, target);
  gpu_->ScatterRows(e[1], e[0], e[2]);
  EXPECT_LT(RelativeError(ToHost(*gpu_, e[2]), target), kTolerance);
}

TEST_F(CudaKernelsTest, BadRowIdIsReportedBySynchronize) {
  Tensor table = Random(Shape{5, 4}, 1);
  Tensor ids(DType::kInt64, Shape{2});
  ids.data<int64_t>()[0] = 1;
  ids.data<int64_t>()[1] = 5;
  Tensor out(DType::kFloat32, Shape{2, 4});
  std::vector<Tensor> d = OnGpu({table, ids, out});
  gpu_->GatherRows(d[0], d[1], d[2]);
  absl::Status status = gpu_->Synchronize();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("row id 5 is out of range for 5 rows"));
}

TEST_F(CudaKernelsTest, FillAxpyScaleMatchCpu) {
  Tensor x = Random(Shape{1000003}, 1), y = Random(Shape{1000003}, 2), z(DType::kFloat32, Shape{9});
  std::vector<Tensor> d = OnGpu({x, y, z});
  cpu_->Axpy(-0.25f, x, y);
  gpu_->Axpy(-0.25f, d[0], d[1]);
  cpu_->Scale(3.0f, y);
  gpu_->Scale(3.0f, d[1]);
  cpu_->Fill(0.75f, z);
  gpu_->Fill(0.75f, d[2]);
  ASSERT_TRUE(gpu_->Synchronize().ok());
  std::vector<Tensor> back = Back(d);
  EXPECT_LT(RelativeError(back[1], y), kTolerance);
  EXPECT_LT(RelativeError(back[2], z), kTolerance);
}

TEST_F(CudaKernelsTest, SgdUpdatesMatchCpuOverSteps) {
  for (float momentum : {0.0f, 0.9f}) {
    for (bool nesterov : {false, true}) {
      if (nesterov && momentum == 0.0f) continue;
      Tensor var = Random(Shape{300, 100}, 1),
             velocity = Tensor::Zeros(DType::kFloat32, Shape{300, 100});
      std::vector<Tensor> d = OnGpu({var, velocity});
      for (uint32_t step = 0; step < 5; ++step) {
        Tensor grad = Random(Shape{300, 100}, 10 + step);
        Tensor dgrad = ToDevice(*gpu_, grad);
        cpu_->SgdUpdate(grad, 0.05f, momentum, nesterov, var, velocity);
        gpu_->SgdUpdate(dgrad, 0.05f, momentum, nesterov, d[0], d[1]);
      }
      ASSERT_TRUE(gpu_->Synchronize().ok());
      std::vector<Tensor> back = Back(d);
      EXPECT_LT(RelativeError(back[0], var), kTolerance) << momentum << " " << nesterov;
      if (momentum > 0) {
        EXPECT_LT(RelativeError(back[1], velocity), kTolerance);
      }
    }
  }
}

TEST_F(CudaKernelsTest, AdamMatchesCpuOverSteps) {
  Tensor var = Random(Shape{784, 30}, 1);
  Tensor m = Tensor::Zeros(DType::kFloat32, Shape{784, 30});
  Tensor v = Tensor::Zeros(DType::kFloat32, Shape{784, 30});
  std::vector<Tensor> d = OnGpu({var, m, v});
  AdamParams params;
  params.learning_rate = 0.01f;
  for (int64_t step = 1; step <= 5; ++step) {
    Tensor grad = Random(Shape{784, 30}, 20 + static_cast<uint32_t>(step));
    Tensor dgrad = ToDevice(*gpu_, grad);
    cpu_->AdamUpdate(grad, params, step, var, m, v);
    gpu_->AdamUpdate(dgrad, params, step, d[0], d[1], d[2]);
  }
  ASSERT_TRUE(gpu_->Synchronize().ok());
  std::vector<Tensor> back = Back(d);
  EXPECT_LT(RelativeError(back[0], var), kTolerance);
  EXPECT_LT(RelativeError(back[1], m), kTolerance);
  EXPECT_LT(RelativeError(back[2], v), kTolerance);
}

TEST_F(CudaKernelsTest, CopiesBetweenHostAndDeviceAndWithinTheDevice) {
  Tensor ints(DType::kInt32, Shape{1001});
  for (int i = 0; i < 1001; ++i) ints.data<int32_t>()[i] = i * 7 - 3;
  Tensor a = ToDevice(*gpu_, ints);
  auto b = gpu_->Allocate(DType::kInt32, Shape{1001});
  ASSERT_TRUE(b.ok());
  gpu_->Copy(a, *b);  // device to device, stream-ordered
  Tensor back = ToHost(*gpu_, *b);
  for (int i = 0; i < 1001; ++i) ASSERT_EQ(back.data<int32_t>()[i], i * 7 - 3) << i;
  // A slice is a view: copying into it writes the middle rows only.
  Tensor ones(DType::kInt32, Shape{10});
  for (int32_t& v : ones.flat<int32_t>()) v = 1;
  Tensor middle = b->Slice(100, 110);
  gpu_->Copy(ones, middle);
  back = ToHost(*gpu_, *b);
  EXPECT_EQ(back.data<int32_t>()[99], 99 * 7 - 3);
  EXPECT_EQ(back.data<int32_t>()[100], 1);
  EXPECT_EQ(back.data<int32_t>()[109], 1);
  EXPECT_EQ(back.data<int32_t>()[110], 110 * 7 - 3);
}

TEST_F(CudaKernelsTest, CopiesBetweenTwoGpus) {
  MESHTRAIN_SKIP_WITHOUT_GPU(2);
  auto other = CreateCudaKernels(Device::Gpu(1));
  ASSERT_TRUE(other.ok()) << other.status();
  Tensor host = Random(Shape{4096}, 9);
  Tensor on1 = ToDevice(**other, host);
  auto on0 = gpu_->Allocate(DType::kFloat32, Shape{4096});
  ASSERT_TRUE(on0.ok());
  gpu_->Copy(on1, *on0);
  EXPECT_EQ(RelativeError(ToHost(*gpu_, *on0), host), 0.0);
}

TEST_F(CudaKernelsTest, UploadBatchStagesThroughTwoBuffers) {
  std::vector<Batch> host;
  for (uint32_t i = 0; i < 3; ++i)
    host.push_back(Batch{Random(Shape{256, 784}, i), Labels(256, 10, i)});
  Batch previous;
  for (uint32_t i = 0; i < 3; ++i) {
    auto staged = gpu_->UploadBatch(host[i]);
    ASSERT_TRUE(staged.ok()) << staged.status();
    EXPECT_EQ(staged->inputs.device(), Device::Gpu(0));
    EXPECT_EQ(staged->labels.device(), Device::Gpu(0));
    EXPECT_EQ(staged->inputs.shape(), host[i].inputs.shape());
    EXPECT_EQ(staged->labels.dtype(), DType::kInt32);
    if (i > 0) {
      EXPECT_NE(staged->inputs.raw_data(), previous.inputs.raw_data()) << "double-buffered";
    }
    // Work queued now sees the upload (the compute stream waits for it).
    EXPECT_EQ(RelativeError(ToHost(*gpu_, staged->inputs), host[i].inputs), 0.0);
    Tensor labels = ToHost(*gpu_, staged->labels);
    for (int64_t r = 0; r < 256; ++r) {
      ASSERT_EQ(labels.data<int32_t>()[r], host[i].labels.data<int32_t>()[r]);
    }
    previous = *staged;
  }
  // A batch already on the device passes through.
  auto again = gpu_->UploadBatch(previous);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->inputs.raw_data(), previous.inputs.raw_data());
  // A larger batch (an evaluation chunk) grows the buffers.
  Batch big{Random(Shape{2500, 784}, 5), Labels(2500, 10, 5)};
  auto staged = gpu_->UploadBatch(big);
  ASSERT_TRUE(staged.ok());
  EXPECT_EQ(RelativeError(ToHost(*gpu_, staged->inputs), big.inputs), 0.0);
}

TEST(CachingAllocatorTest, RoundsSmallAndLargeRequests) {
  EXPECT_EQ(CachingAllocator::RoundUp(1), 512u);
  EXPECT_EQ(CachingAllocator::RoundUp(512), 512u);
  EXPECT_EQ(CachingAllocator::RoundUp(513), 1024u);
  EXPECT_EQ(CachingAllocator::RoundUp(size_t{1} << 20), size_t{1} << 20);
  EXPECT_EQ(CachingAllocator::RoundUp((size_t{1} << 20) + 1), size_t{2} << 20);
  EXPECT_EQ(CachingAllocator::RoundUp((size_t{5} << 20) + 7), size_t{6} << 20);
}

TEST(CachingAllocatorTest, ReusesFreedBlocksAndEnforcesItsLimit) {
  MESHTRAIN_SKIP_WITHOUT_GPU(1);
  CachingAllocator allocator({Device::Gpu(0), 0, int64_t{8} << 20, "gpu:0 (test, limit 8 MiB)"});
  auto a = allocator.Allocate(size_t{3} << 20);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(allocator.stats().cuda_mallocs, 1);
  allocator.Deallocate(*a, size_t{3} << 20);
  auto b = allocator.Allocate(size_t{3} << 20);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, *a) << "the cached block is handed out again";
  EXPECT_EQ(allocator.stats().cuda_mallocs, 1);
  EXPECT_EQ(allocator.stats().in_use_bytes, int64_t{4} << 20);
  auto c = allocator.Allocate(size_t{3} << 20);
  ASSERT_TRUE(c.ok());
  auto too_much = allocator.Allocate(size_t{1} << 20);
  EXPECT_EQ(too_much.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(too_much.status().message(), HasSubstr("gpu:0 (test, limit 8 MiB)"));
  EXPECT_THAT(too_much.status().message(), HasSubstr("limit 8388608 bytes"));
  EXPECT_THAT(too_much.status().message(), HasSubstr("--gpu-memory-limit"));
  // A cached block too big to hand out (it would waste more than half) is
  // returned to CUDA to make room under the limit.
  allocator.Deallocate(*c, size_t{3} << 20);
  EXPECT_EQ(allocator.stats().cached_bytes, int64_t{4} << 20);
  auto small = allocator.Allocate(size_t{1} << 20);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(allocator.stats().cached_bytes, 0);
  EXPECT_EQ(allocator.stats().cuda_mallocs, 3);
  EXPECT_EQ(allocator.stats().peak_in_use_bytes, int64_t{8} << 20);
  allocator.Deallocate(*b, size_t{3} << 20);
  allocator.Deallocate(*small, size_t{1} << 20);
  EXPECT_TRUE(allocator.EmptyCache().ok());
  EXPECT_EQ(allocator.stats().cached_bytes, 0);
  EXPECT_EQ(allocator.Allocate(0).value(), nullptr);
}

}  // namespace
}  // namespace meshtrain

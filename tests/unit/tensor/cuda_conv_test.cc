// The CUDA convolution and pooling kernels against the naive reference
// (conv_reference.h), relative error < 1e-5, over the reference CNN's layers
// and odd shapes (stride 2, same padding only at the bottom/right, valid).
// Label `gpu`: each test skips with CUDA's reason where no GPU is visible.
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "runtime/tensor/cuda/cuda_kernels.h"
#include "tests/unit/tensor/conv_reference.h"
#include "tests/unit/tensor/gpu_test_support.h"

namespace meshtrain {
namespace {

constexpr double kTolerance = 1e-5;

Tensor Random(const Shape& shape, uint32_t seed) { return testing::UniformTensor(shape, seed); }

class CudaConvTest : public CudaKernelsTestBase {
 protected:
  Tensor Empty(const Shape& shape) {
    absl::StatusOr<Tensor> t = gpu_->Allocate(DType::kFloat32, shape);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : Tensor();
  }
};

TEST_F(CudaConvTest, ConvolutionMatchesReference) {
  const Conv2DParams cases[] = {
      {2, 28, 28, 1, 32, 3, 3, 1, 1, Padding::kSame},
      {2, 14, 14, 32, 64, 3, 3, 1, 1, Padding::kSame},
      {2, 6, 6, 5, 3, 3, 3, 2, 2, Padding::kSame},
      {1, 7, 5, 3, 1, 2, 3, 2, 1, Padding::kValid},
      {1, 3, 3, 3, 5, 5, 5, 1, 1, Padding::kSame},
  };
  uint32_t seed = 1;
  for (const Conv2DParams& p : cases) {
    absl::StatusOr<Conv2DGeometry> g = InferConv2D(p);
    ASSERT_TRUE(g.ok()) << g.status();
    const std::string name = g->input_shape().ToString() + " * " + g->filter_shape().ToString();
    const Tensor x = Random(g->input_shape(), seed++), w = Random(g->filter_shape(), seed++);
    const Tensor b = Random(g->bias_shape(), seed++), dy = Random(g->output_shape(), seed++);
    const Tensor gx = ToDevice(*gpu_, x), gw = ToDevice(*gpu_, w), gb = ToDevice(*gpu_, b);
    const Tensor gdy = ToDevice(*gpu_, dy);
    Tensor y = Empty(g->output_shape()), dx = Empty(g->input_shape());
    Tensor dw = Empty(g->filter_shape()), db = Empty(g->bias_shape());
    gpu_->Conv2DForward(*g, gx, gw, &gb, Activation::kRelu, y);
    gpu_->Conv2DBackwardData(*g, gdy, gw, dx);
    gpu_->Conv2DBackwardFilter(*g, gx, gdy, dw, &db);
    ASSERT_TRUE(gpu_->Synchronize().ok()) << name;
    EXPECT_LT(
        RelativeError(ToHost(*gpu_, y), testing::RefConv2DForward(*g, x, w, &b, Activation::kRelu)),
        kTolerance)
        << name;
    EXPECT_LT(RelativeError(ToHost(*gpu_, dx), testing::RefConv2DBackwardData(*g, dy, w)),
              kTolerance)
        << name;
    EXPECT_LT(RelativeError(ToHost(*gpu_, dw), testing::RefConv2DBackwardFilter(*g, x, dy)),
              kTolerance)
        << name;
    EXPECT_LT(RelativeError(ToHost(*gpu_, db), testing::RefBiasGrad(dy)), kTolerance) << name;
  }
}

TEST_F(CudaConvTest, PoolingMatchesReference) {
  const Pool2DParams cases[] = {
      {2, 28, 28, 32, 2, 2, 2, 2, Padding::kValid},
      {1, 7, 5, 3, 2, 2, 2, 2, Padding::kSame},
      {2, 5, 6, 5, 3, 3, 1, 1, Padding::kSame},
  };
  uint32_t seed = 50;
  for (const Pool2DParams& p : cases) {
    absl::StatusOr<Pool2DGeometry> g = InferPool2D(p);
    ASSERT_TRUE(g.ok()) << g.status();
    const std::string name = g->input_shape().ToString();
    const Tensor x = Random(g->input_shape(), seed++), dy = Random(g->output_shape(), seed++);
    const Tensor gx = ToDevice(*gpu_, x), gdy = ToDevice(*gpu_, dy);
    Tensor y = Empty(g->output_shape()), dx = Empty(g->input_shape());
    gpu_->MaxPool2DForward(*g, gx, y);
    gpu_->MaxPool2DBackward(*g, gx, y, gdy, dx);
    EXPECT_LT(RelativeError(ToHost(*gpu_, y), testing::RefMaxPool2DForward(*g, x)), kTolerance)
        << name;
    EXPECT_LT(RelativeError(ToHost(*gpu_, dx), testing::RefMaxPool2DBackward(*g, x, dy)),
              kTolerance)
        << name;
    gpu_->AvgPool2DForward(*g, gx, y);
    gpu_->AvgPool2DBackward(*g, gdy, dx);
    EXPECT_LT(RelativeError(ToHost(*gpu_, y), testing::RefAvgPool2DForward(*g, x)), kTolerance)
        << name;
    EXPECT_LT(RelativeError(ToHost(*gpu_, dx), testing::RefAvgPool2DBackward(*g, dy)), kTolerance)
        << name;
  }
}

}  // namespace
}  // namespace meshtrain

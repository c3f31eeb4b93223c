// CPU convolution and pooling against the naive reference (conv_reference.h):
// oneDNN in each layout and the im2col + OpenBLAS baseline, over odd shapes,
// both paddings, strides 1 and 2 and channel counts 1, 3 and 5; then the
// Kernels calls that reach them.
#include <cmath>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "runtime/tensor/cpu_kernels.h"
#include "runtime/tensor/dnnl_conv.h"
#include "runtime/tensor/im2col_conv.h"
#include "tests/unit/tensor/conv_reference.h"

namespace meshtrain {
namespace {

using testing::RefAvgPool2DBackward;
using testing::RefAvgPool2DForward;
using testing::RefBiasGrad;
using testing::RefConv2DBackwardData;
using testing::RefConv2DBackwardFilter;
using testing::RefConv2DForward;
using testing::RefMaxPool2DBackward;
using testing::RefMaxPool2DForward;

Tensor Random(const Shape& shape, uint32_t seed) { return testing::UniformTensor(shape, seed); }

// Filled with NaN, so an element a kernel forgets to write fails the test.
Tensor Garbage(const Shape& shape) {
  Tensor t(DType::kFloat32, shape);
  for (float& v : t.flat<float>()) v = std::nanf("");
  return t;
}

void ExpectNear(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  int failures = 0;
  for (int64_t i = 0; i < want.num_elements() && failures < 5; ++i) {
    const float w = want.data<float>()[i], g = got.data<float>()[i];
    if (!(std::fabs(g - w) <= 1e-4f * (1.0f + std::fabs(w)))) {
      ADD_FAILURE() << what << " element " << i << ": got " << g << ", want " << w;
      ++failures;
    }
  }
}

struct ConvCase {
  int64_t batch, height, width, in, out, fh, fw, sh, sw;
  Padding padding;
};

std::string Name(const ConvCase& c) {
  return std::to_string(c.batch) + "x" + std::to_string(c.height) + "x" + std::to_string(c.width) +
         "x" + std::to_string(c.in) + " * " + std::to_string(c.fh) + "x" + std::to_string(c.fw) +
         "x" + std::to_string(c.out) + " stride " + std::to_string(c.sh) + "," +
         std::to_string(c.sw) + " " + std::string(PaddingName(c.padding));
}

const ConvCase kConvCases[] = {
    {1, 5, 7, 1, 1, 3, 3, 1, 1, Padding::kSame},
    {1, 5, 7, 3, 5, 3, 3, 2, 2, Padding::kSame},
    {2, 6, 6, 5, 3, 3, 3, 2, 2, Padding::kSame},  // pads only bottom/right
    {1, 7, 5, 3, 1, 2, 3, 2, 1, Padding::kValid},
    {3, 9, 8, 1, 5, 5, 5, 1, 1, Padding::kSame},
    {2, 8, 8, 5, 5, 1, 1, 2, 2, Padding::kValid},
    {1, 4, 4, 3, 3, 4, 4, 1, 1, Padding::kValid},  // the filter covers the input
    {1, 3, 3, 3, 5, 5, 5, 1, 1, Padding::kSame},   // the filter is larger than the input
    {1, 6, 5, 3, 5, 2, 2, 1, 1, Padding::kSame},   // an even filter
    {1, 7, 7, 1, 3, 3, 3, 2, 2, Padding::kValid},
    {2, 28, 28, 1, 32, 3, 3, 1, 1, Padding::kSame},  // the reference CNN's layers
    {2, 14, 14, 32, 64, 3, 3, 1, 1, Padding::kSame},
};

Conv2DGeometry Geometry(const ConvCase& c) {
  absl::StatusOr<Conv2DGeometry> g = InferConv2D({.batch = c.batch,
                                                  .height = c.height,
                                                  .width = c.width,
                                                  .in_channels = c.in,
                                                  .out_channels = c.out,
                                                  .filter_height = c.fh,
                                                  .filter_width = c.fw,
                                                  .stride_height = c.sh,
                                                  .stride_width = c.sw,
                                                  .padding = c.padding});
  EXPECT_TRUE(g.ok()) << g.status();
  return *g;
}

std::unique_ptr<CpuConv2D> MakeConv(const std::string& name) {
  if (name == "im2col") return std::make_unique<Im2colConv2D>();
  DnnlConv2D::Options options;
  if (name == "dnnl_nhwc") options.layout = DnnlConv2D::Layout::kNhwc;
  if (name == "dnnl_blocked") options.layout = DnnlConv2D::Layout::kBlocked;
  return std::make_unique<DnnlConv2D>(options);
}

class ConvTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<CpuConv2D> conv_ = MakeConv(GetParam());
};

TEST_P(ConvTest, ForwardMatchesReference) {
  uint32_t seed = 1;
  for (const ConvCase& c : kConvCases) {
    const Conv2DGeometry g = Geometry(c);
    const Tensor x = Random(g.input_shape(), seed++), w = Random(g.filter_shape(), seed++);
    const Tensor b = Random(g.bias_shape(), seed++);
    for (const bool with_bias : {false, true}) {
      for (const Activation act : {Activation::kNone, Activation::kRelu}) {
        Tensor y = Garbage(g.output_shape());
        conv_->Forward(g, x, w, with_bias ? &b : nullptr, act, y);
        ExpectNear(
            y, RefConv2DForward(g, x, w, with_bias ? &b : nullptr, act),
            Name(c) + (with_bias ? " bias" : "") + (act == Activation::kRelu ? " relu" : ""));
      }
    }
  }
}

TEST_P(ConvTest, BackwardMatchesReference) {
  uint32_t seed = 100;
  for (const ConvCase& c : kConvCases) {
    const Conv2DGeometry g = Geometry(c);
    const Tensor x = Random(g.input_shape(), seed++), w = Random(g.filter_shape(), seed++);
    const Tensor dy = Random(g.output_shape(), seed++);
    Tensor dx = Garbage(g.input_shape());
    conv_->BackwardData(g, dy, w, dx);
    ExpectNear(dx, RefConv2DBackwardData(g, dy, w), Name(c) + " dx");
    Tensor dw = Garbage(g.filter_shape()), db = Garbage(g.bias_shape());
    conv_->BackwardFilter(g, x, dy, dw, &db);
    ExpectNear(dw, RefConv2DBackwardFilter(g, x, dy), Name(c) + " dfilter");
    ExpectNear(db, RefBiasGrad(dy), Name(c) + " dbias");
    // Twice, and without the bias: nothing accumulates across calls.
    conv_->BackwardFilter(g, x, dy, dw, nullptr);
    ExpectNear(dw, RefConv2DBackwardFilter(g, x, dy), Name(c) + " dfilter again");
  }
}

TEST_P(ConvTest, EmptyBatchWritesZeroFilterGradient) {
  ConvCase c = kConvCases[1];
  c.batch = 0;
  const Conv2DGeometry g = Geometry(c);
  Tensor x(DType::kFloat32, g.input_shape()), dy(DType::kFloat32, g.output_shape());
  Tensor y(DType::kFloat32, g.output_shape()), dx(DType::kFloat32, g.input_shape());
  const Tensor w = Random(g.filter_shape(), 1);
  conv_->Forward(g, x, w, nullptr, Activation::kNone, y);
  conv_->BackwardData(g, dy, w, dx);
  Tensor dw = Garbage(g.filter_shape()), db = Garbage(g.bias_shape());
  conv_->BackwardFilter(g, x, dy, dw, &db);
  for (float v : dw.flat<float>()) EXPECT_EQ(v, 0.0f);
  for (float v : db.flat<float>()) EXPECT_EQ(v, 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Cpu, ConvTest,
                         ::testing::Values("dnnl", "dnnl_nhwc", "dnnl_blocked", "im2col"),
                         [](const auto& info) { return info.param; });

// The reference's backward is the gradient of its forward: central
// differences of sum(forward * r) agree with backward(dy = r).
TEST(ConvReferenceTest, BackwardIsTheGradientOfForward) {
  const Conv2DGeometry g = Geometry({1, 4, 5, 2, 3, 3, 3, 2, 2, Padding::kSame});
  Tensor x = Random(g.input_shape(), 1), w = Random(g.filter_shape(), 2);
  const Tensor r = Random(g.output_shape(), 3);
  auto loss = [&] {
    const Tensor y = RefConv2DForward(g, x, w, nullptr, Activation::kNone);
    double sum = 0;
    for (int64_t i = 0; i < y.num_elements(); ++i) sum += y.data<float>()[i] * r.data<float>()[i];
    return sum;
  };
  const Tensor dx = RefConv2DBackwardData(g, r, w);
  const Tensor dw = RefConv2DBackwardFilter(g, x, r);
  const float eps = 1e-2f;
  for (auto [t, grad] : {std::pair<Tensor*, const Tensor*>{&x, &dx}, {&w, &dw}}) {
    for (int64_t i = 0; i < t->num_elements(); ++i) {
      float& v = t->data<float>()[i];
      const float saved = v;
      v = saved + eps;
      const double up = loss();
      v = saved - eps;
      const double down = loss();
      v = saved;
      EXPECT_NEAR((up - down) / (2 * eps), grad->data<float>()[i], 1e-3) << "element " << i;
    }
  }
}

struct PoolCase {
  int64_t batch, height, width, channels, wh, ww, sh, sw;
  Padding padding;
};

const PoolCase kPoolCases[] = {
    {2, 28, 28, 32, 2, 2, 2, 2, Padding::kValid},  // the reference CNN's pools
    {1, 7, 5, 3, 2, 2, 2, 2, Padding::kValid},
    {1, 7, 5, 3, 2, 2, 2, 2, Padding::kSame},  // pads the last row and column
    {2, 5, 6, 5, 3, 3, 1, 1, Padding::kSame},  // overlapping windows
    {1, 9, 9, 1, 3, 2, 2, 3, Padding::kSame},
    {3, 4, 4, 3, 4, 4, 1, 1, Padding::kValid},
};

Pool2DGeometry PoolGeometry(const PoolCase& c) {
  absl::StatusOr<Pool2DGeometry> g = InferPool2D({.batch = c.batch,
                                                  .height = c.height,
                                                  .width = c.width,
                                                  .channels = c.channels,
                                                  .window_height = c.wh,
                                                  .window_width = c.ww,
                                                  .stride_height = c.sh,
                                                  .stride_width = c.sw,
                                                  .padding = c.padding});
  EXPECT_TRUE(g.ok()) << g.status();
  return *g;
}

class CpuPoolTest : public ::testing::Test {
 protected:
  std::unique_ptr<Kernels> k_ = CreateCpuKernels(Device::Cpu(0));
};

TEST_F(CpuPoolTest, MaxMatchesReference) {
  uint32_t seed = 1;
  for (const PoolCase& c : kPoolCases) {
    const Pool2DGeometry g = PoolGeometry(c);
    const std::string name = Name(
        {c.batch, c.height, c.width, c.channels, c.channels, c.wh, c.ww, c.sh, c.sw, c.padding});
    const Tensor x = Random(g.input_shape(), seed++), dy = Random(g.output_shape(), seed++);
    Tensor y = Garbage(g.output_shape()), dx = Garbage(g.input_shape());
    k_->MaxPool2DForward(g, x, y);
    ExpectNear(y, RefMaxPool2DForward(g, x), name + " max");
    k_->MaxPool2DBackward(g, x, y, dy, dx);
    ExpectNear(dx, RefMaxPool2DBackward(g, x, dy), name + " max backward");
  }
}

TEST_F(CpuPoolTest, AverageMatchesReference) {
  uint32_t seed = 50;
  for (const PoolCase& c : kPoolCases) {
    const Pool2DGeometry g = PoolGeometry(c);
    const std::string name = Name(
        {c.batch, c.height, c.width, c.channels, c.channels, c.wh, c.ww, c.sh, c.sw, c.padding});
    const Tensor x = Random(g.input_shape(), seed++), dy = Random(g.output_shape(), seed++);
    Tensor y = Garbage(g.output_shape()), dx = Garbage(g.input_shape());
    k_->AvgPool2DForward(g, x, y);
    ExpectNear(y, RefAvgPool2DForward(g, x), name + " average");
    k_->AvgPool2DBackward(g, dy, dx);
    ExpectNear(dx, RefAvgPool2DBackward(g, dy), name + " average backward");
  }
}

TEST_F(CpuPoolTest, MaxBackwardGivesATieToTheFirst) {
  const Pool2DGeometry g = PoolGeometry({1, 2, 2, 1, 2, 2, 2, 2, Padding::kValid});
  Tensor x = Tensor::Zeros(DType::kFloat32, g.input_shape());
  x.data<float>()[1] = x.data<float>()[3] = 5.0f;
  Tensor y(DType::kFloat32, g.output_shape()), dx(DType::kFloat32, g.input_shape());
  Tensor dy = Tensor::Zeros(DType::kFloat32, g.output_shape());
  dy.data<float>()[0] = 2.0f;
  k_->MaxPool2DForward(g, x, y);
  EXPECT_EQ(y.data<float>()[0], 5.0f);
  k_->MaxPool2DBackward(g, x, y, dy, dx);
  EXPECT_EQ(dx.data<float>()[0], 0.0f);
  EXPECT_EQ(dx.data<float>()[1], 2.0f);
  EXPECT_EQ(dx.data<float>()[2], 0.0f);
  EXPECT_EQ(dx.data<float>()[3], 0.0f);
}

TEST(CpuKernelsConvTest, ReachesTheConvolution) {
  std::unique_ptr<Kernels> k = CreateCpuKernels(Device::Cpu(0));
  const Conv2DGeometry g = Geometry(kConvCases[2]);
  const Tensor x = Random(g.input_shape(), 1), w = Random(g.filter_shape(), 2);
  const Tensor b = Random(g.bias_shape(), 3), dy = Random(g.output_shape(), 4);
  Tensor y = Garbage(g.output_shape()), dx = Garbage(g.input_shape());
  Tensor dw = Garbage(g.filter_shape()), db = Garbage(g.bias_shape());
  k->Conv2DForward(g, x, w, &b, Activation::kRelu, y);
  ExpectNear(y, RefConv2DForward(g, x, w, &b, Activation::kRelu), "forward");
  k->Conv2DBackwardData(g, dy, w, dx);
  ExpectNear(dx, RefConv2DBackwardData(g, dy, w), "dx");
  k->Conv2DBackwardFilter(g, x, dy, dw, &db);
  ExpectNear(dw, RefConv2DBackwardFilter(g, x, dy), "dfilter");
  ExpectNear(db, RefBiasGrad(dy), "dbias");
}

TEST(CpuConvDeathTest, ShapeMismatchIsABug) {
  std::unique_ptr<Kernels> k = CreateCpuKernels(Device::Cpu(0));
  const Conv2DGeometry g = Geometry(kConvCases[0]);
  Tensor x(DType::kFloat32, Shape{1, 5, 7, 2}), w(DType::kFloat32, g.filter_shape());
  Tensor y(DType::kFloat32, g.output_shape());
  EXPECT_DEATH(k->Conv2DForward(g, x, w, nullptr, Activation::kNone, y),
               "expected \\[1, 5, 7, 1\\]");
}

}  // namespace
}  // namespace meshtrain

#include "tests/unit/tensor/conv_reference.h"

#include <algorithm>
#include <limits>
#include <random>
#include <vector>

namespace meshtrain::testing {
namespace {

// Calls fn(n, oh, ow, ih, iw, fh, fw) for every output position and every
// filter tap that lands inside the input.
template <typename Fn>
void ForEachTap(const WindowAxis& rows, const WindowAxis& cols, int64_t batch, int64_t height,
                int64_t width, int64_t wh, int64_t ww, int64_t sh, int64_t sw, Fn fn) {
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t oh = 0; oh < rows.out; ++oh)
      for (int64_t ow = 0; ow < cols.out; ++ow)
        for (int64_t fh = 0; fh < wh; ++fh)
          for (int64_t fw = 0; fw < ww; ++fw) {
            const int64_t ih = oh * sh - rows.pad_before + fh;
            const int64_t iw = ow * sw - cols.pad_before + fw;
            if (ih >= 0 && ih < height && iw >= 0 && iw < width) fn(n, oh, ow, ih, iw, fh, fw);
          }
}

template <typename Fn>
void ForEachConvTap(const Conv2DGeometry& g, Fn fn) {
  const Conv2DParams& p = g.params;
  ForEachTap(g.rows, g.cols, p.batch, p.height, p.width, p.filter_height, p.filter_width,
             p.stride_height, p.stride_width, fn);
}

template <typename Fn>
void ForEachPoolTap(const Pool2DGeometry& g, Fn fn) {
  const Pool2DParams& p = g.params;
  ForEachTap(g.rows, g.cols, p.batch, p.height, p.width, p.window_height, p.window_width,
             p.stride_height, p.stride_width, fn);
}

Tensor FromDoubles(const Shape& shape, const std::vector<double>& values) {
  Tensor t(DType::kFloat32, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = static_cast<float>(values[i]);
  return t;
}

}  // namespace

Tensor UniformTensor(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Tensor t(DType::kFloat32, shape);
  for (float& v : t.flat<float>()) v = u(rng);
  return t;
}

Tensor RefConv2DForward(const Conv2DGeometry& g, const Tensor& x, const Tensor& filter,
                        const Tensor* bias, Activation act) {
  const Conv2DParams& p = g.params;
  const int64_t ci = p.in_channels, co = p.out_channels;
  std::vector<double> y(static_cast<size_t>(g.output_shape().num_elements()), 0.0);
  ForEachConvTap(
      g, [&](int64_t n, int64_t oh, int64_t ow, int64_t ih, int64_t iw, int64_t fh, int64_t fw) {
        double* out = &y[((n * g.rows.out + oh) * g.cols.out + ow) * co];
        const float* in = x.data<float>() + ((n * p.height + ih) * p.width + iw) * ci;
        const float* w = filter.data<float>() + (fh * p.filter_width + fw) * ci * co;
        for (int64_t c = 0; c < ci; ++c)
          for (int64_t o = 0; o < co; ++o) out[o] += static_cast<double>(in[c]) * w[c * co + o];
      });
  for (size_t i = 0; i < y.size(); ++i) {
    if (bias != nullptr) y[i] += bias->data<float>()[i % co];
    if (act == Activation::kRelu) y[i] = std::max(y[i], 0.0);
  }
  return FromDoubles(g.output_shape(), y);
}

Tensor RefConv2DBackwardData(const Conv2DGeometry& g, const Tensor& dy, const Tensor& filter) {
  const Conv2DParams& p = g.params;
  const int64_t ci = p.in_channels, co = p.out_channels;
  std::vector<double> dx(static_cast<size_t>(g.input_shape().num_elements()), 0.0);
  ForEachConvTap(
      g, [&](int64_t n, int64_t oh, int64_t ow, int64_t ih, int64_t iw, int64_t fh, int64_t fw) {
        const float* d = dy.data<float>() + ((n * g.rows.out + oh) * g.cols.out + ow) * co;
        double* out = &dx[((n * p.height + ih) * p.width + iw) * ci];
        const float* w = filter.data<float>() + (fh * p.filter_width + fw) * ci * co;
        for (int64_t c = 0; c < ci; ++c)
          for (int64_t o = 0; o < co; ++o) out[c] += static_cast<double>(d[o]) * w[c * co + o];
      });
  return FromDoubles(g.input_shape(), dx);
}

Tensor RefConv2DBackwardFilter(const Conv2DGeometry& g, const Tensor& x, const Tensor& dy) {
  const Conv2DParams& p = g.params;
  const int64_t ci = p.in_channels, co = p.out_channels;
  std::vector<double> dw(static_cast<size_t>(g.filter_shape().num_elements()), 0.0);
  ForEachConvTap(
      g, [&](int64_t n, int64_t oh, int64_t ow, int64_t ih, int64_t iw, int64_t fh, int64_t fw) {
        const float* d = dy.data<float>() + ((n * g.rows.out + oh) * g.cols.out + ow) * co;
        const float* in = x.data<float>() + ((n * p.height + ih) * p.width + iw) * ci;
        double* w = &dw[(fh * p.filter_width + fw) * ci * co];
        for (int64_t c = 0; c < ci; ++c)
          for (int64_t o = 0; o < co; ++o) w[c * co + o] += static_cast<double>(in[c]) * d[o];
      });
  return FromDoubles(g.filter_shape(), dw);
}

Tensor RefBiasGrad(const Tensor& dy) {
  const int64_t c = dy.shape().dim(dy.shape().rank() - 1);
  std::vector<double> db(static_cast<size_t>(c), 0.0);
  for (int64_t i = 0; i < dy.num_elements(); ++i) db[i % c] += dy.data<float>()[i];
  return FromDoubles(Shape{c}, db);
}

Tensor RefMaxPool2DForward(const Pool2DGeometry& g, const Tensor& x) {
  const Pool2DParams& p = g.params;
  const int64_t c = p.channels;
  std::vector<double> y(static_cast<size_t>(g.output_shape().num_elements()),
                        -std::numeric_limits<double>::infinity());
  ForEachPoolTap(g, [&](int64_t n, int64_t oh, int64_t ow, int64_t ih, int64_t iw, int64_t,
                        int64_t) {
    for (int64_t k = 0; k < c; ++k) {
      double& out = y[((n * g.rows.out + oh) * g.cols.out + ow) * c + k];
      out = std::max<double>(out, x.data<float>()[((n * p.height + ih) * p.width + iw) * c + k]);
    }
  });
  return FromDoubles(g.output_shape(), y);
}

Tensor RefMaxPool2DBackward(const Pool2DGeometry& g, const Tensor& x, const Tensor& dy) {
  const Pool2DParams& p = g.params;
  const int64_t c = p.channels;
  const int64_t outputs = g.output_shape().num_elements();
  std::vector<double> best(static_cast<size_t>(outputs), -std::numeric_limits<double>::infinity());
  std::vector<int64_t> where(static_cast<size_t>(outputs), -1);
  ForEachPoolTap(g,
                 [&](int64_t n, int64_t oh, int64_t ow, int64_t ih, int64_t iw, int64_t, int64_t) {
                   for (int64_t k = 0; k < c; ++k) {
                     const int64_t o = ((n * g.rows.out + oh) * g.cols.out + ow) * c + k;
                     const int64_t i = ((n * p.height + ih) * p.width + iw) * c + k;
                     if (x.data<float>()[i] > best[o]) {
                       best[o] = x.data<float>()[i];
                       where[o] = i;
                     }
                   }
                 });
  std::vector<double> dx(static_cast<size_t>(x.num_elements()), 0.0);
  for (int64_t o = 0; o < outputs; ++o) dx[where[o]] += dy.data<float>()[o];
  return FromDoubles(x.shape(), dx);
}

Tensor RefAvgPool2DForward(const Pool2DGeometry& g, const Tensor& x) {
  const Pool2DParams& p = g.params;
  const int64_t c = p.channels;
  const int64_t outputs = g.output_shape().num_elements();
  std::vector<double> sum(static_cast<size_t>(outputs), 0.0), count(sum.size(), 0.0);
  ForEachPoolTap(g,
                 [&](int64_t n, int64_t oh, int64_t ow, int64_t ih, int64_t iw, int64_t, int64_t) {
                   for (int64_t k = 0; k < c; ++k) {
                     const int64_t o = ((n * g.rows.out + oh) * g.cols.out + ow) * c + k;
                     sum[o] += x.data<float>()[((n * p.height + ih) * p.width + iw) * c + k];
                     count[o] += 1;
                   }
                 });
  for (size_t o = 0; o < sum.size(); ++o) sum[o] /= count[o];
  return FromDoubles(g.output_shape(), sum);
}

Tensor RefAvgPool2DBackward(const Pool2DGeometry& g, const Tensor& dy) {
  const Pool2DParams& p = g.params;
  const int64_t c = p.channels;
  std::vector<double> count(static_cast<size_t>(g.output_shape().num_elements()), 0.0);
  ForEachPoolTap(g, [&](int64_t n, int64_t oh, int64_t ow, int64_t, int64_t, int64_t, int64_t) {
    for (int64_t k = 0; k < c; ++k) count[((n * g.rows.out + oh) * g.cols.out + ow) * c + k] += 1;
  });
  std::vector<double> dx(static_cast<size_t>(g.input_shape().num_elements()), 0.0);
  ForEachPoolTap(
      g, [&](int64_t n, int64_t oh, int64_t ow, int64_t ih, int64_t iw, int64_t, int64_t) {
        for (int64_t k = 0; k < c; ++k) {
          const int64_t o = ((n * g.rows.out + oh) * g.cols.out + ow) * c + k;
          dx[((n * p.height + ih) * p.width + iw) * c + k] += dy.data<float>()[o] / count[o];
        }
      });
  return FromDoubles(g.input_shape(), dx);
}

}  // namespace meshtrain::testing

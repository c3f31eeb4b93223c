#include "runtime/tensor/im2col_conv.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "runtime/base/vectorize.h"

namespace meshtrain {
namespace {

// Column buffer bytes aimed at per chunk.
constexpr int64_t kChunkBytes = 2 << 20;

// Walks the column buffer of images [0, images) in order, one block of
// in_channels elements per (pixel, filter tap): fn(block, pixel) with the
// element offset of the input pixel it copies, or -1 where the tap falls in
// the padding.
template <typename Fn>
void ForEachColumnBlock(const Conv2DGeometry& g, int64_t images, Fn fn) {
  const Conv2DParams& p = g.params;
  int64_t block = 0;
  for (int64_t n = 0; n < images; ++n) {
    for (int64_t oh = 0; oh < g.rows.out; ++oh) {
      for (int64_t ow = 0; ow < g.cols.out; ++ow) {
        for (int64_t fh = 0; fh < p.filter_height; ++fh) {
          const int64_t ih = oh * p.stride_height - g.rows.pad_before + fh;
          for (int64_t fw = 0; fw < p.filter_width; ++fw, block += p.in_channels) {
            const int64_t iw = ow * p.stride_width - g.cols.pad_before + fw;
            const bool inside = ih >= 0 && ih < p.height && iw >= 0 && iw < p.width;
            fn(block, inside ? ((n * p.height + ih) * p.width + iw) * p.in_channels : -1);
          }
        }
      }
    }
  }
}

// Rows of `col` for images [0, images) of `x` (already offset to the first).
void Im2col(const Conv2DGeometry& g, const float* x, int64_t images, float* col) {
  const int64_t c = g.params.in_channels;
  ForEachColumnBlock(g, images, [&](int64_t block, int64_t pixel) {
    if (pixel < 0) {
      std::fill_n(col + block, c, 0.0f);
    } else {
      std::memcpy(col + block, x + pixel, static_cast<size_t>(c) * sizeof(float));
    }
  });
}

MESHTRAIN_VECTORIZED
void AddInto(const float* __restrict x, int64_t c, float* __restrict y) {
  for (int64_t k = 0; k < c; ++k) y[k] += x[k];
}

// The adjoint of Im2col: dx (zeroed here) += each row's windows.
void Col2im(const Conv2DGeometry& g, const float* col, int64_t images, float* dx) {
  const int64_t c = g.params.in_channels;
  std::fill_n(dx, images * g.params.height * g.params.width * c, 0.0f);
  ForEachColumnBlock(g, images, [&](int64_t block, int64_t pixel) {
    if (pixel >= 0) AddInto(col + block, c, dx + pixel);
  });
}

MESHTRAIN_VECTORIZED
void BiasRelu(const float* __restrict bias, bool relu, int64_t rows, int64_t cols,
              float* __restrict y) {
  for (int64_t r = 0; r < rows; ++r) {
    float* __restrict row = y + r * cols;
    for (int64_t k = 0; k < cols; ++k) {
      const float v = row[k] + (bias != nullptr ? bias[k] : 0.0f);
      row[k] = relu ? std::max(v, 0.0f) : v;
    }
  }
}

MESHTRAIN_VECTORIZED
void SumRows(const float* __restrict dy, int64_t rows, int64_t cols, float* __restrict out) {
  std::fill_n(out, cols, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < cols; ++k) out[k] += dy[r * cols + k];
  }
}

// The batch in chunks of a few images, so the column buffer stays near the L2
// cache: fn(first image, images, col) with `columns` grown to fit a chunk.
template <typename Fn>
void ForEachChunk(const Conv2DGeometry& g, std::vector<float>& columns, Fn fn) {
  const Conv2DParams& p = g.params;
  const int64_t image_elements =
      g.rows.out * g.cols.out * p.filter_height * p.filter_width * p.in_channels;
  const int64_t chunk =
      std::clamp<int64_t>(kChunkBytes / static_cast<int64_t>(sizeof(float)) / image_elements, 1,
                          std::max<int64_t>(p.batch, 1));
  if (columns.size() < static_cast<size_t>(chunk * image_elements)) {
    columns.resize(static_cast<size_t>(chunk * image_elements));
  }
  for (int64_t n0 = 0; n0 < p.batch; n0 += chunk) {
    fn(n0, std::min(chunk, p.batch - n0), columns.data());
  }
}

}  // namespace

void Im2colConv2D::Forward(const Conv2DGeometry& g, const Tensor& x, const Tensor& filter,
                           const Tensor* bias, Activation act, Tensor& y) {
  const Conv2DParams& p = g.params;
  const int64_t pixels = g.rows.out * g.cols.out;
  const int k = static_cast<int>(p.filter_height * p.filter_width * p.in_channels);
  const int out = static_cast<int>(p.out_channels);
  ForEachChunk(g, columns_, [&](int64_t n0, int64_t images, float* col) {
    const int m = static_cast<int>(images * pixels);
    float* y_chunk = y.data<float>() + n0 * pixels * out;
    Im2col(g, x.data<float>() + n0 * p.height * p.width * p.in_channels, images, col);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, out, k, 1.0f, col, k,
                filter.data<float>(), out, 0.0f, y_chunk, out);
    if (bias != nullptr || act == Activation::kRelu) {
      BiasRelu(bias != nullptr ? bias->data<float>() : nullptr, act == Activation::kRelu, m, out,
               y_chunk);
    }
  });
}

void Im2colConv2D::BackwardData(const Conv2DGeometry& g, const Tensor& dy, const Tensor& filter,
                                Tensor& dx) {
  const Conv2DParams& p = g.params;
  const int64_t pixels = g.rows.out * g.cols.out;
  const int k = static_cast<int>(p.filter_height * p.filter_width * p.in_channels);
  const int out = static_cast<int>(p.out_channels);
  ForEachChunk(g, columns_, [&](int64_t n0, int64_t images, float* col) {
    const int m = static_cast<int>(images * pixels);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, out, 1.0f,
                dy.data<float>() + n0 * pixels * out, out, filter.data<float>(), out, 0.0f, col, k);
    Col2im(g, col, images, dx.data<float>() + n0 * p.height * p.width * p.in_channels);
  });
}

void Im2colConv2D::BackwardFilter(const Conv2DGeometry& g, const Tensor& x, const Tensor& dy,
                                  Tensor& dfilter, Tensor* bias_grad) {
  const Conv2DParams& p = g.params;
  const int64_t pixels = g.rows.out * g.cols.out;
  const int k = static_cast<int>(p.filter_height * p.filter_width * p.in_channels);
  const int out = static_cast<int>(p.out_channels);
  if (p.batch == 0) std::fill_n(dfilter.data<float>(), dfilter.num_elements(), 0.0f);
  ForEachChunk(g, columns_, [&](int64_t n0, int64_t images, float* col) {
    const int m = static_cast<int>(images * pixels);
    Im2col(g, x.data<float>() + n0 * p.height * p.width * p.in_channels, images, col);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, out, m, 1.0f, col, k,
                dy.data<float>() + n0 * pixels * out, out, n0 == 0 ? 0.0f : 1.0f,
                dfilter.data<float>(), out);
  });
  if (bias_grad != nullptr) {
    SumRows(dy.data<float>(), p.batch * pixels, p.out_channels, bias_grad->data<float>());
  }
}

}  // namespace meshtrain

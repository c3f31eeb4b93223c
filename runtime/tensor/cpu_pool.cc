#include "runtime/tensor/cpu_pool.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "runtime/base/vectorize.h"

namespace meshtrain {
namespace {

// The window of output (oh, ow) clipped to the input: rows [h0, h1), cols [w0, w1).
struct Window {
  int64_t h0, h1, w0, w1;
  int64_t count() const { return (h1 - h0) * (w1 - w0); }
};

Window ClippedWindow(const Pool2DGeometry& g, int64_t oh, int64_t ow) {
  const Pool2DParams& p = g.params;
  const int64_t h = oh * p.stride_height - g.rows.pad_before;
  const int64_t w = ow * p.stride_width - g.cols.pad_before;
  return {std::max<int64_t>(h, 0), std::min(h + p.window_height, p.height), std::max<int64_t>(w, 0),
          std::min(w + p.window_width, p.width)};
}

// Calls fn(image, window, out) for every output position in order: `image` is
// the element offset of its image, `out` that of its first channel.
template <typename Fn>
void ForEachWindow(const Pool2DGeometry& g, Fn fn) {
  const Pool2DParams& p = g.params;
  int64_t out = 0;
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t oh = 0; oh < g.rows.out; ++oh) {
      for (int64_t ow = 0; ow < g.cols.out; ++ow, out += p.channels) {
        fn(n * p.height * p.width * p.channels, ClippedWindow(g, oh, ow), out);
      }
    }
  }
}

// Calls fn(position) for each input position (h * width + w) of the window.
template <typename Fn>
void ForEachPosition(const Window& win, int64_t width, Fn fn) {
  for (int64_t h = win.h0; h < win.h1; ++h) {
    for (int64_t w = win.w0; w < win.w1; ++w) fn(h * width + w);
  }
}

MESHTRAIN_VECTORIZED
void MaxInto(const float* __restrict x, int64_t c, float* __restrict y) {
  for (int64_t k = 0; k < c; ++k) y[k] = std::max(y[k], x[k]);
}

MESHTRAIN_VECTORIZED
void ScaledAddInto(const float* __restrict x, float scale, int64_t c, float* __restrict y) {
  for (int64_t k = 0; k < c; ++k) y[k] += scale * x[k];
}

// Strictly greater wins, so the first maximum in window order stays.
MESHTRAIN_VECTORIZED
void ArgmaxInto(const float* __restrict x, int32_t position, int64_t c, float* __restrict best,
                int32_t* __restrict where) {
  for (int64_t k = 0; k < c; ++k) {
    const bool better = x[k] > best[k];
    best[k] = better ? x[k] : best[k];
    where[k] = better ? position : where[k];
  }
}

}  // namespace

void CpuMaxPool2DForward(const Pool2DGeometry& g, const float* x, float* y) {
  const int64_t c = g.params.channels;
  ForEachWindow(g, [&](int64_t image, const Window& win, int64_t out) {
    std::fill_n(y + out, c, -std::numeric_limits<float>::infinity());
    ForEachPosition(win, g.params.width,
                    [&](int64_t position) { MaxInto(x + image + position * c, c, y + out); });
  });
}

void CpuMaxPool2DBackward(const Pool2DGeometry& g, const float* x, const float* dy, float* dx) {
  const int64_t c = g.params.channels;
  std::fill_n(dx, g.input_shape().num_elements(), 0.0f);
  std::vector<float> best(static_cast<size_t>(c));
  std::vector<int32_t> where(static_cast<size_t>(c));
  ForEachWindow(g, [&](int64_t image, const Window& win, int64_t out) {
    std::fill(best.begin(), best.end(), -std::numeric_limits<float>::infinity());
    // A window of NaNs or -inf keeps its first position.
    std::fill(where.begin(), where.end(), static_cast<int32_t>(win.h0 * g.params.width + win.w0));
    ForEachPosition(win, g.params.width, [&](int64_t position) {
      ArgmaxInto(x + image + position * c, static_cast<int32_t>(position), c, best.data(),
                 where.data());
    });
    for (int64_t k = 0; k < c; ++k) dx[image + where[k] * c + k] += dy[out + k];
  });
}

void CpuAvgPool2DForward(const Pool2DGeometry& g, const float* x, float* y) {
  const int64_t c = g.params.channels;
  ForEachWindow(g, [&](int64_t image, const Window& win, int64_t out) {
    std::fill_n(y + out, c, 0.0f);
    const float inv = 1.0f / static_cast<float>(win.count());
    ForEachPosition(win, g.params.width, [&](int64_t position) {
      ScaledAddInto(x + image + position * c, inv, c, y + out);
    });
  });
}

void CpuAvgPool2DBackward(const Pool2DGeometry& g, const float* dy, float* dx) {
  const int64_t c = g.params.channels;
  std::fill_n(dx, g.input_shape().num_elements(), 0.0f);
  ForEachWindow(g, [&](int64_t image, const Window& win, int64_t out) {
    const float inv = 1.0f / static_cast<float>(win.count());
    ForEachPosition(win, g.params.width, [&](int64_t position) {
      ScaledAddInto(dy + out, inv, c, dx + image + position * c);
    });
  });
}

}  // namespace meshtrain

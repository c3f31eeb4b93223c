#include <algorithm>
#include <cfloat>

#include "runtime/tensor/cuda/conv_kernels.h"
#include "runtime/tensor/cuda/launch.h"

namespace meshtrain::device_kernels {
namespace {

// An NHWC position: element i of a tensor [batch, height, width, channels].
struct Nhwc {
  int64_t n, h, w, c;
};

__device__ Nhwc Split(int64_t i, int64_t height, int64_t width, int64_t channels) {
  return {i / (channels * width * height), i / (channels * width) % height, i / channels % width,
          i % channels};
}

// The flat index of (n, h, w, c) in a tensor [batch, height, width, channels].
__device__ int64_t Flat(int64_t n, int64_t h, int64_t w, int64_t c, int64_t height, int64_t width,
                        int64_t channels) {
  return ((n * height + h) * width + w) * channels + c;
}

// The output rows (or columns) whose windows cover input row `i`: [first, last].
__device__ void Covering(int64_t i, int64_t pad, int64_t window, int64_t stride, int64_t out,
                         int64_t& first, int64_t& last) {
  const int64_t hi = i + pad;  // o * stride <= hi < o * stride + window
  first = hi - window + 1 <= 0 ? 0 : (hi - window + stride) / stride;
  last = min(hi / stride, out - 1);
}

// The output positions whose windows cover input position `in`: rows [h0, h1]
// and columns [w0, w1], inclusive.
struct Span {
  int64_t h0, h1, w0, w1;
};

__device__ Span Covering(const WindowGeometry& g, const Nhwc& in) {
  Span s;
  Covering(in.h, g.pad_top, g.window_height, g.stride_height, g.out_height, s.h0, s.h1);
  Covering(in.w, g.pad_left, g.window_width, g.stride_width, g.out_width, s.w0, s.w1);
  return s;
}

__global__ void ConvForwardKernel(WindowGeometry g, const float* x, const float* w,
                                  const float* bias, bool relu, float* y) {
  const int64_t total = g.batch * g.out_height * g.out_width * g.out_channels;
  MESHTRAIN_GRID_STRIDE(i, total) {
    const Nhwc out = Split(i, g.out_height, g.out_width, g.out_channels);
    const int64_t o = out.c;
    float sum = 0.0f;
    for (int64_t fh = 0; fh < g.window_height; ++fh) {
      const int64_t ih = out.h * g.stride_height - g.pad_top + fh;
      if (ih < 0 || ih >= g.height) continue;
      for (int64_t fw = 0; fw < g.window_width; ++fw) {
        const int64_t iw = out.w * g.stride_width - g.pad_left + fw;
        if (iw < 0 || iw >= g.width) continue;
        const float* in = x + Flat(out.n, ih, iw, 0, g.height, g.width, g.in_channels);
        const float* f = w + (fh * g.window_width + fw) * g.in_channels * g.out_channels + o;
        for (int64_t c = 0; c < g.in_channels; ++c) sum += in[c] * f[c * g.out_channels];
      }
    }
    if (bias != nullptr) sum += bias[o];
    y[i] = relu ? fmaxf(sum, 0.0f) : sum;
  }
}

__global__ void ConvBackwardDataKernel(WindowGeometry g, const float* dy, const float* w,
                                       float* dx) {
  const int64_t total = g.batch * g.height * g.width * g.in_channels;
  MESHTRAIN_GRID_STRIDE(i, total) {
    const Nhwc in = Split(i, g.height, g.width, g.in_channels);
    const int64_t c = in.c;
    const Span covering = Covering(g, in);
    float sum = 0.0f;
    for (int64_t oh = covering.h0; oh <= covering.h1; ++oh) {
      const int64_t fh = in.h + g.pad_top - oh * g.stride_height;
      for (int64_t ow = covering.w0; ow <= covering.w1; ++ow) {
        const int64_t fw = in.w + g.pad_left - ow * g.stride_width;
        const float* d = dy + Flat(in.n, oh, ow, 0, g.out_height, g.out_width, g.out_channels);
        const float* f = w + ((fh * g.window_width + fw) * g.in_channels + c) * g.out_channels;
        for (int64_t o = 0; o < g.out_channels; ++o) sum += d[o] * f[o];
      }
    }
    dx[i] = sum;
  }
}

// One block per filter element: its threads split the (n, oh, ow) positions
// and a tree sum in shared memory adds their parts in a fixed order.
__global__ void ConvBackwardFilterKernel(WindowGeometry g, const float* x, const float* dy,
                                         float* dw) {
  __shared__ float part[kThreads];
  const int64_t elements = g.window_height * g.window_width * g.in_channels * g.out_channels;
  const int64_t positions = g.batch * g.out_height * g.out_width;
  for (int64_t e = blockIdx.x; e < elements; e += gridDim.x) {
    const int64_t o = e % g.out_channels;
    const int64_t c = e / g.out_channels % g.in_channels;
    const int64_t fw = e / (g.out_channels * g.in_channels) % g.window_width;
    const int64_t fh = e / (g.out_channels * g.in_channels * g.window_width);
    float sum = 0.0f;
    for (int64_t p = threadIdx.x; p < positions; p += blockDim.x) {
      const Nhwc out = Split(p, g.out_height, g.out_width, 1);
      const int64_t ih = out.h * g.stride_height - g.pad_top + fh;
      const int64_t iw = out.w * g.stride_width - g.pad_left + fw;
      if (ih < 0 || ih >= g.height || iw < 0 || iw >= g.width) continue;
      sum +=
          x[Flat(out.n, ih, iw, c, g.height, g.width, g.in_channels)] * dy[p * g.out_channels + o];
    }
    part[threadIdx.x] = sum;
    __syncthreads();
    for (int half = kThreads / 2; half > 0; half /= 2) {
      if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
      __syncthreads();
    }
    if (threadIdx.x == 0) dw[e] = part[0];
    __syncthreads();
  }
}

__global__ void ColumnSumKernel(const float* dy, int64_t rows, int64_t cols, float* out) {
  MESHTRAIN_GRID_STRIDE(c, cols) {
    float sum = 0.0f;
    for (int64_t r = 0; r < rows; ++r) sum += dy[r * cols + c];
    out[c] = sum;
  }
}

// The window of output (n, oh, ow) clipped to the input.
struct Window {
  int64_t h0, h1, w0, w1;
};

__device__ Window ClippedWindow(const WindowGeometry& g, int64_t oh, int64_t ow) {
  const int64_t h = oh * g.stride_height - g.pad_top;
  const int64_t w = ow * g.stride_width - g.pad_left;
  return {max(h, int64_t{0}), min(h + g.window_height, g.height), max(w, int64_t{0}),
          min(w + g.window_width, g.width)};
}

// The flat input index of the first maximum of a window, channel c.
__device__ int64_t Argmax(const WindowGeometry& g, const float* x, int64_t n, const Window& win,
                          int64_t c) {
  int64_t best_index = Flat(n, win.h0, win.w0, c, g.height, g.width, g.in_channels);
  float best = -FLT_MAX;
  bool found = false;
  for (int64_t h = win.h0; h < win.h1; ++h) {
    for (int64_t w = win.w0; w < win.w1; ++w) {
      const int64_t index = Flat(n, h, w, c, g.height, g.width, g.in_channels);
      if (!found || x[index] > best) {
        found = true;
        best = x[index];
        best_index = index;
      }
    }
  }
  return best_index;
}

__global__ void PoolForwardKernel(WindowGeometry g, const float* x, bool max_pool, float* y) {
  const int64_t total = g.batch * g.out_height * g.out_width * g.in_channels;
  MESHTRAIN_GRID_STRIDE(i, total) {
    const Nhwc out = Split(i, g.out_height, g.out_width, g.in_channels);
    const Window win = ClippedWindow(g, out.h, out.w);
    if (max_pool) {
      y[i] = x[Argmax(g, x, out.n, win, out.c)];
      continue;
    }
    float sum = 0.0f;
    for (int64_t h = win.h0; h < win.h1; ++h) {
      for (int64_t w = win.w0; w < win.w1; ++w) {
        sum += x[Flat(out.n, h, w, out.c, g.height, g.width, g.in_channels)];
      }
    }
    y[i] = sum / static_cast<float>((win.h1 - win.h0) * (win.w1 - win.w0));
  }
}

// x is null for the average pool.
__global__ void PoolBackwardKernel(WindowGeometry g, const float* x, const float* dy, float* dx) {
  const int64_t total = g.batch * g.height * g.width * g.in_channels;
  MESHTRAIN_GRID_STRIDE(i, total) {
    const Nhwc in = Split(i, g.height, g.width, g.in_channels);
    const Span covering = Covering(g, in);
    float sum = 0.0f;
    for (int64_t oh = covering.h0; oh <= covering.h1; ++oh) {
      for (int64_t ow = covering.w0; ow <= covering.w1; ++ow) {
        const Window win = ClippedWindow(g, oh, ow);
        const float d = dy[Flat(in.n, oh, ow, in.c, g.out_height, g.out_width, g.in_channels)];
        if (x == nullptr) {
          sum += d / static_cast<float>((win.h1 - win.h0) * (win.w1 - win.w0));
        } else if (Argmax(g, x, in.n, win, in.c) == i) {
          sum += d;
        }
      }
    }
    dx[i] = sum;
  }
}

// Launches `kernel` over `total` elements; nothing to do for none.
template <typename... Params, typename... Args>
cudaError_t LaunchOver(int64_t total, cudaStream_t stream, void (*kernel)(Params...),
                       Args... args) {
  if (total == 0) return cudaSuccess;
  kernel<<<Blocks(total), kThreads, 0, stream>>>(args...);
  return Launched();
}

int64_t Inputs(const WindowGeometry& g) { return g.batch * g.height * g.width * g.in_channels; }
int64_t Outputs(const WindowGeometry& g, int64_t channels) {
  return g.batch * g.out_height * g.out_width * channels;
}

}  // namespace

cudaError_t Conv2DForward(const WindowGeometry& g, const float* x, const float* w,
                          const float* bias, bool relu, float* y, cudaStream_t stream) {
  return LaunchOver(Outputs(g, g.out_channels), stream, ConvForwardKernel, g, x, w, bias, relu, y);
}

cudaError_t Conv2DBackwardData(const WindowGeometry& g, const float* dy, const float* w, float* dx,
                               cudaStream_t stream) {
  return LaunchOver(Inputs(g), stream, ConvBackwardDataKernel, g, dy, w, dx);
}

cudaError_t Conv2DBackwardFilter(const WindowGeometry& g, const float* x, const float* dy,
                                 float* dw, float* bias_grad, cudaStream_t stream) {
  const int64_t elements = g.window_height * g.window_width * g.in_channels * g.out_channels;
  ConvBackwardFilterKernel<<<static_cast<int>(std::min<int64_t>(elements, kMaxBlocks)), kThreads, 0,
                             stream>>>(g, x, dy, dw);
  if (bias_grad == nullptr) return Launched();
  return LaunchOver(g.out_channels, stream, ColumnSumKernel, dy,
                    g.batch * g.out_height * g.out_width, g.out_channels, bias_grad);
}

cudaError_t MaxPool2DForward(const WindowGeometry& g, const float* x, float* y,
                             cudaStream_t stream) {
  return LaunchOver(Outputs(g, g.in_channels), stream, PoolForwardKernel, g, x, true, y);
}

cudaError_t MaxPool2DBackward(const WindowGeometry& g, const float* x, const float* dy, float* dx,
                              cudaStream_t stream) {
  return LaunchOver(Inputs(g), stream, PoolBackwardKernel, g, x, dy, dx);
}

cudaError_t AvgPool2DForward(const WindowGeometry& g, const float* x, float* y,
                             cudaStream_t stream) {
  return LaunchOver(Outputs(g, g.in_channels), stream, PoolForwardKernel, g, x, false, y);
}

cudaError_t AvgPool2DBackward(const WindowGeometry& g, const float* dy, float* dx,
                              cudaStream_t stream) {
  return LaunchOver(Inputs(g), stream, PoolBackwardKernel, g, static_cast<const float*>(nullptr),
                    dy, dx);
}

}  // namespace meshtrain::device_kernels

// Direct convolution and pooling kernels on NHWC float tensors with HWIO
// filters, as plain launch functions on device pointers (only conv_kernels.cu
// needs nvcc). Correctness first: one thread per output element, so every
// gradient is a gather in a fixed order (no atomics, deterministic), and ties
// of a max pool go to the first maximum as on the CPU. cuDNN 9 deprecates the
// descriptor API these would otherwise call; its graph API is the way to speed
// them up. Each queues its work on `stream` and returns the launch's
// cudaGetLastError(). Thread-safe.
#ifndef MESHTRAIN_RUNTIME_TENSOR_CUDA_CONV_KERNELS_H_
#define MESHTRAIN_RUNTIME_TENSOR_CUDA_CONV_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace meshtrain::device_kernels {

// A validated Conv2DGeometry or Pool2DGeometry (conv_params.h) in plain
// numbers; pooling has in_channels == out_channels.
struct WindowGeometry {
  int64_t batch, height, width, in_channels, out_channels;
  int64_t window_height, window_width, stride_height, stride_width;
  int64_t pad_top, pad_left, out_height, out_width;
};

// y = act(conv(x, w) + bias); bias nullable.
cudaError_t Conv2DForward(const WindowGeometry& g, const float* x, const float* w,
                          const float* bias, bool relu, float* y, cudaStream_t stream);
cudaError_t Conv2DBackwardData(const WindowGeometry& g, const float* dy, const float* w, float* dx,
                               cudaStream_t stream);
// bias_grad nullable.
cudaError_t Conv2DBackwardFilter(const WindowGeometry& g, const float* x, const float* dy,
                                 float* dw, float* bias_grad, cudaStream_t stream);

cudaError_t MaxPool2DForward(const WindowGeometry& g, const float* x, float* y,
                             cudaStream_t stream);
cudaError_t MaxPool2DBackward(const WindowGeometry& g, const float* x, const float* dy, float* dx,
                              cudaStream_t stream);
cudaError_t AvgPool2DForward(const WindowGeometry& g, const float* x, float* y,
                             cudaStream_t stream);
cudaError_t AvgPool2DBackward(const WindowGeometry& g, const float* dy, float* dx,
                              cudaStream_t stream);

}  // namespace meshtrain::device_kernels

#endif  // MESHTRAIN_RUNTIME_TENSOR_CUDA_CONV_KERNELS_H_

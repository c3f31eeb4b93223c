// CpuConv2D: one way of computing 2-D convolutions on the CPU, behind
// CpuKernels' Conv2D* calls: DnnlConv2D (oneDNN, the default) or Im2colConv2D
// (im2col + OpenBLAS, the baseline tests/bench/conv_bench.cc measures it
// against). The calls are Kernels::Conv2DForward and friends, with the shapes
// already checked. An implementation keeps buffers or primitives between
// calls, so it is not thread-safe: one object per replica.
#ifndef MESHTRAIN_RUNTIME_TENSOR_CPU_CONV_H_
#define MESHTRAIN_RUNTIME_TENSOR_CPU_CONV_H_

#include "runtime/tensor/conv_params.h"
#include "runtime/tensor/kernels.h"
#include "runtime/tensor/tensor.h"

namespace meshtrain {

class CpuConv2D {
 public:
  virtual ~CpuConv2D() = default;
  virtual void Forward(const Conv2DGeometry& geometry, const Tensor& x, const Tensor& filter,
                       const Tensor* bias, Activation act, Tensor& y) = 0;
  virtual void BackwardData(const Conv2DGeometry& geometry, const Tensor& dy, const Tensor& filter,
                            Tensor& dx) = 0;
  virtual void BackwardFilter(const Conv2DGeometry& geometry, const Tensor& x, const Tensor& dy,
                              Tensor& dfilter, Tensor* bias_grad) = 0;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_CPU_CONV_H_

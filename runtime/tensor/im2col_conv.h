// Im2colConv2D: 2-D convolution as matrix products, the classic way: the
// windows of a few images are copied into rows of a column buffer (im2col,
// [pixels, filter_h * filter_w * in]) and multiplied by the HWIO filter seen as
// [filter_h * filter_w * in, out] with OpenBLAS sgemm; backward data scatters
// the product with the filter's transpose back (col2im). Kept as the baseline
// oneDNN is measured against (tests/bench/conv_bench.cc); CpuKernels uses
// DnnlConv2D. Not thread-safe: one object per replica (it owns the buffer).
#ifndef MESHTRAIN_RUNTIME_TENSOR_IM2COL_CONV_H_
#define MESHTRAIN_RUNTIME_TENSOR_IM2COL_CONV_H_

#include <vector>

#include "runtime/tensor/cpu_conv.h"

namespace meshtrain {

class Im2colConv2D final : public CpuConv2D {
 public:
  void Forward(const Conv2DGeometry& geometry, const Tensor& x, const Tensor& filter,
               const Tensor* bias, Activation act, Tensor& y) override;
  void BackwardData(const Conv2DGeometry& geometry, const Tensor& dy, const Tensor& filter,
                    Tensor& dx) override;
  void BackwardFilter(const Conv2DGeometry& geometry, const Tensor& x, const Tensor& dy,
                      Tensor& dfilter, Tensor* bias_grad) override;

 private:
  std::vector<float> columns_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_IM2COL_CONV_H_

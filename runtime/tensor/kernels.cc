#include "runtime/tensor/kernels.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "runtime/base/check.h"
#include "runtime/tensor/cpu_kernels.h"
#if MESHTRAIN_HAVE_CUDA
#include "runtime/tensor/cuda/cuda_kernels.h"
#endif

namespace meshtrain {

MatMulDims CheckMatMulDims(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b,
                           const Tensor& c) {
  MESHTRAIN_CHECK(a.shape().rank() == 2 && b.shape().rank() == 2 && c.shape().rank() == 2)
      << a.DebugString() << " x " << b.DebugString() << " -> " << c.DebugString();
  MatMulDims dims;
  dims.m = static_cast<int>(transpose_a ? a.shape().dim(1) : a.shape().dim(0));
  dims.k = static_cast<int>(transpose_a ? a.shape().dim(0) : a.shape().dim(1));
  const int kb = static_cast<int>(transpose_b ? b.shape().dim(1) : b.shape().dim(0));
  dims.n = static_cast<int>(transpose_b ? b.shape().dim(0) : b.shape().dim(1));
  MESHTRAIN_CHECK(dims.k == kb && c.shape().dim(0) == dims.m && c.shape().dim(1) == dims.n)
      << a.DebugString() << (transpose_a ? "^T" : "") << " x " << b.DebugString()
      << (transpose_b ? "^T" : "") << " -> " << c.DebugString();
  return dims;
}

void CheckConv2DForward(const Conv2DGeometry& g, const Tensor& x, const Tensor& filter,
                        const Tensor* bias, const Tensor& y) {
  MESHTRAIN_CHECK(x.shape() == g.input_shape() && filter.shape() == g.filter_shape() &&
                  y.shape() == g.output_shape() &&
                  (bias == nullptr || bias->shape() == g.bias_shape()))
      << "conv2d " << x.DebugString() << " * " << filter.DebugString() << " + "
      << (bias ? bias->DebugString() : "no bias") << " -> " << y.DebugString() << "; expected "
      << g.input_shape().ToString() << " * " << g.filter_shape().ToString() << " -> "
      << g.output_shape().ToString();
}

void CheckPool2D(const Pool2DGeometry& g, const Tensor& x, const Tensor& y) {
  MESHTRAIN_CHECK(x.shape() == g.input_shape() && y.shape() == g.output_shape())
      << "pool2d " << x.DebugString() << " -> " << y.DebugString() << "; expected "
      << g.input_shape().ToString() << " -> " << g.output_shape().ToString();
}

AdamStep CheckAdamUpdate(const Tensor& grad, const AdamParams& p, int64_t step, const Tensor& var,
                         const Tensor& m, const Tensor& v) {
  MESHTRAIN_CHECK(grad.num_elements() == var.num_elements() &&
                  m.num_elements() == var.num_elements() && v.num_elements() == var.num_elements())
      << grad.DebugString() << " for " << var.DebugString();
  const double t = static_cast<double>(step);
  const double correction1 = 1.0 - std::pow(static_cast<double>(p.beta1), t);
  const double correction2 = 1.0 - std::pow(static_cast<double>(p.beta2), t);
  return AdamStep{static_cast<float>(p.learning_rate * std::sqrt(correction2) / correction1),
                  p.epsilon * static_cast<float>(std::sqrt(correction2))};
}

absl::StatusOr<std::unique_ptr<Kernels>> CreateKernels(Device device) {
  if (device.is_cpu()) return CreateCpuKernels(device);
#if MESHTRAIN_HAVE_CUDA
  return CreateCudaKernels(device);
#else
  return absl::FailedPreconditionError(
      absl::StrCat(device.ToString(),
                   ": this meshtrain was built without CUDA; rebuild with the CUDA "
                   "toolkit installed (cmake -DMESHTRAIN_CUDA=ON) or use cpu devices"));
#endif
}

}  // namespace meshtrain

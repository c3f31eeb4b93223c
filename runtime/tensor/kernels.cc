#include "runtime/tensor/kernels.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "runtime/base/check.h"
#include "runtime/tensor/cpu_kernels.h"
#include "runtime/tensor/layer_math.h"
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

static_assert(static_cast<int>(ActivationFn::kLinear) == layer_math::kLinear &&
              static_cast<int>(ActivationFn::kRelu) == layer_math::kRelu &&
              static_cast<int>(ActivationFn::kGelu) == layer_math::kGelu &&
              static_cast<int>(ActivationFn::kTanh) == layer_math::kTanh &&
              static_cast<int>(ActivationFn::kSigmoid) == layer_math::kSigmoid &&
              static_cast<int>(ActivationFn::kSoftmax) == layer_math::kSoftmax);

namespace {

RowDims RowsOf(const Tensor& x) {
  RowDims dims;
  dims.cols = x.shape().rank() == 0 ? 1 : x.shape().dim(x.shape().rank() - 1);
  dims.rows = dims.cols == 0 ? 0 : x.num_elements() / dims.cols;
  return dims;
}

}  // namespace

RowDims CheckActivate(const Tensor& x, const Tensor& y) {
  MESHTRAIN_CHECK(x.num_elements() == y.num_elements())
      << x.DebugString() << " -> " << y.DebugString();
  return RowsOf(x);
}

RowDims CheckActivateGrad(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  MESHTRAIN_CHECK(x.num_elements() == dy.num_elements() && y.num_elements() == dy.num_elements() &&
                  dx.num_elements() == dy.num_elements())
      << x.DebugString() << ", " << y.DebugString() << ", " << dy.DebugString() << " -> "
      << dx.DebugString();
  return RowsOf(dy);
}

void CheckDropout(float rate, const Tensor& x, const Tensor& y) {
  MESHTRAIN_CHECK(x.num_elements() == y.num_elements() && rate >= 0.0f && rate < 1.0f)
      << "dropout " << rate << " of " << x.DebugString() << " -> " << y.DebugString();
}

RowDims CheckLayerNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& y,
                       const Tensor& mean, const Tensor& rstd) {
  const RowDims d = RowsOf(x);
  MESHTRAIN_CHECK(y.num_elements() == x.num_elements() && gamma.num_elements() == d.cols &&
                  beta.num_elements() == d.cols && mean.num_elements() == d.rows &&
                  rstd.num_elements() == d.rows)
      << "layer norm of " << x.DebugString() << " with " << gamma.DebugString();
  return d;
}

RowDims CheckLayerNormGrad(const Tensor& x, const Tensor& mean, const Tensor& dy, const Tensor& dx,
                           const Tensor& dgamma, const Tensor& dbeta) {
  const RowDims d = RowsOf(x);
  MESHTRAIN_CHECK(dy.num_elements() == x.num_elements() && dx.num_elements() == x.num_elements() &&
                  mean.num_elements() == d.rows && dgamma.num_elements() == d.cols &&
                  dbeta.num_elements() == d.cols)
      << "layer norm gradient of " << x.DebugString() << " with " << dgamma.DebugString();
  return d;
}

RowDims CheckMeanSquaredError(const Tensor& predictions, const Tensor& targets) {
  MESHTRAIN_CHECK(targets.dtype() == DType::kFloat32 &&
                  targets.num_elements() == predictions.num_elements())
      << predictions.DebugString() << " vs targets " << targets.DebugString();
  return RowsOf(predictions);
}

RowDims CheckBatchNorm(const Tensor& x, std::initializer_list<const Tensor*> like_x,
                       std::initializer_list<const Tensor*> channels, const Tensor* sums) {
  const RowDims d = RowsOf(x);
  for (const Tensor* t : like_x) {
    MESHTRAIN_CHECK(t->num_elements() == x.num_elements())
        << "batch norm of " << x.DebugString() << " with " << t->DebugString();
  }
  for (const Tensor* t : channels) {
    MESHTRAIN_CHECK(t == nullptr || t->num_elements() == d.cols)
        << "batch norm of " << x.DebugString() << " with channels " << t->DebugString();
  }
  MESHTRAIN_CHECK(sums == nullptr || sums->num_elements() == 2 * d.cols + 1)
      << "batch norm of " << x.DebugString() << " with sums " << sums->DebugString();
  return d;
}

int64_t CheckBatchNormMoments(const Tensor& sums, const Tensor& shift, const Tensor& mean,
                              const Tensor& variance) {
  const int64_t k = shift.num_elements();
  MESHTRAIN_CHECK(sums.num_elements() == 2 * k + 1 && mean.num_elements() == k &&
                  variance.num_elements() == k)
      << "batch norm moments of " << sums.DebugString() << " for " << shift.DebugString();
  return k;
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

#include "runtime/model/bias_activation.h"

#include "runtime/base/status_macros.h"

namespace meshtrain {

bool BiasActivation::FuseFinal(ActivationFn fn) {
  if (activation_ != fn) return false;
  activation_ = ActivationFn::kLinear;
  return true;
}

absl::StatusOr<Tensor> BiasActivation::Output(LayerContext& ctx, const Tensor& z,
                                              int buffer) const {
  if (fused()) return z;
  MESHTRAIN_ASSIGN_OR_RETURN(Tensor out, ctx.Buffer(buffer, DType::kFloat32, z.shape()));
  ctx.kernels().Activate(activation_, z, out);
  return out;
}

void BiasActivation::Backward(Kernels& k, const Tensor& y, const Tensor& z, Tensor& dz,
                              Tensor* bias_grad) const {
  if (fused()) {
    // Linear, or relu with a bias: relu'(z) is read from y.
    if (use_bias_) k.BiasActivationGrad(y, fused_activation(), dz, *bias_grad);
    return;
  }
  k.ActivateGrad(activation_, z, y, dz, dz);
  if (use_bias_) k.BiasActivationGrad(z, Activation::kNone, dz, *bias_grad);
}

}  // namespace meshtrain

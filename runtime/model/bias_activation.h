// BiasActivation: the tail dense and conv2d share, a bias per output channel
// and an activation. Linear, and ReLU after a bias, run fused inside the
// layer's own kernel (Kernels::BiasActivation, Conv2DForward with a bias);
// any other activation runs after it into a buffer of its own, so the
// pre-activation z stays for the backward pass. Immutable after
// FuseFinal(); thread-safe.
#ifndef MESHTRAIN_RUNTIME_MODEL_BIAS_ACTIVATION_H_
#define MESHTRAIN_RUNTIME_MODEL_BIAS_ACTIVATION_H_

#include "absl/status/statusor.h"
#include "runtime/model/layer.h"
#include "runtime/tensor/kernels.h"

namespace meshtrain {

class BiasActivation {
 public:
  BiasActivation(ActivationFn activation, bool use_bias)
      : activation_(activation), use_bias_(use_bias) {}

  bool use_bias() const { return use_bias_; }
  // Whether the activation runs inside the layer's kernel, and which.
  bool fused() const {
    return activation_ == ActivationFn::kLinear ||
           (activation_ == ActivationFn::kRelu && use_bias_);
  }
  Activation fused_activation() const {
    return fused() && activation_ == ActivationFn::kRelu ? Activation::kRelu : Activation::kNone;
  }
  // Layer::FuseFinalActivation: drops `fn` if it is this tail's activation.
  bool FuseFinal(ActivationFn fn);

  // The layer's output from its kernel's z (bias and fused activation
  // applied): z itself when fused, else activation(z) in the layer's buffer
  // `buffer`.
  absl::StatusOr<Tensor> Output(LayerContext& ctx, const Tensor& z, int buffer) const;

  // Backward through the tail, in place on dz (seen as [positions,
  // channels], like y and z): given the layer's output y and its kernel's
  // output z (read only when not fused), fills `bias_grad` (with a bias).
  void Backward(Kernels& k, const Tensor& y, const Tensor& z, Tensor& dz, Tensor* bias_grad) const;

 private:
  ActivationFn activation_;
  const bool use_bias_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_MODEL_BIAS_ACTIVATION_H_

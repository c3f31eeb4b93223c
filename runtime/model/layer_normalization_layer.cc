// LayerNormalization (Keras's, axis -1): each example's values along the
// last dimension are normalised to mean 0 and variance 1, then scaled by
// gamma and shifted by beta ([features] each, declared in that order).
#include <memory>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/model/builtin_layers.h"

namespace meshtrain {
namespace {

class LayerNormalizationLayer final : public Layer {
 public:
  enum { kOutput, kMean, kRstd, kInputGrad, kBuffers };

  LayerNormalizationLayer(float epsilon, Initializer gamma_init, Initializer beta_init)
      : epsilon_(epsilon), gamma_init_(gamma_init), beta_init_(beta_init) {}

  absl::StatusOr<ExampleShape> Build(const ExampleShape& input, LayerBuilder& builder) override {
    if (input.dtype != DType::kFloat32 || input.dims.empty() || input.dims.back() < 1) {
      return builder.Error(absl::StrCat(
          "layer_normalization takes float32 values [..., features], got ", input.ToString()));
    }
    features_ = input.dims.back();
    MESHTRAIN_ASSIGN_OR_RETURN(gamma_, builder.AddVariable("gamma", Shape{features_}, gamma_init_));
    MESHTRAIN_ASSIGN_OR_RETURN(beta_, builder.AddVariable("beta", Shape{features_}, beta_init_));
    return input;
  }

  int workspace_buffers() const override { return kBuffers; }

  absl::StatusOr<Tensor> Forward(LayerContext& ctx, const Tensor& input,
                                 bool training) const override {
    const int64_t rows = input.num_elements() / features_;
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor out, ctx.Buffer(kOutput, DType::kFloat32, input.shape()));
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor mean, ctx.Buffer(kMean, DType::kFloat32, Shape{rows}));
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor rstd, ctx.Buffer(kRstd, DType::kFloat32, Shape{rows}));
    ctx.kernels().LayerNorm(input, ctx.Value(gamma_), ctx.Value(beta_), epsilon_, out, mean, rstd);
    return out;
  }

  absl::StatusOr<Tensor> Backward(LayerContext& ctx, const Tensor& input, const Tensor& output,
                                  Tensor& d_output, bool need_d_input) const override {
    const int64_t rows = input.num_elements() / features_;
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor mean, ctx.Buffer(kMean, DType::kFloat32, Shape{rows}));
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor rstd, ctx.Buffer(kRstd, DType::kFloat32, Shape{rows}));
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor dx, ctx.Buffer(kInputGrad, DType::kFloat32, input.shape()));
    ctx.kernels().LayerNormGrad(input, ctx.Value(gamma_), mean, rstd, d_output, dx,
                                ctx.Gradient(gamma_), ctx.Gradient(beta_));
    ctx.GradientReady(beta_);
    ctx.GradientReady(gamma_);
    return need_d_input ? dx : Tensor();
  }

 private:
  const float epsilon_;
  const Initializer gamma_init_;
  const Initializer beta_init_;
  int64_t features_ = 0;
  VariableId gamma_ = -1;
  VariableId beta_ = -1;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Layer>> CreateLayerNormalizationLayer(JsonReader& args) {
  float epsilon = 1e-3f;
  MESHTRAIN_RETURN_IF_ERROR(ReadNormalizationArgs(args, &epsilon));
  Initializer gamma_init, beta_init;
  MESHTRAIN_RETURN_IF_ERROR(ReadInitializer(args, "gamma_initializer", "ones", &gamma_init));
  MESHTRAIN_RETURN_IF_ERROR(ReadInitializer(args, "beta_initializer", "zeros", &beta_init));
  return std::make_unique<LayerNormalizationLayer>(epsilon, gamma_init, beta_init);
}

}  // namespace meshtrain

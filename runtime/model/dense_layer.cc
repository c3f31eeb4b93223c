// Dense (Keras's Dense): output = activation(input . kernel + bias) over the
// input's last dimension, kernel [in, units], bias [units]. The bias and
// activation are BiasActivation's: ReLU and linear run fused with the bias
// (the kernels the mlp model uses, so a sequential mlp computes the same
// numbers); other activations keep the pre-activation for their gradient.
#include <memory>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/model/bias_activation.h"
#include "runtime/model/builtin_layers.h"

namespace meshtrain {
namespace {

class DenseLayer final : public Layer {
 public:
  // Buffers: the fused output (or the pre-activation), the activation's output, d_input.
  enum { kMatMulOut, kActivationOut, kInputGrad, kBuffers };

  DenseLayer(int64_t units, ActivationFn activation, bool use_bias, Initializer kernel_init,
             Initializer bias_init)
      : units_(units),
        tail_(activation, use_bias),
        kernel_init_(kernel_init),
        bias_init_(bias_init) {}

  absl::StatusOr<ExampleShape> Build(const ExampleShape& input, LayerBuilder& builder) override {
    if (input.dtype != DType::kFloat32 || input.dims.empty()) {
      return builder.Error(
          absl::StrCat("dense takes float32 features [..., features], got ", input.ToString(),
                       input.dims.empty() ? "; give model.input_shape"
                                          : "; put an embedding layer first for ids"));
    }
    in_ = input.dims.back();
    if (in_ < 1) return builder.Error(absl::StrCat("input ", input.ToString(), " has no features"));
    MESHTRAIN_ASSIGN_OR_RETURN(kernel_,
                               builder.AddVariable("kernel", Shape{in_, units_}, kernel_init_));
    if (tail_.use_bias()) {
      MESHTRAIN_ASSIGN_OR_RETURN(bias_, builder.AddVariable("bias", Shape{units_}, bias_init_));
    }
    ExampleShape output = input;
    output.dims.back() = units_;
    return output;
  }

  int workspace_buffers() const override { return kBuffers; }

  bool FuseFinalActivation(ActivationFn fn) override { return tail_.FuseFinal(fn); }

  absl::StatusOr<Tensor> Forward(LayerContext& ctx, const Tensor& input,
                                 bool training) const override {
    Kernels& k = ctx.kernels();
    const int64_t rows = input.num_elements() / in_;
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor z,
                               ctx.Buffer(kMatMulOut, DType::kFloat32, Shape{rows, units_}));
    k.MatMul(input.Reshaped(Shape{rows, in_}), false, ctx.Value(kernel_), false, 1.0f, 0.0f, z);
    if (tail_.use_bias()) k.BiasActivation(ctx.Value(bias_), tail_.fused_activation(), z);
    MESHTRAIN_ASSIGN_OR_RETURN(const Tensor out, tail_.Output(ctx, z, kActivationOut));
    return out.Reshaped(OutputShape(input));
  }

  absl::StatusOr<Tensor> Backward(LayerContext& ctx, const Tensor& input, const Tensor& output,
                                  Tensor& d_output, bool need_d_input) const override {
    Kernels& k = ctx.kernels();
    const int64_t rows = input.num_elements() / in_;
    const Shape flat{rows, units_};
    Tensor dz = d_output.Reshaped(flat);
    MESHTRAIN_ASSIGN_OR_RETURN(const Tensor z, ctx.Buffer(kMatMulOut, DType::kFloat32, flat));
    tail_.Backward(k, output.Reshaped(flat), z, dz,
                   tail_.use_bias() ? &ctx.Gradient(bias_) : nullptr);
    const Tensor x = input.Reshaped(Shape{rows, in_});
    k.MatMul(x, true, dz, false, 1.0f, 0.0f, ctx.Gradient(kernel_));
    if (tail_.use_bias()) ctx.GradientReady(bias_);
    ctx.GradientReady(kernel_);
    if (!need_d_input) return Tensor();
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor dx,
                               ctx.Buffer(kInputGrad, DType::kFloat32, Shape{rows, in_}));
    k.MatMul(dz, false, ctx.Value(kernel_), true, 1.0f, 0.0f, dx);
    return dx.Reshaped(input.shape());
  }

 private:
  Shape OutputShape(const Tensor& input) const {
    std::vector<int64_t> dims(input.shape().dims().begin(), input.shape().dims().end());
    dims.back() = units_;
    return Shape(absl::MakeConstSpan(dims));
  }

  const int64_t units_;
  BiasActivation tail_;
  const Initializer kernel_init_;
  const Initializer bias_init_;
  int64_t in_ = 0;
  VariableId kernel_ = -1;
  VariableId bias_ = -1;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Layer>> CreateDenseLayer(JsonReader& args) {
  int64_t units = 0;
  MESHTRAIN_RETURN_IF_ERROR(args.ReadAtLeast("units", 1, &units));
  ActivationFn activation = ActivationFn::kLinear;
  MESHTRAIN_RETURN_IF_ERROR(ReadActivation(args, "activation", &activation));
  bool use_bias = true;
  MESHTRAIN_RETURN_IF_ERROR(args.ReadOptional("use_bias", &use_bias));
  Initializer kernel_init, bias_init;
  MESHTRAIN_RETURN_IF_ERROR(
      ReadInitializer(args, "kernel_initializer", "glorot_uniform", &kernel_init));
  MESHTRAIN_RETURN_IF_ERROR(ReadInitializer(args, "bias_initializer", "zeros", &bias_init));
  return std::make_unique<DenseLayer>(units, activation, use_bias, kernel_init, bias_init);
}

}  // namespace meshtrain

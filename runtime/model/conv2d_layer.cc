// Conv2D (Keras's Conv2D, channels_last): output = activation(conv(input,
// kernel) + bias) over images [height, width, channels], kernel [kh, kw, in,
// filters] (TensorFlow's HWIO), bias [filters]; `same` and `valid` padding as
// TensorFlow pads (runtime/tensor/conv_params.h). The convolutions are the
// replica's Kernels (oneDNN on the CPU). ReLU and linear run fused with the
// bias inside the forward convolution; other activations keep the
// pre-activation for their gradient, as dense does.
#include <memory>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/model/bias_activation.h"
#include "runtime/model/builtin_layers.h"
#include "runtime/tensor/conv_params.h"

namespace meshtrain {
namespace {

class Conv2DLayer final : public Layer {
 public:
  // Buffers: the convolution's output (fused, or the pre-activation), the
  // activation's output, d_input.
  enum { kConvOut, kActivationOut, kInputGrad, kBuffers };

  Conv2DLayer(int64_t filters, WindowArgs window, ActivationFn activation, bool use_bias,
              Initializer kernel_init, Initializer bias_init)
      : filters_(filters),
        window_(window),
        tail_(activation, use_bias),
        kernel_init_(kernel_init),
        bias_init_(bias_init) {}

  absl::StatusOr<ExampleShape> Build(const ExampleShape& input, LayerBuilder& builder) override {
    if (input.dtype != DType::kFloat32 || input.dims.size() != 3) {
      return builder.Error(
          absl::StrCat("conv2d takes images [height, width, channels], got ", input.ToString(),
                       "; give model.input_shape as [h, w, c] or put a reshape layer first"));
    }
    params_ = Conv2DParams{.batch = 1,
                           .height = input.dims[0],
                           .width = input.dims[1],
                           .in_channels = input.dims[2],
                           .out_channels = filters_,
                           .filter_height = window_.size[0],
                           .filter_width = window_.size[1],
                           .stride_height = window_.strides[0],
                           .stride_width = window_.strides[1],
                           .padding = window_.padding};
    absl::StatusOr<Conv2DGeometry> geometry = InferConv2D(params_);
    if (!geometry.ok()) {
      return builder.Error(absl::StrCat(geometry.status().message(), " (input ", input.ToString(),
                                        "); choose a smaller kernel_size or padding same"));
    }
    MESHTRAIN_ASSIGN_OR_RETURN(
        kernel_, builder.AddVariable("kernel", geometry->filter_shape(), kernel_init_));
    if (tail_.use_bias()) {
      MESHTRAIN_ASSIGN_OR_RETURN(bias_, builder.AddVariable("bias", Shape{filters_}, bias_init_));
    }
    return ExampleShape{DType::kFloat32, {geometry->rows.out, geometry->cols.out, filters_}};
  }

  int workspace_buffers() const override { return kBuffers; }

  bool FuseFinalActivation(ActivationFn fn) override { return tail_.FuseFinal(fn); }

  absl::StatusOr<Tensor> Forward(LayerContext& ctx, const Tensor& input,
                                 bool training) const override {
    Kernels& k = ctx.kernels();
    MESHTRAIN_ASSIGN_OR_RETURN(const Conv2DGeometry geometry, Geometry(input.rows()));
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor z,
                               ctx.Buffer(kConvOut, DType::kFloat32, geometry.output_shape()));
    const Tensor* bias = tail_.use_bias() ? &ctx.Value(bias_) : nullptr;
    k.Conv2DForward(geometry, input, ctx.Value(kernel_), bias, tail_.fused_activation(), z);
    return tail_.Output(ctx, z, kActivationOut);
  }

  absl::StatusOr<Tensor> Backward(LayerContext& ctx, const Tensor& input, const Tensor& output,
                                  Tensor& d_output, bool need_d_input) const override {
    Kernels& k = ctx.kernels();
    MESHTRAIN_ASSIGN_OR_RETURN(const Conv2DGeometry geometry, Geometry(input.rows()));
    const Shape out_shape = geometry.output_shape();
    // Bias and activation gradients see the output as [positions, filters].
    const Shape flat{out_shape.num_elements() / filters_, filters_};
    Tensor dz = d_output.Reshaped(flat);
    MESHTRAIN_ASSIGN_OR_RETURN(const Tensor z, ctx.Buffer(kConvOut, DType::kFloat32, out_shape));
    tail_.Backward(k, output.Reshaped(flat), z.Reshaped(flat), dz,
                   tail_.use_bias() ? &ctx.Gradient(bias_) : nullptr);
    const Tensor dy = dz.Reshaped(out_shape);
    k.Conv2DBackwardFilter(geometry, input, dy, ctx.Gradient(kernel_), nullptr);
    if (tail_.use_bias()) ctx.GradientReady(bias_);
    ctx.GradientReady(kernel_);
    if (!need_d_input) return Tensor();
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor dx,
                               ctx.Buffer(kInputGrad, DType::kFloat32, geometry.input_shape()));
    k.Conv2DBackwardData(geometry, dy, ctx.Value(kernel_), dx);
    return dx;
  }

 private:
  // The geometry for a batch of n; Build checked it for one.
  absl::StatusOr<Conv2DGeometry> Geometry(int64_t n) const {
    Conv2DParams params = params_;
    params.batch = n;
    return InferConv2D(params);
  }

  const int64_t filters_;
  const WindowArgs window_;
  BiasActivation tail_;
  const Initializer kernel_init_;
  const Initializer bias_init_;
  Conv2DParams params_;
  VariableId kernel_ = -1;
  VariableId bias_ = -1;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Layer>> CreateConv2DLayer(JsonReader& args) {
  int64_t filters = 0;
  MESHTRAIN_RETURN_IF_ERROR(args.ReadAtLeast("filters", 1, &filters));
  WindowArgs window;
  MESHTRAIN_RETURN_IF_ERROR(ReadPair(args, "kernel_size", /*required=*/true, window.size));
  window.strides[0] = window.strides[1] = 1;
  MESHTRAIN_RETURN_IF_ERROR(ReadPair(args, "strides", /*required=*/false, window.strides));
  MESHTRAIN_RETURN_IF_ERROR(ReadPadding(args, &window.padding));
  ActivationFn activation = ActivationFn::kLinear;
  MESHTRAIN_RETURN_IF_ERROR(ReadActivation(args, "activation", &activation));
  bool use_bias = true;
  MESHTRAIN_RETURN_IF_ERROR(args.ReadOptional("use_bias", &use_bias));
  Initializer kernel_init, bias_init;
  MESHTRAIN_RETURN_IF_ERROR(
      ReadInitializer(args, "kernel_initializer", "glorot_uniform", &kernel_init));
  MESHTRAIN_RETURN_IF_ERROR(ReadInitializer(args, "bias_initializer", "zeros", &bias_init));
  return std::make_unique<Conv2DLayer>(filters, window, activation, use_bias, kernel_init,
                                       bias_init);
}

}  // namespace meshtrain

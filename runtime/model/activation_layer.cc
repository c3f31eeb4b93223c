// Activation (Keras's Activation): output = f(input), element-wise (softmax
// over the last dimension). Linear, or a final activation fused into the
// loss, passes its input through.
#include <memory>

#include "runtime/base/status_macros.h"
#include "runtime/model/builtin_layers.h"

namespace meshtrain {
namespace {

class ActivationLayer final : public Layer {
 public:
  explicit ActivationLayer(ActivationFn fn) : fn_(fn) {}

  absl::StatusOr<ExampleShape> Build(const ExampleShape& input, LayerBuilder& builder) override {
    if (input.dtype != DType::kFloat32) {
      return builder.Error("an activation takes float32 values, got " + input.ToString());
    }
    return input;
  }

  int workspace_buffers() const override { return 1; }

  bool FuseFinalActivation(ActivationFn fn) override {
    if (fn_ != fn) return false;
    fn_ = ActivationFn::kLinear;
    return true;
  }

  absl::StatusOr<Tensor> Forward(LayerContext& ctx, const Tensor& input,
                                 bool training) const override {
    if (fn_ == ActivationFn::kLinear) return input;
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor out, ctx.Buffer(0, DType::kFloat32, input.shape()));
    ctx.kernels().Activate(fn_, input, out);
    return out;
  }

  absl::StatusOr<Tensor> Backward(LayerContext& ctx, const Tensor& input, const Tensor& output,
                                  Tensor& d_output, bool need_d_input) const override {
    if (!need_d_input) return Tensor();
    if (fn_ != ActivationFn::kLinear)
      ctx.kernels().ActivateGrad(fn_, input, output, d_output, d_output);
    return d_output;
  }

 private:
  ActivationFn fn_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Layer>> CreateActivationLayer(JsonReader& args) {
  if (args.Find("activation") == nullptr)
    return args.Error(args.PathOf("activation"), "is missing");
  ActivationFn fn = ActivationFn::kLinear;
  MESHTRAIN_RETURN_IF_ERROR(ReadActivation(args, "activation", &fn));
  return std::make_unique<ActivationLayer>(fn);
}

}  // namespace meshtrain

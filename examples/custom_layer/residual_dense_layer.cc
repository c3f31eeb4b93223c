// A custom layer written against meshtrain's C++ layer API (docs/models.md):
// "residual_dense", y = x + relu(x . kernel + bias) over the last dimension,
// whose width it keeps. It declares its variables through the strategy's
// creator (LayerBuilder), runs on the replica's Kernels (so it runs on CPU and
// GPU replicas alike), and is registered by name below, so a job config can
// list {"type": "residual_dense"} like any built-in layer.
#include <memory>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/model/builtin_layers.h"
#include "runtime/model/layer.h"
#include "runtime/model/layer_registry.h"

namespace example {

using meshtrain::ExampleShape;
using meshtrain::Initializer;
using meshtrain::JsonReader;
using meshtrain::LayerBuilder;
using meshtrain::LayerContext;
using meshtrain::Shape;
using meshtrain::Tensor;
using meshtrain::VariableId;

class ResidualDense final : public meshtrain::Layer {
 public:
  // Buffers: relu(x W + b), the output, and the gradient through the branch.
  enum { kBranch, kOutput, kBranchGrad, kBuffers };

  explicit ResidualDense(Initializer kernel_init) : kernel_init_(kernel_init) {}

  absl::StatusOr<ExampleShape> Build(const ExampleShape& input, LayerBuilder& builder) override {
    if (input.dtype != meshtrain::DType::kFloat32 || input.dims.empty()) {
      return builder.Error(
          absl::StrCat("residual_dense takes float32 [..., features], got ", input.ToString()));
    }
    width_ = input.dims.back();
    MESHTRAIN_ASSIGN_OR_RETURN(kernel_,
                               builder.AddVariable("kernel", Shape{width_, width_}, kernel_init_));
    MESHTRAIN_ASSIGN_OR_RETURN(
        bias_, builder.AddVariable("bias", Shape{width_}, Initializer{Initializer::Kind::kZeros}));
    return input;  // the same shape: the block adds to its input
  }

  int workspace_buffers() const override { return kBuffers; }

  absl::StatusOr<Tensor> Forward(LayerContext& ctx, const Tensor& input,
                                 bool training) const override {
    meshtrain::Kernels& k = ctx.kernels();
    const Shape flat{input.num_elements() / width_, width_};
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor branch,
                               ctx.Buffer(kBranch, meshtrain::DType::kFloat32, flat));
    const Tensor x = input.Reshaped(flat);
    k.MatMul(x, false, ctx.Value(kernel_), false, 1.0f, 0.0f, branch);
    k.BiasActivation(ctx.Value(bias_), meshtrain::Activation::kRelu, branch);
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor out, ctx.Buffer(kOutput, meshtrain::DType::kFloat32, flat));
    k.Copy(x, out);
    k.Axpy(1.0f, branch, out);
    return out.Reshaped(input.shape());
  }

  absl::StatusOr<Tensor> Backward(LayerContext& ctx, const Tensor& input, const Tensor& output,
                                  Tensor& d_output, bool need_d_input) const override {
    meshtrain::Kernels& k = ctx.kernels();
    const Shape flat{input.num_elements() / width_, width_};
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor branch,
                               ctx.Buffer(kBranch, meshtrain::DType::kFloat32, flat));
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor dz,
                               ctx.Buffer(kBranchGrad, meshtrain::DType::kFloat32, flat));
    Tensor dy = d_output.Reshaped(flat);
    k.Copy(dy, dz);
    k.BiasActivationGrad(branch, meshtrain::Activation::kRelu, dz, ctx.Gradient(bias_));
    k.MatMul(input.Reshaped(flat), true, dz, false, 1.0f, 0.0f, ctx.Gradient(kernel_));
    // Reverse order of declaration: the strategy's gradient buffer fills back to front.
    ctx.GradientReady(bias_);
    ctx.GradientReady(kernel_);
    if (!need_d_input) return Tensor();
    // dx = dy (the skip) + dz W^T (the branch), accumulated into dy.
    k.MatMul(dz, false, ctx.Value(kernel_), true, 1.0f, 1.0f, dy);
    return d_output;
  }

 private:
  const Initializer kernel_init_;
  int64_t width_ = 0;
  VariableId kernel_ = -1;
  VariableId bias_ = -1;
};

absl::StatusOr<std::unique_ptr<meshtrain::Layer>> CreateResidualDense(JsonReader& args) {
  Initializer kernel_init;
  MESHTRAIN_RETURN_IF_ERROR(
      meshtrain::ReadInitializer(args, "kernel_initializer", "he_normal", &kernel_init));
  return std::make_unique<ResidualDense>(kernel_init);
}

}  // namespace example

MESHTRAIN_REGISTER_LAYER(residual_dense, example::CreateResidualDense);

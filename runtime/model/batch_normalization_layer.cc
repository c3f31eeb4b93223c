// BatchNormalization (Keras's, axis -1): each channel (the last dimension) is
// normalised by statistics over every other dimension of the batch, then
// scaled by gamma and shifted by beta. In training the batch's mean and
// (biased) variance are used, and the moving mean and variance follow them
// as moving averages (VariableSpec::trainable == false); in evaluation the
// moving ones are used.
//
// With `synchronized` the statistics are those of the whole global batch:
// every replica adds its column sums over the strategy's collective before
// using them (ReplicaContext::SumOverReplicas), and in backward the sums the
// input gradient needs too, so the result equals one replica's on the whole
// batch (tf.keras.layers.BatchNormalization(synchronized=True)). Without it
// each replica normalises by its own slice, as Keras does under a strategy.
//
// Variables, in Keras's order: gamma (scale), beta (center), moving_mean,
// moving_variance. Sums are shifted by the moving mean, which every replica
// holds alike, so that the variance is not the difference of two large
// numbers.
#include <memory>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/model/builtin_layers.h"

namespace meshtrain {
namespace {

struct BatchNormArgs {
  float momentum = 0.99f;
  float epsilon = 1e-3f;
  bool center = true;
  bool scale = true;
  bool synchronized = false;
  Initializer beta_init, gamma_init, moving_mean_init, moving_variance_init;
};

class BatchNormalizationLayer final : public Layer {
 public:
  enum { kOutput, kMean, kVariance, kStatistics, kGradSums, kInputGrad, kBuffers };

  explicit BatchNormalizationLayer(const BatchNormArgs& args) : args_(args) {}

  absl::StatusOr<ExampleShape> Build(const ExampleShape& input, LayerBuilder& builder) override {
    if (input.dtype != DType::kFloat32 || input.dims.empty() || input.dims.back() < 1) {
      return builder.Error(absl::StrCat(
          "batch_normalization takes float32 values [..., channels], got ", input.ToString()));
    }
    channels_ = input.dims.back();
    const Shape shape{channels_};
    if (args_.scale) {
      MESHTRAIN_ASSIGN_OR_RETURN(gamma_, builder.AddVariable("gamma", shape, args_.gamma_init));
    }
    if (args_.center) {
      MESHTRAIN_ASSIGN_OR_RETURN(beta_, builder.AddVariable("beta", shape, args_.beta_init));
    }
    MESHTRAIN_ASSIGN_OR_RETURN(
        moving_mean_,
        builder.AddMovingAverage("moving_mean", shape, args_.moving_mean_init, args_.momentum));
    MESHTRAIN_ASSIGN_OR_RETURN(
        moving_variance_, builder.AddMovingAverage("moving_variance", shape,
                                                   args_.moving_variance_init, args_.momentum));
    return input;
  }

  int workspace_buffers() const override { return kBuffers; }

  absl::StatusOr<Tensor> Forward(LayerContext& ctx, const Tensor& input,
                                 bool training) const override {
    Kernels& k = ctx.kernels();
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor out, ctx.Buffer(kOutput, DType::kFloat32, input.shape()));
    const Tensor x = Rows(input);
    Tensor y = Rows(out);
    if (!training) {
      k.BatchNormForward(x, ctx.Value(moving_mean_), ctx.Value(moving_variance_), Gamma(ctx),
                         Beta(ctx), args_.epsilon, y);
      return out;
    }
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor sums, Sums(ctx, kStatistics));
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor mean, ctx.Buffer(kMean, DType::kFloat32, Shape{channels_}));
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor variance,
                               ctx.Buffer(kVariance, DType::kFloat32, Shape{channels_}));
    const Tensor& shift = ctx.Value(moving_mean_);
    k.BatchNormSums(x, shift, sums);
    if (args_.synchronized) {
      MESHTRAIN_RETURN_IF_ERROR(
          Annotate(ctx.SumOverReplicas(sums), "summing the batch statistics over replicas"));
    }
    k.BatchNormMoments(sums, shift, mean, variance);
    k.BatchNormForward(x, mean, variance, Gamma(ctx), Beta(ctx), args_.epsilon, y);
    return out;
  }

  absl::StatusOr<Tensor> Backward(LayerContext& ctx, const Tensor& input, const Tensor& output,
                                  Tensor& d_output, bool need_d_input) const override {
    Kernels& k = ctx.kernels();
    const Tensor x = Rows(input);
    const Tensor dy = Rows(d_output);
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor mean, ctx.Buffer(kMean, DType::kFloat32, Shape{channels_}));
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor variance,
                               ctx.Buffer(kVariance, DType::kFloat32, Shape{channels_}));
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor sums, Sums(ctx, kGradSums));
    k.BatchNormGradSums(x, mean, variance, args_.epsilon, dy, sums);

    // The moving averages' "gradients": share * (moving - batch statistic).
    const float share = ctx.grad_scale() * static_cast<float>(x.rows());
    MovingAverageGradient(ctx, moving_variance_, variance, share);
    MovingAverageGradient(ctx, moving_mean_, mean, share);
    // This replica's sums are beta's and gamma's gradients (the strategy adds
    // the replicas'), taken before a synchronized sum overwrites them.
    if (beta_ >= 0) {
      k.Copy(sums.Slice(0, channels_), ctx.Gradient(beta_));
      ctx.GradientReady(beta_);
    }
    if (gamma_ >= 0) {
      k.Copy(sums.Slice(channels_, 2 * channels_), ctx.Gradient(gamma_));
      ctx.GradientReady(gamma_);
    }
    if (!need_d_input) return Tensor();
    if (args_.synchronized) {
      MESHTRAIN_RETURN_IF_ERROR(
          Annotate(ctx.SumOverReplicas(sums), "summing the gradient statistics over replicas"));
    }
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor dx, ctx.Buffer(kInputGrad, DType::kFloat32, input.shape()));
    Tensor dx_rows = Rows(dx);
    k.BatchNormInputGrad(x, mean, variance, Gamma(ctx), args_.epsilon, sums, dy, dx_rows);
    return dx;
  }

 private:
  // A batch seen as [examples * positions, channels].
  Tensor Rows(const Tensor& t) const {
    return t.Reshaped(Shape{t.num_elements() / channels_, channels_});
  }
  absl::StatusOr<Tensor> Sums(LayerContext& ctx, int buffer) const {
    return ctx.Buffer(buffer, DType::kFloat32, Shape{2 * channels_ + 1});
  }
  const Tensor* Gamma(LayerContext& ctx) const {
    return gamma_ >= 0 ? &ctx.Value(gamma_) : nullptr;
  }
  const Tensor* Beta(LayerContext& ctx) const { return beta_ >= 0 ? &ctx.Value(beta_) : nullptr; }

  static void MovingAverageGradient(LayerContext& ctx, VariableId id, const Tensor& observed,
                                    float share) {
    Kernels& k = ctx.kernels();
    Tensor& g = ctx.Gradient(id);
    k.Copy(ctx.Value(id), g);
    k.Axpy(-1.0f, observed, g);
    k.Scale(share, g);
    ctx.GradientReady(id);
  }

  const BatchNormArgs args_;
  int64_t channels_ = 0;
  VariableId gamma_ = -1;
  VariableId beta_ = -1;
  VariableId moving_mean_ = -1;
  VariableId moving_variance_ = -1;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Layer>> CreateBatchNormalizationLayer(JsonReader& args) {
  BatchNormArgs a;
  MESHTRAIN_RETURN_IF_ERROR(ReadNormalizationArgs(args, &a.epsilon));
  MESHTRAIN_RETURN_IF_ERROR(args.ReadOptional("momentum", &a.momentum));
  if (!(a.momentum >= 0.0f && a.momentum <= 1.0f)) {
    return args.Error(
        args.PathOf("momentum"),
        absl::StrCat("must be in [0, 1] (Keras's default is 0.99), got ", a.momentum));
  }
  MESHTRAIN_RETURN_IF_ERROR(args.ReadOptional("center", &a.center));
  MESHTRAIN_RETURN_IF_ERROR(args.ReadOptional("scale", &a.scale));
  MESHTRAIN_RETURN_IF_ERROR(args.ReadOptional("synchronized", &a.synchronized));
  MESHTRAIN_RETURN_IF_ERROR(ReadInitializer(args, "beta_initializer", "zeros", &a.beta_init));
  MESHTRAIN_RETURN_IF_ERROR(ReadInitializer(args, "gamma_initializer", "ones", &a.gamma_init));
  MESHTRAIN_RETURN_IF_ERROR(
      ReadInitializer(args, "moving_mean_initializer", "zeros", &a.moving_mean_init));
  MESHTRAIN_RETURN_IF_ERROR(
      ReadInitializer(args, "moving_variance_initializer", "ones", &a.moving_variance_init));
  return std::make_unique<BatchNormalizationLayer>(a);
}

}  // namespace meshtrain

// Dropout (Keras's): in training, each value is kept with probability
// 1 - rate and scaled by 1 / (1 - rate) (inverted dropout); in evaluation the
// identity. The mask is a pure function of LayerContext::RandomKey() (job
// seed, global step, replica, layer index) and the layer's `seed`, so runs
// repeat exactly and the backward pass recomputes the mask instead of keeping it.
#include <memory>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/model/builtin_layers.h"
#include "runtime/tensor/counter_random.h"

namespace meshtrain {
namespace {

class DropoutLayer final : public Layer {
 public:
  DropoutLayer(float rate, uint64_t seed) : rate_(rate), seed_(seed) {}

  absl::StatusOr<ExampleShape> Build(const ExampleShape& input, LayerBuilder& builder) override {
    if (input.dtype != DType::kFloat32) {
      return builder.Error("dropout takes float32 values, got " + input.ToString());
    }
    return input;
  }

  int workspace_buffers() const override { return 1; }

  absl::StatusOr<Tensor> Forward(LayerContext& ctx, const Tensor& input,
                                 bool training) const override {
    if (!training || rate_ == 0.0f) return input;
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor out, ctx.Buffer(0, DType::kFloat32, input.shape()));
    ctx.kernels().Dropout(rate_, Key(ctx), input, out);
    return out;
  }

  absl::StatusOr<Tensor> Backward(LayerContext& ctx, const Tensor& input, const Tensor& output,
                                  Tensor& d_output, bool need_d_input) const override {
    if (!need_d_input) return Tensor();
    if (rate_ > 0.0f) ctx.kernels().Dropout(rate_, Key(ctx), d_output, d_output);
    return d_output;
  }

 private:
  uint64_t Key(const LayerContext& ctx) const { return CounterMix64(ctx.RandomKey() ^ seed_); }

  const float rate_;
  const uint64_t seed_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Layer>> CreateDropoutLayer(JsonReader& args) {
  float rate = 0.0f;
  MESHTRAIN_RETURN_IF_ERROR(args.Read("rate", &rate));
  if (!(rate >= 0.0f && rate < 1.0f)) {
    return args.Error(args.PathOf("rate"), absl::StrCat("must be in [0, 1), got ", rate));
  }
  uint64_t seed = 0;
  MESHTRAIN_RETURN_IF_ERROR(args.ReadOptional("seed", &seed));
  return std::make_unique<DropoutLayer>(rate, seed);
}

}  // namespace meshtrain

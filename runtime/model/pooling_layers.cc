// MaxPooling2D and AveragePooling2D (Keras's, channels_last): the maximum or
// the mean of each pool_size window over images [height, width, channels];
// strides default to pool_size and padding to valid, as in Keras. No
// variables. Padded positions never win a maximum and are not counted in a
// mean (TensorFlow's rule).
#include <memory>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/model/builtin_layers.h"
#include "runtime/tensor/conv_params.h"

namespace meshtrain {
namespace {

enum class PoolKind { kMax, kAverage };

class Pool2DLayer final : public Layer {
 public:
  enum { kOutput, kInputGrad, kBuffers };

  Pool2DLayer(PoolKind kind, WindowArgs window) : kind_(kind), window_(window) {}

  absl::StatusOr<ExampleShape> Build(const ExampleShape& input, LayerBuilder& builder) override {
    if (input.dtype != DType::kFloat32 || input.dims.size() != 3) {
      return builder.Error(absl::StrCat("pooling takes images [height, width, channels], got ",
                                        input.ToString(),
                                        "; pool the output of a conv2d or reshape to [h, w, c]"));
    }
    params_ = Pool2DParams{.batch = 1,
                           .height = input.dims[0],
                           .width = input.dims[1],
                           .channels = input.dims[2],
                           .window_height = window_.size[0],
                           .window_width = window_.size[1],
                           .stride_height = window_.strides[0],
                           .stride_width = window_.strides[1],
                           .padding = window_.padding};
    absl::StatusOr<Pool2DGeometry> geometry = InferPool2D(params_);
    if (!geometry.ok()) {
      return builder.Error(absl::StrCat(geometry.status().message(), " (input ", input.ToString(),
                                        "); choose a smaller pool_size or padding same"));
    }
    return ExampleShape{DType::kFloat32,
                        {geometry->rows.out, geometry->cols.out, params_.channels}};
  }

  int workspace_buffers() const override { return kBuffers; }

  absl::StatusOr<Tensor> Forward(LayerContext& ctx, const Tensor& input,
                                 bool training) const override {
    MESHTRAIN_ASSIGN_OR_RETURN(const Pool2DGeometry geometry, Geometry(input.rows()));
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor y,
                               ctx.Buffer(kOutput, DType::kFloat32, geometry.output_shape()));
    if (kind_ == PoolKind::kMax) {
      ctx.kernels().MaxPool2DForward(geometry, input, y);
    } else {
      ctx.kernels().AvgPool2DForward(geometry, input, y);
    }
    return y;
  }

  absl::StatusOr<Tensor> Backward(LayerContext& ctx, const Tensor& input, const Tensor& output,
                                  Tensor& d_output, bool need_d_input) const override {
    if (!need_d_input) return Tensor();
    MESHTRAIN_ASSIGN_OR_RETURN(const Pool2DGeometry geometry, Geometry(input.rows()));
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor dx,
                               ctx.Buffer(kInputGrad, DType::kFloat32, geometry.input_shape()));
    if (kind_ == PoolKind::kMax) {
      ctx.kernels().MaxPool2DBackward(geometry, input, output, d_output, dx);
    } else {
      ctx.kernels().AvgPool2DBackward(geometry, d_output, dx);
    }
    return dx;
  }

 private:
  absl::StatusOr<Pool2DGeometry> Geometry(int64_t n) const {
    Pool2DParams params = params_;
    params.batch = n;
    return InferPool2D(params);
  }

  const PoolKind kind_;
  const WindowArgs window_;
  Pool2DParams params_;
};

absl::StatusOr<std::unique_ptr<Layer>> CreatePool2DLayer(PoolKind kind, JsonReader& args) {
  WindowArgs window;
  window.size[0] = window.size[1] = 2;
  MESHTRAIN_RETURN_IF_ERROR(ReadPair(args, "pool_size", /*required=*/false, window.size));
  window.strides[0] = window.size[0];
  window.strides[1] = window.size[1];
  MESHTRAIN_RETURN_IF_ERROR(ReadPair(args, "strides", /*required=*/false, window.strides));
  MESHTRAIN_RETURN_IF_ERROR(ReadPadding(args, &window.padding));
  return std::make_unique<Pool2DLayer>(kind, window);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Layer>> CreateMaxPool2DLayer(JsonReader& args) {
  return CreatePool2DLayer(PoolKind::kMax, args);
}

absl::StatusOr<std::unique_ptr<Layer>> CreateAveragePool2DLayer(JsonReader& args) {
  return CreatePool2DLayer(PoolKind::kAverage, args);
}

}  // namespace meshtrain

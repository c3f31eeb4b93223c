// Conv2DParams and Pool2DParams: the geometry of a 2-D convolution or pooling
// window sliding over an NHWC tensor, and its shape inference. Output sizes and
// padding follow TensorFlow: `valid` pads nothing, out = ceil((in - window + 1) /
// stride); `same` gives out = ceil(in / stride) and pads the missing total,
// half before and the odd element after (so stride 2 on an even input pads
// only at the bottom/right). Value types; validation is pure.
//
// Layouts at every kernel boundary: activations NHWC [batch, height, width,
// channels] (Keras' channels_last), filters [filter_h, filter_w, in, out]
// (TensorFlow's HWIO), bias [out].
#ifndef MESHTRAIN_RUNTIME_TENSOR_CONV_PARAMS_H_
#define MESHTRAIN_RUNTIME_TENSOR_CONV_PARAMS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/tensor/shape.h"

namespace meshtrain {

enum class Padding { kValid, kSame };
absl::string_view PaddingName(Padding padding);  // "valid", "same"

// One spatial axis of a window: output size and padding on either side.
struct WindowAxis {
  int64_t out = 0;
  int64_t pad_before = 0;
  int64_t pad_after = 0;
  bool operator==(const WindowAxis& other) const = default;
};
// InvalidArgument names `axis` ("height") when in, window or stride is not
// positive or a valid window does not fit.
absl::StatusOr<WindowAxis> InferWindowAxis(absl::string_view axis, int64_t in, int64_t window,
                                           int64_t stride, Padding padding);

struct Conv2DParams {
  int64_t batch = 0;  // may be 0: the kernels then do nothing
  int64_t height = 0;
  int64_t width = 0;
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t filter_height = 0;
  int64_t filter_width = 0;
  int64_t stride_height = 1;
  int64_t stride_width = 1;
  Padding padding = Padding::kValid;
  bool operator==(const Conv2DParams& other) const = default;
};

// Validated Conv2DParams with the output size and padding worked out. The
// kernels take only this, so they never see an unchecked geometry.
struct Conv2DGeometry {
  Conv2DParams params;
  WindowAxis rows;  // height
  WindowAxis cols;  // width

  Shape input_shape() const;   // [batch, height, width, in_channels]
  Shape filter_shape() const;  // [filter_height, filter_width, in_channels, out_channels]
  Shape bias_shape() const;    // [out_channels]
  Shape output_shape() const;  // [batch, rows.out, cols.out, out_channels]
  bool operator==(const Conv2DGeometry& other) const = default;
};
// InvalidArgument naming the field: "conv2d: filter_width 5 exceeds width 3
// with padding valid".
absl::StatusOr<Conv2DGeometry> InferConv2D(const Conv2DParams& params);

struct Pool2DParams {
  int64_t batch = 0;
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;
  int64_t window_height = 0;
  int64_t window_width = 0;
  int64_t stride_height = 1;  // Keras' default stride is the window: the caller sets it
  int64_t stride_width = 1;
  Padding padding = Padding::kValid;
  bool operator==(const Pool2DParams& other) const = default;
};

// Padded positions never win a max and are not counted by an average (as
// TensorFlow does).
struct Pool2DGeometry {
  Pool2DParams params;
  WindowAxis rows;
  WindowAxis cols;

  Shape input_shape() const;   // [batch, height, width, channels]
  Shape output_shape() const;  // [batch, rows.out, cols.out, channels]
  bool operator==(const Pool2DGeometry& other) const = default;
};
absl::StatusOr<Pool2DGeometry> InferPool2D(const Pool2DParams& params);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_CONV_PARAMS_H_

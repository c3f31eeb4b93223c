#include "runtime/tensor/conv_params.h"

#include <algorithm>
#include <initializer_list>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

using Field = std::pair<absl::string_view, int64_t>;

// The spatial part shared by convolution and pooling.
struct Spatial {
  int64_t height, width, window_height, window_width, stride_height, stride_width;
  Padding padding;
  absl::string_view window_height_name, window_width_name;
};

// Checks the batch, the `channels` fields and the spatial fields, then infers
// both axes. Messages start with `op`.
absl::Status InferWindows(absl::string_view op, int64_t batch,
                          std::initializer_list<Field> channels, const Spatial& s, WindowAxis& rows,
                          WindowAxis& cols) {
  if (batch < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": batch must not be negative, got ", batch));
  }
  std::vector<Field> fields = {{"height", s.height}, {"width", s.width}};
  fields.insert(fields.end(), channels.begin(), channels.end());
  fields.insert(fields.end(), {{s.window_height_name, s.window_height},
                               {s.window_width_name, s.window_width},
                               {"stride_height", s.stride_height},
                               {"stride_width", s.stride_width}});
  for (const auto& [field, value] : fields) {
    if (value <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": ", field, " must be positive, got ", value));
    }
  }
  absl::StatusOr<WindowAxis> r =
      InferWindowAxis("height", s.height, s.window_height, s.stride_height, s.padding);
  if (!r.ok()) return absl::InvalidArgumentError(absl::StrCat(op, " ", r.status().message()));
  absl::StatusOr<WindowAxis> c =
      InferWindowAxis("width", s.width, s.window_width, s.stride_width, s.padding);
  if (!c.ok()) return absl::InvalidArgumentError(absl::StrCat(op, " ", c.status().message()));
  rows = *r;
  cols = *c;
  return absl::OkStatus();
}

}  // namespace

absl::string_view PaddingName(Padding padding) {
  return padding == Padding::kSame ? "same" : "valid";
}

absl::StatusOr<WindowAxis> InferWindowAxis(absl::string_view axis, int64_t in, int64_t window,
                                           int64_t stride, Padding padding) {
  if (in <= 0 || window <= 0 || stride <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(axis, ": size ", in, ", window ", window,
                                                   " and stride ", stride, " must be positive"));
  }
  WindowAxis result;
  if (padding == Padding::kValid) {
    if (window > in) {
      return absl::InvalidArgumentError(
          absl::StrCat(axis, ": window ", window, " exceeds size ", in, " with padding valid"));
    }
    result.out = (in - window) / stride + 1;
    return result;
  }
  result.out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((result.out - 1) * stride + window - in, 0);
  result.pad_before = total / 2;
  result.pad_after = total - result.pad_before;
  return result;
}

Shape Conv2DGeometry::input_shape() const {
  return {params.batch, params.height, params.width, params.in_channels};
}
Shape Conv2DGeometry::filter_shape() const {
  return {params.filter_height, params.filter_width, params.in_channels, params.out_channels};
}
Shape Conv2DGeometry::bias_shape() const { return {params.out_channels}; }
Shape Conv2DGeometry::output_shape() const {
  return {params.batch, rows.out, cols.out, params.out_channels};
}

absl::StatusOr<Conv2DGeometry> InferConv2D(const Conv2DParams& p) {
  Conv2DGeometry g;
  g.params = p;
  MESHTRAIN_RETURN_IF_ERROR(InferWindows(
      "conv2d", p.batch, {{"in_channels", p.in_channels}, {"out_channels", p.out_channels}},
      {p.height, p.width, p.filter_height, p.filter_width, p.stride_height, p.stride_width,
       p.padding, "filter_height", "filter_width"},
      g.rows, g.cols));
  return g;
}

Shape Pool2DGeometry::input_shape() const {
  return {params.batch, params.height, params.width, params.channels};
}
Shape Pool2DGeometry::output_shape() const {
  return {params.batch, rows.out, cols.out, params.channels};
}

absl::StatusOr<Pool2DGeometry> InferPool2D(const Pool2DParams& p) {
  Pool2DGeometry g;
  g.params = p;
  MESHTRAIN_RETURN_IF_ERROR(
      InferWindows("pool2d", p.batch, {{"channels", p.channels}},
                   {p.height, p.width, p.window_height, p.window_width, p.stride_height,
                    p.stride_width, p.padding, "window_height", "window_width"},
                   g.rows, g.cols));
  return g;
}

}  // namespace meshtrain

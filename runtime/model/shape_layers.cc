// Flatten and Reshape (Keras's): the same values seen with another example
// shape. Both are views: no copy forward or backward.
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/status_macros.h"
#include "runtime/model/builtin_layers.h"

namespace meshtrain {
namespace {

// Views its input as [n, target...]; `target` is fixed by Build.
class ReshapeLayer final : public Layer {
 public:
  // `target` empty: flatten.
  explicit ReshapeLayer(std::vector<int64_t> target) : target_(std::move(target)) {}

  absl::StatusOr<ExampleShape> Build(const ExampleShape& input, LayerBuilder& builder) override {
    ExampleShape output{input.dtype, target_};
    const int64_t elements = input.num_elements();
    if (target_.empty()) {
      output.dims = {elements};
      return output;
    }
    int64_t unknown = -1;
    std::vector<int64_t> known_dims;
    for (size_t i = 0; i < target_.size(); ++i) {
      if (target_[i] == -1 && unknown < 0) {
        unknown = static_cast<int64_t>(i);
      } else if (target_[i] < 1) {
        return builder.Error(absl::StrCat("target_shape [", absl::StrJoin(target_, ", "),
                                          "] may hold one -1 and otherwise dimensions >= 1"));
      } else {
        known_dims.push_back(target_[i]);
      }
    }
    const int64_t known = SaturatingProduct(known_dims);
    if (unknown >= 0 && known > 0 && elements % known == 0) {
      output.dims[unknown] = elements / known;
    }
    if (output.num_elements() != elements || (unknown >= 0 && elements % known != 0)) {
      return builder.Error(absl::StrCat("target_shape [", absl::StrJoin(target_, ", "),
                                        "] cannot hold the input ", input.ToString(), " (",
                                        elements, " values): choose dimensions whose product is ",
                                        elements));
    }
    return output;
  }

  absl::StatusOr<Tensor> Forward(LayerContext& ctx, const Tensor& input,
                                 bool training) const override {
    std::vector<int64_t> dims{input.rows()};
    const int64_t per_example = input.rows() == 0 ? 0 : input.num_elements() / input.rows();
    if (target_.empty()) {
      dims.push_back(per_example);
    } else {
      int64_t known = 1;
      for (int64_t d : target_) known *= d == -1 ? 1 : d;
      for (int64_t d : target_) dims.push_back(d == -1 ? per_example / known : d);
    }
    return input.Reshaped(Shape(absl::MakeConstSpan(dims)));
  }

  absl::StatusOr<Tensor> Backward(LayerContext& ctx, const Tensor& input, const Tensor& output,
                                  Tensor& d_output, bool need_d_input) const override {
    if (!need_d_input) return Tensor();
    return d_output.Reshaped(input.shape());
  }

 private:
  const std::vector<int64_t> target_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Layer>> CreateFlattenLayer(JsonReader& args) {
  return std::make_unique<ReshapeLayer>(std::vector<int64_t>{});
}

absl::StatusOr<std::unique_ptr<Layer>> CreateReshapeLayer(JsonReader& args) {
  const nlohmann::json* target = args.Find("target_shape");
  if (target == nullptr) return args.Error(args.PathOf("target_shape"), "is missing");
  std::vector<int64_t> dims;
  bool valid = target->is_array() && !target->empty();
  for (size_t i = 0; valid && i < target->size(); ++i) {
    valid = (*target)[i].is_number_integer() && (*target)[i].get<int64_t>() >= -1 &&
            (*target)[i].get<int64_t>() != 0;
    if (valid) dims.push_back((*target)[i].get<int64_t>());
  }
  if (!valid) {
    return args.Error(
        args.PathOf("target_shape"),
        absl::StrCat("must be a non-empty array of dimensions >= 1 (one may be -1), got ",
                     DescribeJson(*target)));
  }
  return std::make_unique<ReshapeLayer>(std::move(dims));
}

}  // namespace meshtrain

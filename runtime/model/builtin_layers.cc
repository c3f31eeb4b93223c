#include "runtime/model/builtin_layers.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/base/status_macros.h"

namespace meshtrain {

std::vector<std::pair<std::string, LayerFactory>> BuiltinLayerFactories() {
  return {
      {"activation", CreateActivationLayer},
      {"average_pool2d", CreateAveragePool2DLayer},
      {"batch_normalization", CreateBatchNormalizationLayer},
      {"conv2d", CreateConv2DLayer},
      {"dense", CreateDenseLayer},
      {"dropout", CreateDropoutLayer},
      {"embedding", CreateEmbeddingLayer},
      {"flatten", CreateFlattenLayer},
      {"layer_normalization", CreateLayerNormalizationLayer},
      {"max_pool2d", CreateMaxPool2DLayer},
      {"reshape", CreateReshapeLayer},
  };
}

absl::StatusOr<ActivationFn> ParseActivation(absl::string_view name) {
  if (name == "linear") return ActivationFn::kLinear;
  if (name == "relu") return ActivationFn::kRelu;
  if (name == "gelu") return ActivationFn::kGelu;
  if (name == "tanh") return ActivationFn::kTanh;
  if (name == "sigmoid") return ActivationFn::kSigmoid;
  if (name == "softmax") return ActivationFn::kSoftmax;
  return absl::InvalidArgumentError(absl::StrCat(
      "'", name, "' is not an activation: use relu, gelu, tanh, sigmoid, softmax or linear"));
}

const char* ActivationName(ActivationFn fn) {
  switch (fn) {
    case ActivationFn::kLinear:
      return "linear";
    case ActivationFn::kRelu:
      return "relu";
    case ActivationFn::kGelu:
      return "gelu";
    case ActivationFn::kTanh:
      return "tanh";
    case ActivationFn::kSigmoid:
      return "sigmoid";
    case ActivationFn::kSoftmax:
      return "softmax";
  }
  return "?";
}

absl::Status ReadActivation(JsonReader& args, absl::string_view key, ActivationFn* out) {
  std::string name = ActivationName(*out);
  if (absl::Status read = args.ReadOptional(key, &name); !read.ok()) return read;
  absl::StatusOr<ActivationFn> fn = ParseActivation(name);
  if (!fn.ok())
    return args.Error(args.PathOf(key), absl::StrCat("is invalid: ", fn.status().message()));
  *out = *fn;
  return absl::OkStatus();
}

absl::Status ReadInitializer(JsonReader& args, absl::string_view key, absl::string_view fallback,
                             Initializer* out) {
  std::string name(fallback);
  if (absl::Status read = args.ReadOptional(key, &name); !read.ok()) return read;
  if (name == "random_uniform") name = "uniform:0.05";
  if (name == "random_normal") name = "normal:0.05";
  absl::StatusOr<Initializer> init = Initializer::Parse(name);
  if (!init.ok()) {
    return args.Error(args.PathOf(key), absl::StrCat("is invalid: ", init.status().message()));
  }
  *out = *init;
  return absl::OkStatus();
}

}  // namespace meshtrain

namespace meshtrain {

absl::Status ReadPair(JsonReader& args, absl::string_view key, bool required, int64_t out[2]) {
  const nlohmann::json* value = args.Find(key);
  if (value == nullptr || value->is_null()) {
    return required ? args.Error(args.PathOf(key), "is missing: give a number or [height, width]")
                    : absl::OkStatus();
  }
  std::vector<int64_t> pair;
  if (value->is_number_integer()) {
    pair = {value->get<int64_t>(), value->get<int64_t>()};
  } else if (value->is_array() && value->size() == 2 && (*value)[0].is_number_integer() &&
             (*value)[1].is_number_integer()) {
    pair = {(*value)[0].get<int64_t>(), (*value)[1].get<int64_t>()};
  }
  if (pair.size() != 2 || pair[0] < 1 || pair[1] < 1 || pair[0] > kMaxWindow ||
      pair[1] > kMaxWindow) {
    return args.Error(args.PathOf(key),
                      absl::StrCat("must be a number or [height, width], each in [1, ", kMaxWindow,
                                   "], got ", value->dump()));
  }
  out[0] = pair[0];
  out[1] = pair[1];
  return absl::OkStatus();
}

absl::Status ReadPadding(JsonReader& args, Padding* out) {
  std::string padding = "valid";
  MESHTRAIN_RETURN_IF_ERROR(args.ReadOptional("padding", &padding));
  if (padding == "valid") {
    *out = Padding::kValid;
  } else if (padding == "same") {
    *out = Padding::kSame;
  } else {
    return args.Error(args.PathOf("padding"),
                      absl::StrCat("is '", padding, "': use valid or same"));
  }
  return absl::OkStatus();
}

absl::Status ReadNormalizationArgs(JsonReader& args, float* epsilon) {
  MESHTRAIN_RETURN_IF_ERROR(args.ReadOptional("epsilon", epsilon));
  if (!(*epsilon > 0.0f)) {
    return args.Error(args.PathOf("epsilon"), absl::StrCat("must be > 0, got ", *epsilon));
  }
  int64_t axis = -1;
  MESHTRAIN_RETURN_IF_ERROR(args.ReadOptional("axis", &axis));
  if (axis != -1) {
    return args.Error(args.PathOf("axis"),
                      absl::StrCat("must be -1 (the last dimension), got ", axis,
                                   "; reshape so that the normalised values are last"));
  }
  return absl::OkStatus();
}

}  // namespace meshtrain

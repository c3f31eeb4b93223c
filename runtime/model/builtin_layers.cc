#include "runtime/model/builtin_layers.h"

#include "absl/strings/str_cat.h"

namespace meshtrain {

std::vector<std::pair<std::string, LayerFactory>> BuiltinLayerFactories() {
  return {
      {"activation", CreateActivationLayer}, {"dense", CreateDenseLayer},
      {"dropout", CreateDropoutLayer},       {"embedding", CreateEmbeddingLayer},
      {"flatten", CreateFlattenLayer},       {"layer_normalization", CreateLayerNormalizationLayer},
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

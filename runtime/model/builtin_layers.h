// The built-in layers, each made from its JSON arguments in Keras's vocabulary
// and defaults (docs/models.md lists every argument). This is the one list of
// them: LayerRegistry's constructor registers BuiltinLayerFactories(). The
// layer classes live in their .cc files; only the factories are public.
#ifndef MESHTRAIN_RUNTIME_MODEL_BUILTIN_LAYERS_H_
#define MESHTRAIN_RUNTIME_MODEL_BUILTIN_LAYERS_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/base/json_reader.h"
#include "runtime/model/layer.h"
#include "runtime/model/layer_registry.h"
#include "runtime/tensor/conv_params.h"

namespace meshtrain {

std::vector<std::pair<std::string, LayerFactory>> BuiltinLayerFactories();

// dense_layer.cc
absl::StatusOr<std::unique_ptr<Layer>> CreateDenseLayer(JsonReader& args);
// activation_layer.cc: "activation" with the argument `activation`.
absl::StatusOr<std::unique_ptr<Layer>> CreateActivationLayer(JsonReader& args);
// shape_layers.cc
absl::StatusOr<std::unique_ptr<Layer>> CreateFlattenLayer(JsonReader& args);
absl::StatusOr<std::unique_ptr<Layer>> CreateReshapeLayer(JsonReader& args);
// dropout_layer.cc
absl::StatusOr<std::unique_ptr<Layer>> CreateDropoutLayer(JsonReader& args);
// layer_normalization_layer.cc
absl::StatusOr<std::unique_ptr<Layer>> CreateLayerNormalizationLayer(JsonReader& args);
// batch_normalization_layer.cc
absl::StatusOr<std::unique_ptr<Layer>> CreateBatchNormalizationLayer(JsonReader& args);
// embedding_layer.cc
absl::StatusOr<std::unique_ptr<Layer>> CreateEmbeddingLayer(JsonReader& args);
// conv2d_layer.cc
absl::StatusOr<std::unique_ptr<Layer>> CreateConv2DLayer(JsonReader& args);
// pooling_layers.cc
absl::StatusOr<std::unique_ptr<Layer>> CreateMaxPool2DLayer(JsonReader& args);
absl::StatusOr<std::unique_ptr<Layer>> CreateAveragePool2DLayer(JsonReader& args);

// A window over images (conv2d's kernel, a pooling window): size, strides
// and padding, each [height, width].
struct WindowArgs {
  int64_t size[2] = {1, 1};
  int64_t strides[2] = {1, 1};
  Padding padding = Padding::kValid;
};
// The largest window or stride a layer list may give.
inline constexpr int64_t kMaxWindow = 1 << 16;
// Argument `key` as Keras takes kernel_size, strides and pool_size: a number
// (both dimensions) or [height, width], each in [1, kMaxWindow]; absent
// leaves `out` as it is unless `required`.
absl::Status ReadPair(JsonReader& args, absl::string_view key, bool required, int64_t out[2]);
// Argument `padding`: "valid" (the default) or "same".
absl::Status ReadPadding(JsonReader& args, Padding* out);

// A normalisation layer's `epsilon` (> 0; `*epsilon` holds the default) and
// `axis` (only -1, the last dimension).
absl::Status ReadNormalizationArgs(JsonReader& args, float* epsilon);

// Keras's activation names: relu, gelu, tanh, sigmoid, softmax, linear.
absl::StatusOr<ActivationFn> ParseActivation(absl::string_view name);
const char* ActivationName(ActivationFn fn);
// Optional argument `key` naming an activation (default `fallback`); an
// unknown name is an error naming the argument's path.
absl::Status ReadActivation(JsonReader& args, absl::string_view key, ActivationFn* out);
// Optional argument `key` naming an initializer (Initializer::Parse, plus
// Keras's random_uniform and random_normal, whose scale is 0.05), or
// `fallback` when absent.
absl::Status ReadInitializer(JsonReader& args, absl::string_view key, absl::string_view fallback,
                             Initializer* out);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_MODEL_BUILTIN_LAYERS_H_

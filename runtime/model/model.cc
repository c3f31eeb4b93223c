#include "runtime/model/model.h"

#include "absl/strings/str_cat.h"
#include "runtime/model/dense_network.h"
#include "runtime/model/embedding_ctr.h"
#include "runtime/model/layer_registry.h"
#include "runtime/model/sequential_model.h"

namespace meshtrain {

absl::StatusOr<std::unique_ptr<Model>> CreateModel(const ModelConfig& config,
                                                   const ModelShape& shape,
                                                   VariableCreator& creator) {
  if (config.type == "mlp") {
    return DenseNetwork::Create("mlp", config, shape, creator);
  }
  if (config.type == "softmax_regression") {
    ModelConfig linear = config;
    linear.hidden_units.clear();
    return DenseNetwork::Create("softmax_regression", linear, shape, creator);
  }
  if (config.type == "embedding_ctr") {
    return EmbeddingCtr::Create(config, shape, creator);
  }
  if (config.type == "sequential") {
    return SequentialModel::Create(config, shape, creator, LayerRegistry::Global());
  }
  return absl::InvalidArgumentError(
      absl::StrCat("model.type '", config.type,
                   "' is unknown: use mlp, softmax_regression, embedding_ctr or sequential"));
}

}  // namespace meshtrain

// Model: a differentiable function of variables and a batch. A model declares its
// variables through the strategy's VariableCreator when it is built, then each
// step computes, on one replica, the loss of a slice of the batch and the
// gradients of every trainable variable (analytic backward, no autodiff).
// Models are named in the job config: "mlp", "softmax_regression",
// "embedding_ctr". A model object is shared by all replicas and is immutable
// after construction (thread-safe); per-replica state lives in the Workspace.
#ifndef MESHTRAIN_RUNTIME_MODEL_MODEL_H_
#define MESHTRAIN_RUNTIME_MODEL_MODEL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/model/replica_context.h"
#include "runtime/model/variable.h"
#include "runtime/tensor/batch.h"

namespace meshtrain {

struct ModelConfig {
  std::string type = "mlp";  // mlp | softmax_regression | embedding_ctr | sequential
  std::vector<int64_t> hidden_units = {300, 100};
  std::string kernel_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
  // embedding_ctr only.
  int64_t embedding_rows = 1 << 20;
  int64_t embedding_dim = 16;
  // sequential only (sequential_model.h, docs/models.md). The shape of one
  // example (empty: [the data's input features]) and its dtype.
  std::vector<int64_t> input_shape;
  std::string input_dtype = "float32";  // float32 | int64
  // The config's array of layer objects ({"type": "dense", "units": 10, ...}).
  nlohmann::json layers;
  // sparse_categorical_crossentropy | binary_crossentropy | mse; empty: by the
  // data (sparse_categorical_crossentropy with classes, else binary_crossentropy).
  std::string loss;
};

// What the data says about the model's ends.
struct ModelShape {
  int64_t input_features = 0;           // dense: columns of inputs; categorical: fields
  int num_classes = 0;                  // 0: a binary target (logistic loss)
  DType input_dtype = DType::kFloat32;  // of a batch: float32, or int64 ids
};

class Model {
 public:
  virtual ~Model() = default;

  virtual const std::string& name() const = 0;
  // Declared variables, indexed by VariableId.
  virtual const std::vector<VariableSpec>& variables() const = 0;

  // Forward and backward on `batch`. Gradients are those of
  // grad_scale * (sum of per-example losses): a strategy passes
  // 1 / global batch size so that summing over replicas gives the mean.
  virtual absl::StatusOr<LossStats> ComputeGradients(ReplicaContext& ctx, const Batch& batch,
                                                     float grad_scale) const = 0;

  // Forward only. If `probabilities` is given (binary models), it receives
  // P(label = 1) per example, [n].
  virtual absl::StatusOr<LossStats> Evaluate(ReplicaContext& ctx, const Batch& batch,
                                             Tensor* probabilities) const = 0;
};

// Builds the model named by `config.type`, declaring its variables on `creator`
// (a sequential model's layers come from LayerRegistry::Global()).
absl::StatusOr<std::unique_ptr<Model>> CreateModel(const ModelConfig& config,
                                                   const ModelShape& shape,
                                                   VariableCreator& creator);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_MODEL_MODEL_H_

// SequentialModel ("sequential"): a list of layers (layer.h) from the job
// config, each feeding the next, ending in a loss:
//   sparse_categorical_crossentropy  int32 labels [n], output [num_classes]
//   binary_crossentropy              float32 labels in {0, 1} [n], output [1]
//   mse                              float32 targets [n], output [1]
// The losses take logits: a final softmax (sparse categorical) or sigmoid
// (binary) activation is fused into the loss, as Keras does when it sees a
// softmax output with from_logits=False; a last layer with no such activation
// gives logits, as from_logits=True. (mse takes the output as it is.)
//
// Shapes are inferred when the model is built, and before that when the job
// config is loaded (CheckSequentialConfig): an error names the layer
// ("model.layers[3] (dense)"), the shapes and the fix. Variables are named
// "<layer name>/<variable>"; a layer's name defaults to "<type>_<k>" for the
// k-th layer of its type, counting from 0 (dense_0, dense_1, ...), the names
// the mlp model gives its variables.
//
// Immutable after Create; thread-safe as every Model is. Per replica, layer
// i's buffers are workspace slots [first_slot_i, first_slot_i + buffers_i).
#ifndef MESHTRAIN_RUNTIME_MODEL_SEQUENTIAL_MODEL_H_
#define MESHTRAIN_RUNTIME_MODEL_SEQUENTIAL_MODEL_H_

#include <memory>
#include <string>
#include <vector>

#include "runtime/model/layer.h"
#include "runtime/model/layer_registry.h"
#include "runtime/model/model.h"

namespace meshtrain {

enum class LossKind { kSparseCategoricalCrossentropy, kBinaryCrossentropy, kMeanSquaredError };

class SequentialModel final : public Model {
 public:
  // Builds config.layers with `registry`'s factories and checks the model's
  // ends against `shape` (the data). `registry` must outlive the call only.
  static absl::StatusOr<std::unique_ptr<SequentialModel>> Create(const ModelConfig& config,
                                                                 const ModelShape& shape,
                                                                 VariableCreator& creator,
                                                                 const LayerRegistry& registry);

  const std::string& name() const override { return name_; }
  const std::vector<VariableSpec>& variables() const override { return specs_; }
  absl::StatusOr<LossStats> ComputeGradients(ReplicaContext& ctx, const Batch& batch,
                                             float grad_scale) const override;
  absl::StatusOr<LossStats> Evaluate(ReplicaContext& ctx, const Batch& batch,
                                     Tensor* probabilities) const override;

  LossKind loss() const { return loss_; }
  // Each layer's output shape, in order ("[28, 28, 1] -> [784] -> ...").
  std::string Summary() const;

 private:
  struct Entry {
    std::unique_ptr<Layer> layer;
    std::string where;  // "model.layers[3] (dense)"
    int first_slot = 0;
    ExampleShape output;
    bool need_d_input = false;  // a layer before it has variables
  };

  friend absl::Status CheckSequentialConfig(const ModelConfig&, const LayerRegistry&);
  SequentialModel() = default;
  // Create's work; `shape` null skips the checks against the data.
  static absl::StatusOr<std::unique_ptr<SequentialModel>> Build(const ModelConfig& config,
                                                                const ModelShape* shape,
                                                                VariableCreator& creator,
                                                                const LayerRegistry& registry);
  absl::Status CheckBatch(const Batch& batch) const;
  // Runs every layer; outputs[i] is layer i's output.
  absl::Status Forward(ReplicaContext& ctx, const Tensor& inputs, bool training,
                       std::vector<Tensor>& outputs) const;
  LossStats Loss(Kernels& kernels, const Tensor& output, const Tensor& labels, float grad_scale,
                 Tensor* d_output, Tensor* probabilities) const;

  std::string name_ = "sequential";
  ExampleShape input_;
  LossKind loss_ = LossKind::kSparseCategoricalCrossentropy;
  std::vector<Entry> layers_;
  std::vector<VariableSpec> specs_;
};

// The shape inference of Create on the config alone (the data unread): the
// layer list, each layer's arguments and shapes, and the loss's name. What
// needs the data (input features, classes) is checked by Create.
absl::Status CheckSequentialConfig(const ModelConfig& config, const LayerRegistry& registry);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_MODEL_SEQUENTIAL_MODEL_H_

// DenseNetwork: a stack of Dense layers (ReLU between them) ending in softmax
// cross-entropy over classes, or a logistic loss for a binary target. "mlp" is
// the reference model (784-300-100-10); "softmax_regression" is the same with no
// hidden layer. Backward is analytic and fused with the activation and bias.
#ifndef MESHTRAIN_RUNTIME_MODEL_DENSE_NETWORK_H_
#define MESHTRAIN_RUNTIME_MODEL_DENSE_NETWORK_H_

#include <memory>
#include <string>
#include <vector>

#include "runtime/model/model.h"

namespace meshtrain {

class DenseNetwork final : public Model {
 public:
  // `hidden_units` may be empty (softmax regression).
  static absl::StatusOr<std::unique_ptr<DenseNetwork>> Create(std::string name,
                                                              const ModelConfig& config,
                                                              const ModelShape& shape,
                                                              VariableCreator& creator);

  const std::string& name() const override { return name_; }
  const std::vector<VariableSpec>& variables() const override { return specs_; }
  absl::StatusOr<LossStats> ComputeGradients(ReplicaContext& ctx, const Batch& batch,
                                             float grad_scale) const override;
  absl::StatusOr<LossStats> Evaluate(ReplicaContext& ctx, const Batch& batch,
                                     Tensor* probabilities) const override;

 private:
  struct Layer {
    VariableId kernel;
    VariableId bias;
    int64_t in;
    int64_t out;
    Activation activation;
  };

  DenseNetwork() = default;
  absl::Status CheckBatch(const Batch& batch) const;
  // Runs the layers on `inputs`; `outputs[l]` receives layer l's activations.
  absl::Status Forward(ReplicaContext& ctx, const Tensor& inputs,
                       std::vector<Tensor>& outputs) const;
  LossStats Loss(Kernels& kernels, const Tensor& logits, const Tensor& labels, float grad_scale,
                 Tensor* dlogits, Tensor* probabilities) const;

  std::string name_;
  ModelShape shape_;
  std::vector<Layer> layers_;
  std::vector<VariableSpec> specs_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_MODEL_DENSE_NETWORK_H_

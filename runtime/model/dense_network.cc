#include "runtime/model/dense_network.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

// Workspace slots: layer l's output is slot l; the loss gradient and the two
// ping-pong buffers for activations' gradients follow.
int DlogitsSlot(int num_layers) { return num_layers; }
int BackpropSlot(int num_layers, int layer) { return num_layers + 1 + layer % 2; }

}  // namespace

absl::StatusOr<std::unique_ptr<DenseNetwork>> DenseNetwork::Create(std::string name,
                                                                   const ModelConfig& config,
                                                                   const ModelShape& shape,
                                                                   VariableCreator& creator) {
  if (shape.input_features < 1) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": the data has no input features"));
  }
  if (shape.num_classes == 1 || shape.num_classes < 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": num_classes ", shape.num_classes,
                                                   " (use >= 2, or 0 for a binary target)"));
  }
  MESHTRAIN_ASSIGN_OR_RETURN(Initializer kernel_init,
                             Initializer::Parse(config.kernel_initializer));
  MESHTRAIN_ASSIGN_OR_RETURN(Initializer bias_init, Initializer::Parse(config.bias_initializer));
  auto model = std::unique_ptr<DenseNetwork>(new DenseNetwork);
  model->name_ = std::move(name);
  model->shape_ = shape;
  std::vector<int64_t> widths = config.hidden_units;
  for (int64_t w : widths) {
    if (w < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(model->name_, ": hidden_units must be >= 1, got ", w));
    }
  }
  widths.push_back(shape.num_classes == 0 ? 1 : shape.num_classes);
  int64_t in = shape.input_features;
  for (size_t l = 0; l < widths.size(); ++l) {
    const bool last = l + 1 == widths.size();
    const std::string prefix = absl::StrCat("dense_", l);
    VariableSpec kernel{absl::StrCat(prefix, "/kernel"), Shape{in, widths[l]}, DType::kFloat32,
                        kernel_init};
    VariableSpec bias{absl::StrCat(prefix, "/bias"), Shape{widths[l]}, DType::kFloat32, bias_init};
    MESHTRAIN_ASSIGN_OR_RETURN(VariableId kernel_id, creator.CreateVariable(kernel));
    MESHTRAIN_ASSIGN_OR_RETURN(VariableId bias_id, creator.CreateVariable(bias));
    model->specs_.push_back(std::move(kernel));
    model->specs_.push_back(std::move(bias));
    model->layers_.push_back(
        Layer{kernel_id, bias_id, in, widths[l], last ? Activation::kNone : Activation::kRelu});
    in = widths[l];
  }
  return model;
}

absl::Status DenseNetwork::CheckBatch(const Batch& batch) const {
  const Tensor& x = batch.inputs;
  if (x.dtype() != DType::kFloat32 || x.shape().rank() != 2 ||
      x.shape().dim(1) != shape_.input_features) {
    return absl::InvalidArgumentError(absl::StrCat(
        name_, ": inputs ", x.DebugString(), ", expected float32[n, ", shape_.input_features, "]"));
  }
  const DType label_type = shape_.num_classes == 0 ? DType::kFloat32 : DType::kInt32;
  if (batch.labels.dtype() != label_type || batch.labels.rows() != x.rows()) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": labels ", batch.labels.DebugString(),
                                                   ", expected ", DTypeName(label_type), "[",
                                                   x.rows(), "]"));
  }
  return absl::OkStatus();
}

absl::Status DenseNetwork::Forward(ReplicaContext& ctx, const Tensor& inputs,
                                   std::vector<Tensor>& outputs) const {
  Kernels& k = ctx.kernels();
  const int64_t n = inputs.rows();
  outputs.resize(layers_.size());
  const Tensor* in = &inputs;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    MESHTRAIN_ASSIGN_OR_RETURN(
        outputs[l], ctx.workspace().Get(static_cast<int>(l), DType::kFloat32, Shape{n, layer.out}));
    k.MatMul(*in, false, ctx.Value(layer.kernel), false, 1.0f, 0.0f, outputs[l]);
    k.BiasActivation(ctx.Value(layer.bias), layer.activation, outputs[l]);
    in = &outputs[l];
  }
  return absl::OkStatus();
}

LossStats DenseNetwork::Loss(Kernels& kernels, const Tensor& logits, const Tensor& labels,
                             float grad_scale, Tensor* dlogits, Tensor* probabilities) const {
  if (shape_.num_classes == 0) {
    return kernels.SigmoidCrossEntropy(logits, labels, grad_scale, dlogits, probabilities);
  }
  return kernels.SoftmaxCrossEntropy(logits, labels, grad_scale, dlogits);
}

absl::StatusOr<LossStats> DenseNetwork::ComputeGradients(ReplicaContext& ctx,
                                                         const Batch& host_batch,
                                                         float grad_scale) const {
  MESHTRAIN_RETURN_IF_ERROR(CheckBatch(host_batch));
  Kernels& k = ctx.kernels();
  // A GPU replica reads the batch from its own memory (uploaded on a copy stream).
  MESHTRAIN_ASSIGN_OR_RETURN(const Batch batch, k.UploadBatch(host_batch));
  const int num_layers = static_cast<int>(layers_.size());
  const int64_t n = batch.size();
  std::vector<Tensor> outputs;
  MESHTRAIN_RETURN_IF_ERROR(Forward(ctx, batch.inputs, outputs));

  MESHTRAIN_ASSIGN_OR_RETURN(
      Tensor delta,
      ctx.workspace().Get(DlogitsSlot(num_layers), DType::kFloat32, outputs.back().shape()));
  const LossStats stats = Loss(k, outputs.back(), batch.labels, grad_scale, &delta, nullptr);

  // Backward, last layer first; each layer's gradients are announced as soon as
  // they are final so the strategy can combine them while earlier layers run.
  for (int l = num_layers - 1; l >= 0; --l) {
    const Layer& layer = layers_[l];
    k.BiasActivationGrad(outputs[l], layer.activation, delta, ctx.Gradient(layer.bias));
    const Tensor& in = l == 0 ? batch.inputs : outputs[l - 1];
    k.MatMul(in, true, delta, false, 1.0f, 0.0f, ctx.Gradient(layer.kernel));
    ctx.GradientReady(layer.bias);
    ctx.GradientReady(layer.kernel);
    if (l > 0) {
      MESHTRAIN_ASSIGN_OR_RETURN(
          Tensor prev,
          ctx.workspace().Get(BackpropSlot(num_layers, l), DType::kFloat32, Shape{n, layer.in}));
      k.MatMul(delta, false, ctx.Value(layer.kernel), true, 1.0f, 0.0f, prev);
      delta = std::move(prev);
    }
  }
  return stats;
}

absl::StatusOr<LossStats> DenseNetwork::Evaluate(ReplicaContext& ctx, const Batch& host_batch,
                                                 Tensor* probabilities) const {
  MESHTRAIN_RETURN_IF_ERROR(CheckBatch(host_batch));
  MESHTRAIN_ASSIGN_OR_RETURN(const Batch batch, ctx.kernels().UploadBatch(host_batch));
  std::vector<Tensor> outputs;
  MESHTRAIN_RETURN_IF_ERROR(Forward(ctx, batch.inputs, outputs));
  return Loss(ctx.kernels(), outputs.back(), batch.labels, 0.0f, nullptr, probabilities);
}

}  // namespace meshtrain

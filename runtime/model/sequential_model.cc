#include "runtime/model/sequential_model.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/json_reader.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

// Workspace slot 0 holds the loss's gradient; layers' buffers follow.
constexpr int kLossGradSlot = 0;

absl::Status ModelError(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(JsonFieldMessage(field, problem));
}

absl::StatusOr<LossKind> ParseLoss(const std::string& name, const ModelShape* shape) {
  if (name.empty()) {
    return shape != nullptr && shape->num_classes == 0 ? LossKind::kBinaryCrossentropy
                                                       : LossKind::kSparseCategoricalCrossentropy;
  }
  if (name == "sparse_categorical_crossentropy") return LossKind::kSparseCategoricalCrossentropy;
  if (name == "binary_crossentropy") return LossKind::kBinaryCrossentropy;
  if (name == "mse" || name == "mean_squared_error") return LossKind::kMeanSquaredError;
  return ModelError("model.loss",
                    absl::StrCat("'", name,
                                 "' is not a loss: use sparse_categorical_crossentropy, "
                                 "binary_crossentropy or mse"));
}

const char* LossName(LossKind loss) {
  switch (loss) {
    case LossKind::kSparseCategoricalCrossentropy:
      return "sparse_categorical_crossentropy";
    case LossKind::kBinaryCrossentropy:
      return "binary_crossentropy";
    case LossKind::kMeanSquaredError:
      return "mse";
  }
  return "?";
}

// Declares nothing anywhere: the variables of a config checked before any
// strategy exists.
class CountingCreator final : public VariableCreator {
 public:
  absl::StatusOr<VariableId> CreateVariable(const VariableSpec& spec) override { return next_++; }

 private:
  VariableId next_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SequentialModel>> SequentialModel::Create(
    const ModelConfig& config, const ModelShape& shape, VariableCreator& creator,
    const LayerRegistry& registry) {
  return Build(config, &shape, creator, registry);
}

absl::Status CheckSequentialConfig(const ModelConfig& config, const LayerRegistry& registry) {
  CountingCreator creator;
  return SequentialModel::Build(config, nullptr, creator, registry).status();
}

absl::StatusOr<std::unique_ptr<SequentialModel>> SequentialModel::Build(
    const ModelConfig& config, const ModelShape* shape, VariableCreator& creator,
    const LayerRegistry& registry) {
  auto model = std::unique_ptr<SequentialModel>(new SequentialModel);
  MESHTRAIN_ASSIGN_OR_RETURN(model->loss_, ParseLoss(config.loss, shape));

  // The input.
  if (config.input_dtype == "float32") {
    model->input_.dtype = DType::kFloat32;
  } else if (config.input_dtype == "int64") {
    model->input_.dtype = DType::kInt64;
  } else {
    return ModelError("model.input_dtype",
                      absl::StrCat("is '", config.input_dtype, "': use float32 or int64 (ids)"));
  }
  for (int64_t d : config.input_shape) {
    if (d < 1) {
      return ModelError("model.input_shape",
                        absl::StrCat("has a dimension ", d, "; every dimension must be >= 1"));
    }
  }
  model->input_.dims = config.input_shape;
  if (shape != nullptr) {
    if (model->input_.dims.empty()) model->input_.dims = {shape->input_features};
    if (model->input_.num_elements() != shape->input_features) {
      return ModelError(
          "model.input_shape",
          absl::StrCat(model->input_.ToString(), " holds ", model->input_.num_elements(),
                       " values but the data's examples have ", shape->input_features,
                       ": give a shape whose product is ", shape->input_features));
    }
    if (shape->input_dtype != model->input_.dtype) {
      return ModelError("model.input_dtype",
                        absl::StrCat("is ", DTypeName(model->input_.dtype),
                                     " but the data's inputs are ", DTypeName(shape->input_dtype),
                                     ": set it to \"", DTypeName(shape->input_dtype), "\""));
    }
  }
  // Without an input_shape the data decides it: the config alone fixes only
  // the layers' arguments.
  const bool infer_shapes = !model->input_.dims.empty();
  if (model->input_.num_elements() > kMaxElements) {
    return ModelError("model.input_shape",
                      absl::StrCat(model->input_.ToString(), " is too large: at most 2^36 values"));
  }

  // The layers, each built on its predecessor's output.
  if (!config.layers.is_array() || config.layers.empty()) {
    return ModelError("model.layers",
                      absl::StrCat("must be a non-empty array of layer objects such as "
                                   "{\"type\": \"dense\", \"units\": 10}, got ",
                                   DescribeJson(config.layers)));
  }
  ExampleShape current = model->input_;
  std::map<std::string, int> count_by_type;
  std::map<std::string, int> names;
  int next_slot = kLossGradSlot + 1;
  bool variables_before = false;
  for (size_t i = 0; i < config.layers.size(); ++i) {
    const std::string path = absl::StrCat("model.layers[", i, "]");
    JsonReader args(config.layers[i], ModelError, path);
    MESHTRAIN_RETURN_IF_ERROR(args.CheckObject());
    std::string type;
    MESHTRAIN_RETURN_IF_ERROR(args.Read("type", &type));
    std::string layer_name = absl::StrCat(type, "_", count_by_type[type]++);
    MESHTRAIN_RETURN_IF_ERROR(args.ReadOptional("name", &layer_name));
    Entry entry;
    entry.where = absl::StrCat(path, " (", type, ")");
    if (layer_name.empty() || layer_name.find('/') != std::string::npos) {
      return ModelError(args.PathOf("name"), "must be non-empty and hold no '/'");
    }
    if (auto [it, inserted] = names.emplace(layer_name, static_cast<int>(i)); !inserted) {
      return ModelError(args.PathOf("name"),
                        absl::StrCat("'", layer_name, "' is also the name of model.layers[",
                                     it->second, "]; give each layer its own name"));
    }
    MESHTRAIN_ASSIGN_OR_RETURN(entry.layer, registry.Create(type, args, entry.where));
    MESHTRAIN_RETURN_IF_ERROR(args.CheckNoUnknownKeys());
    if (!infer_shapes) {
      model->layers_.push_back(std::move(entry));
      continue;
    }
    LayerBuilder builder(creator, layer_name, entry.where);
    MESHTRAIN_ASSIGN_OR_RETURN(entry.output, entry.layer->Build(current, builder));
    if (entry.output.num_elements() > kMaxElements) {
      return absl::InvalidArgumentError(absl::StrCat(entry.where, ": the output ",
                                                     entry.output.ToString(),
                                                     " is too large: at most 2^36 values"));
    }
    entry.first_slot = next_slot;
    next_slot += entry.layer->workspace_buffers();
    entry.need_d_input = variables_before;
    variables_before = variables_before || !builder.variables().empty();
    for (const VariableSpec& spec : builder.variables()) model->specs_.push_back(spec);
    current = entry.output;
    model->layers_.push_back(std::move(entry));
  }

  if (!infer_shapes) return model;

  // The model's end against the loss (and the data's labels).
  const Entry& last = model->layers_.back();
  const LossKind loss = model->loss_;
  if (current.dtype != DType::kFloat32) {
    return absl::InvalidArgumentError(absl::StrCat(
        last.where, ": the model ends in ", current.ToString(), "; end it with a dense layer"));
  }
  if (loss == LossKind::kSparseCategoricalCrossentropy) {
    if (shape != nullptr && shape->num_classes < 2) {
      return ModelError("model.loss",
                        "is sparse_categorical_crossentropy but the data has a binary target: use "
                        "binary_crossentropy (or mse) with a last layer of 1 unit");
    }
    if (current.dims.size() != 1 || (shape != nullptr && current.dims[0] != shape->num_classes)) {
      const std::string classes =
          shape != nullptr ? absl::StrCat(shape->num_classes) : std::string("num_classes");
      return absl::InvalidArgumentError(
          absl::StrCat(last.where, ": the model's output ", current.ToString(), " does not fit ",
                       LossName(loss), " over the data's ", classes, " classes, which needs [",
                       classes, "]: end with {\"type\": \"dense\", \"units\": ", classes, "}",
                       current.dims.size() != 1 ? " after a flatten layer" : ""));
    }
  } else {
    if (shape != nullptr && shape->num_classes != 0) {
      return ModelError(
          "model.loss",
          absl::StrCat("is ", LossName(loss), " but the data has ", shape->num_classes,
                       " classes (int32 labels): use sparse_categorical_crossentropy"));
    }
    if (current.dims != std::vector<int64_t>{1}) {
      return absl::InvalidArgumentError(absl::StrCat(
          last.where, ": the model's output ", current.ToString(), " does not fit ", LossName(loss),
          " over one target per example, which needs [1]: end with {\"type\": \"dense\", "
          "\"units\": 1}"));
    }
  }
  if (loss == LossKind::kSparseCategoricalCrossentropy) {
    model->layers_.back().layer->FuseFinalActivation(ActivationFn::kSoftmax);
  } else if (loss == LossKind::kBinaryCrossentropy) {
    model->layers_.back().layer->FuseFinalActivation(ActivationFn::kSigmoid);
  }
  return model;
}

std::string SequentialModel::Summary() const {
  std::vector<std::string> shapes{input_.ToString()};
  for (const Entry& e : layers_) shapes.push_back(e.output.ToString());
  return absl::StrCat(absl::StrJoin(shapes, " -> "), ", ", LossName(loss_));
}

absl::Status SequentialModel::CheckBatch(const Batch& batch) const {
  const Tensor& x = batch.inputs;
  if (x.dtype() != input_.dtype || x.shape().rank() < 1 ||
      x.shape().row_elements() != input_.num_elements()) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": inputs ", x.DebugString(),
                                                   ", expected examples of ", input_.ToString()));
  }
  const DType label_type =
      loss_ == LossKind::kSparseCategoricalCrossentropy ? DType::kInt32 : DType::kFloat32;
  if (batch.labels.dtype() != label_type || batch.labels.num_elements() != x.rows()) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": labels ", batch.labels.DebugString(),
                                                   ", expected ", DTypeName(label_type), "[",
                                                   x.rows(), "]"));
  }
  return absl::OkStatus();
}

absl::Status SequentialModel::Forward(ReplicaContext& ctx, const Tensor& inputs, bool training,
                                      std::vector<Tensor>& outputs) const {
  outputs.resize(layers_.size());
  const Tensor* in = &inputs;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Entry& e = layers_[i];
    LayerContext lc(ctx, e.first_slot, e.layer->workspace_buffers(), static_cast<int>(i));
    absl::StatusOr<Tensor> out = e.layer->Forward(lc, *in, training);
    if (!out.ok()) return Annotate(out.status(), e.where);
    outputs[i] = *std::move(out);
    in = &outputs[i];
  }
  return absl::OkStatus();
}

LossStats SequentialModel::Loss(Kernels& kernels, const Tensor& output, const Tensor& labels,
                                float grad_scale, Tensor* d_output, Tensor* probabilities) const {
  const Tensor logits = output.Reshaped(Shape{output.rows(), output.shape().row_elements()});
  switch (loss_) {
    case LossKind::kSparseCategoricalCrossentropy:
      return kernels.SoftmaxCrossEntropy(logits, labels, grad_scale, d_output);
    case LossKind::kBinaryCrossentropy:
      return kernels.SigmoidCrossEntropy(logits, labels, grad_scale, d_output, probabilities);
    case LossKind::kMeanSquaredError:
      if (probabilities != nullptr) kernels.Copy(logits, *probabilities);
      return kernels.MeanSquaredError(logits, labels, grad_scale, d_output);
  }
  return {};
}

absl::StatusOr<LossStats> SequentialModel::ComputeGradients(ReplicaContext& ctx,
                                                            const Batch& host_batch,
                                                            float grad_scale) const {
  MESHTRAIN_RETURN_IF_ERROR(CheckBatch(host_batch));
  Kernels& k = ctx.kernels();
  MESHTRAIN_ASSIGN_OR_RETURN(const Batch batch, k.UploadBatch(host_batch));
  const Tensor inputs = batch.inputs.Reshaped(input_.WithBatch(batch.size()));
  std::vector<Tensor> outputs;
  MESHTRAIN_RETURN_IF_ERROR(Forward(ctx, inputs, /*training=*/true, outputs));

  const Tensor& output = outputs.back();
  MESHTRAIN_ASSIGN_OR_RETURN(
      Tensor d_logits, ctx.workspace().Get(kLossGradSlot, DType::kFloat32,
                                           Shape{output.rows(), output.shape().row_elements()}));
  const LossStats stats = Loss(k, output, batch.labels, grad_scale, &d_logits, nullptr);

  // Backward, last layer first; each layer announces its gradients as they
  // become final, so the strategy combines them while earlier layers run.
  Tensor d = d_logits.Reshaped(output.shape());
  for (int i = static_cast<int>(layers_.size()) - 1; i >= 0; --i) {
    const Entry& e = layers_[i];
    LayerContext lc(ctx, e.first_slot, e.layer->workspace_buffers(), i, grad_scale);
    const Tensor& in = i == 0 ? inputs : outputs[i - 1];
    absl::StatusOr<Tensor> d_input = e.layer->Backward(lc, in, outputs[i], d, e.need_d_input);
    if (!d_input.ok()) return Annotate(d_input.status(), e.where);
    if (!e.need_d_input) break;
    d = *std::move(d_input);
  }
  return stats;
}

absl::StatusOr<LossStats> SequentialModel::Evaluate(ReplicaContext& ctx, const Batch& host_batch,
                                                    Tensor* probabilities) const {
  MESHTRAIN_RETURN_IF_ERROR(CheckBatch(host_batch));
  MESHTRAIN_ASSIGN_OR_RETURN(const Batch batch, ctx.kernels().UploadBatch(host_batch));
  const Tensor inputs = batch.inputs.Reshaped(input_.WithBatch(batch.size()));
  std::vector<Tensor> outputs;
  MESHTRAIN_RETURN_IF_ERROR(Forward(ctx, inputs, /*training=*/false, outputs));
  return Loss(ctx.kernels(), outputs.back(), batch.labels, 0.0f, nullptr, probabilities);
}

}  // namespace meshtrain

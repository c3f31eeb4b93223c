// Layer: one step of a sequential model, written once for every device. A
// layer is built once from the shape of one example (no batch dimension):
// Build checks that shape, declares the layer's variables through the
// strategy's VariableCreator (via LayerBuilder) and returns the output's
// shape, so a whole layer list is shape-checked before any data is read.
// Then, each step, on each replica: Forward(input) -> output, and in training
// Backward(d_output) -> d_input plus the gradients of the layer's variables.
// Everything runs on the replica's Kernels, so CPU and GPU replicas share the
// code.
//
// Invariants a layer keeps (SequentialModel relies on them):
//   - Build is called once, before any Forward; afterwards the layer is
//     immutable, shared by every replica and thread-safe.
//   - Per-replica state (outputs, what backward needs) lives in the layer's
//     own workspace buffers, LayerContext::Buffer(0 .. workspace_buffers()-1):
//     buffers persist across steps, so a step allocates nothing, and what
//     Forward leaves in a buffer is there for the Backward of the same step.
//   - Backward writes each variable's gradient in full (never accumulates)
//     and announces it with GradientReady, in reverse order of declaration,
//     so a strategy's flat gradient buffer fills back to front.
//
// Adding a layer (for example conv2d over a kernel of runtime/tensor):
// subclass Layer, implement the four methods, and register a factory with
// LayerRegistry (layer_registry.h); layers.cc holds the built-in ones.
#ifndef MESHTRAIN_RUNTIME_MODEL_LAYER_H_
#define MESHTRAIN_RUNTIME_MODEL_LAYER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "runtime/model/replica_context.h"
#include "runtime/model/variable.h"
#include "runtime/tensor/kernels.h"

namespace meshtrain {

// The largest example or variable a layer list may hold, in values: 2^36.
inline constexpr int64_t kMaxElements = int64_t{1} << 36;

// The product of `dims`, or INT64_MAX if it overflows (or a dimension is
// negative), so that a hostile config cannot overflow a shape's arithmetic.
int64_t SaturatingProduct(absl::Span<const int64_t> dims);

// The shape of one example (dimensions without the batch) and its dtype.
struct ExampleShape {
  DType dtype = DType::kFloat32;
  std::vector<int64_t> dims;

  int64_t num_elements() const;  // saturating, as SaturatingProduct
  // The shape of a batch of `n` such examples.
  Shape WithBatch(int64_t n) const;
  std::string ToString() const;  // "[28, 28, 1]", "int64[5]" when not float32
  bool operator==(const ExampleShape& other) const {
    return dtype == other.dtype && dims == other.dims;
  }
};

// What Build sees: the layer's place in the model and the strategy's creator.
// Not thread-safe; lives for one Build call.
class LayerBuilder {
 public:
  // `creator` must outlive the builder. `where` names the layer in errors:
  // "model.layers[3] (dense)".
  LayerBuilder(VariableCreator& creator, std::string layer_name, std::string where)
      : creator_(creator), layer_name_(std::move(layer_name)), where_(std::move(where)) {}

  // The variable "<layer name>/<name>", declared on the strategy.
  absl::StatusOr<VariableId> AddVariable(absl::string_view name, Shape shape,
                                         Initializer initializer);
  // A variable that is not trained but a moving average with `momentum`
  // (VariableSpec::trainable): its Backward writes share * (value -
  // observation) as the gradient.
  absl::StatusOr<VariableId> AddMovingAverage(absl::string_view name, Shape shape,
                                              Initializer initializer, float momentum);
  // InvalidArgument "<where>: <problem>", for a shape the layer cannot take;
  // the problem should name the shapes and the fix.
  absl::Status Error(absl::string_view problem) const;

  const std::string& layer_name() const { return layer_name_; }
  const std::string& where() const { return where_; }
  // Variables declared so far by this builder, in order.
  const std::vector<VariableSpec>& variables() const { return variables_; }

 private:
  absl::StatusOr<VariableId> Declare(VariableSpec spec);

  VariableCreator& creator_;
  std::string layer_name_;
  std::string where_;
  std::vector<VariableSpec> variables_;
};

// What Forward and Backward see: the replica (values, gradients, kernels),
// the layer's own workspace buffers, and the step's random key. Made by the
// model for one layer and one call; borrows the replica context.
class LayerContext {
 public:
  // `grad_scale` is the step's (Model::ComputeGradients); 0 in evaluation.
  LayerContext(ReplicaContext& replica, int first_slot, int num_slots, int layer_index,
               float grad_scale = 0.0f)
      : replica_(replica),
        first_slot_(first_slot),
        num_slots_(num_slots),
        layer_index_(layer_index),
        grad_scale_(grad_scale) {}

  Kernels& kernels() { return replica_.kernels(); }
  const Tensor& Value(VariableId id) { return replica_.Value(id); }
  Tensor& Gradient(VariableId id) { return replica_.Gradient(id); }
  void GradientReady(VariableId id) { replica_.GradientReady(id); }
  ReplicaContext& replica() { return replica_; }
  // What each example's loss is scaled by in this step's gradients (1 / the
  // global batch); a replica's share of the global batch is grad_scale * rows.
  float grad_scale() const { return grad_scale_; }
  absl::Status SumOverReplicas(Tensor& values) { return replica_.SumOverReplicas(values); }

  // The layer's workspace buffer `index` (< Layer::workspace_buffers()) as a
  // tensor of exactly `shape` on the replica's device; contents are what the
  // buffer last held.
  absl::StatusOr<Tensor> Buffer(int index, DType dtype, Shape shape);

  // A key for this layer's random draws in this step on this replica:
  // a pure function of (job seed, global step, replica, layer index)
  // (ReplicaContext::step_randomness), so a run is reproducible and the
  // backward pass can recompute a forward mask.
  uint64_t RandomKey() const;

 private:
  ReplicaContext& replica_;
  int first_slot_;
  int num_slots_;
  int layer_index_;
  float grad_scale_;
};

class Layer {
 public:
  virtual ~Layer() = default;

  // Checks `input`, declares variables on `builder`, returns the output shape.
  // A shape the layer cannot take is builder.Error(...), naming the shapes and
  // the fix.
  virtual absl::StatusOr<ExampleShape> Build(const ExampleShape& input, LayerBuilder& builder) = 0;

  // How many workspace buffers Forward and Backward use.
  virtual int workspace_buffers() const { return 0; }

  // `input` is a batch [n, input dims...] on the replica's device. The output
  // [n, output dims...] may be one of the layer's buffers or a view of the
  // input (flatten, reshape, dropout at evaluation). `training` is false in
  // evaluation (dropout is then the identity).
  virtual absl::StatusOr<Tensor> Forward(LayerContext& ctx, const Tensor& input,
                                         bool training) const = 0;

  // Given the Forward of this step (`input`, `output`) and d_output, fills and
  // announces the gradients of the layer's variables and returns d_input
  // (shaped like `input`), or an empty tensor when !need_d_input (the first
  // layer). d_output may be overwritten, and returned as d_input.
  virtual absl::StatusOr<Tensor> Backward(LayerContext& ctx, const Tensor& input,
                                          const Tensor& output, Tensor& d_output,
                                          bool need_d_input) const = 0;

  // The model asks its last layer to leave out a final softmax or sigmoid so
  // that the loss can take logits (as Keras does when from_logits is false
  // and the output comes from that activation). Returns whether it did; must
  // be called after Build and before any Forward.
  virtual bool FuseFinalActivation(ActivationFn fn) { return false; }
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_MODEL_LAYER_H_

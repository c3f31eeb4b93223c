// Variables as a model declares them. A model never owns variable storage: it
// asks a VariableCreator (the strategy) for each variable and gets back an id;
// during a step it reads values and writes gradients through its ReplicaContext.
// So the strategy alone decides where values live (a mirror per replica, one
// central copy, shards on parameter servers).
#ifndef MESHTRAIN_RUNTIME_MODEL_VARIABLE_H_
#define MESHTRAIN_RUNTIME_MODEL_VARIABLE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/tensor/dtype.h"
#include "runtime/tensor/shape.h"
#include "runtime/tensor/tensor.h"

namespace meshtrain {

struct Initializer {
  enum class Kind {
    kZeros,
    kGlorotUniform,
    kHeNormal,
    kNormal,
    kUniform,
    kOnes,
    kGlorotNormal,
    kHeUniform
  };
  Kind kind = Kind::kZeros;
  float scale = 0.0f;  // kNormal: stddev; kUniform: half-width
  // Parsed from "zeros", "ones", "glorot_uniform", "glorot_normal", "he_normal",
  // "he_uniform", "normal:0.01", "uniform:0.05". The normal ones are plain
  // (not truncated) normal draws.
  static absl::StatusOr<Initializer> Parse(absl::string_view text);
  std::string ToString() const;
};

struct VariableSpec {
  std::string name;  // unique in the model: "dense_0/kernel"
  Shape shape;
  DType dtype = DType::kFloat32;
  Initializer initializer;
  // Rows are read and updated by id (embedding tables): a step touches only the
  // rows its batch uses, and gradients travel as (ids, rows).
  bool sparse = false;
  // Not trained but a moving average of what the model observes (batch
  // normalisation's moving mean and variance). The model writes, as the
  // variable's gradient, share * (value - observation), share being its
  // replica's part of the global batch (grad_scale * rows); strategies combine
  // that as any gradient, and the store applies
  //   value -= (1 - moving_average_momentum) * combined,
  // so value becomes momentum * value + (1 - momentum) * the batch-weighted
  // mean of the replicas' observations. No optimizer slot, learning rate or
  // weight decay touches it; it is checkpointed as any variable.
  bool trainable = true;
  float moving_average_momentum = 0.99f;  // when !trainable, in [0, 1)

  size_t bytes() const { return static_cast<size_t>(shape.num_elements()) * DTypeSize(dtype); }
};

using VariableId = int;

class VariableCreator {
 public:
  virtual ~VariableCreator() = default;
  // Declares a variable; ids are dense, in declaration order, from 0.
  virtual absl::StatusOr<VariableId> CreateVariable(const VariableSpec& spec) = 0;
};

// Writes rows [row_begin, row_begin + out.rows()) of the variable's initial
// value into `out` (host float32). Values depend only on (seed, spec.name, the
// element's index in the whole variable), so every task, every replica and every
// partition of a sharded variable computes the same numbers independently.
void InitializeVariable(const VariableSpec& spec, uint64_t seed, int64_t row_begin, Tensor& out);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_MODEL_VARIABLE_H_

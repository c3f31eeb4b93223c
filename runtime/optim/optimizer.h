// Optimizers: SGD (with momentum, optionally Nesterov) and Adam. An optimizer is
// stateless apart from its hyper-parameters: its state lives in slot variables
// shaped like each variable ("momentum"; "m" and "v"), which the strategy stores
// beside the variable (on the same replica, the same device, the same ps shard)
// and checkpoints with it. Thread-safe: Apply* may run for different variables
// at once.
#ifndef MESHTRAIN_RUNTIME_OPTIM_OPTIMIZER_H_
#define MESHTRAIN_RUNTIME_OPTIM_OPTIMIZER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "runtime/tensor/kernels.h"

namespace meshtrain {

struct OptimizerConfig {
  std::string type = "sgd";  // sgd | adam
  float learning_rate = 0.01f;
  float momentum = 0.0f;  // sgd
  bool nesterov = false;  // sgd
  float beta1 = 0.9f;     // adam
  float beta2 = 0.999f;   // adam
  float epsilon = 1e-7f;  // adam
};

class Optimizer {
 public:
  // kInvalidArgument names the bad field ("optimizer.momentum: -1 ...").
  static absl::StatusOr<std::unique_ptr<Optimizer>> Create(const OptimizerConfig& config);
  virtual ~Optimizer() = default;

  virtual const OptimizerConfig& config() const = 0;
  // Slot names, in the order Apply* expects the slot tensors.
  virtual const std::vector<std::string>& slot_names() const = 0;

  // One update of `var` by `grad`. `step` is this variable's update count,
  // 1-based (Adam's bias correction). `lr_scale` multiplies the learning rate
  // (parameter servers use it to damp stale gradients).
  virtual void ApplyDense(Kernels& kernels, const Tensor& grad, int64_t step, float lr_scale,
                          Tensor& var, absl::Span<Tensor> slots) const = 0;

  // The same update for rows `ids` (int64, distinct) of var and its slots, with
  // `grad_rows` [n, cols]. Rows not listed are untouched (their momentum too, as
  // TensorFlow's sparse apply does).
  absl::Status ApplySparse(Kernels& kernels, const Tensor& ids, const Tensor& grad_rows,
                           int64_t step, float lr_scale, Tensor& var,
                           absl::Span<Tensor> slots) const;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_OPTIM_OPTIMIZER_H_

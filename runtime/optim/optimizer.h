// Optimizers: SGD (with momentum, optionally Nesterov), Adam and AdamW, with
// decoupled weight decay and a learning-rate schedule of the update count. An
// optimizer is stateless apart from its hyper-parameters: its state lives in slot variables
// shaped like each variable ("momentum"; "m" and "v"), which the strategy stores
// beside the variable (on the same replica, the same device, the same ps shard)
// and checkpoints with it. Thread-safe: Apply* may run for different variables
// at once.
#ifndef MESHTRAIN_RUNTIME_OPTIM_OPTIMIZER_H_
#define MESHTRAIN_RUNTIME_OPTIM_OPTIMIZER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "runtime/optim/learning_rate_schedule.h"
#include "runtime/tensor/kernels.h"

namespace meshtrain {

struct OptimizerConfig {
  std::string type = "sgd";     // sgd | adam | adamw
  float learning_rate = 0.01f;  // the schedule's initial rate
  float momentum = 0.0f;        // sgd
  bool nesterov = false;        // sgd
  float beta1 = 0.9f;           // adam, adamw
  float beta2 = 0.999f;         // adam, adamw
  float epsilon = 1e-7f;        // adam, adamw
  LearningRateScheduleConfig schedule;
  // Decoupled weight decay (Keras 3's `weight_decay`, Loshchilov & Hutter): before
  // each update var -= lr * weight_decay * var, lr being the scheduled rate.
  // Unset: 0.004 for adamw (Keras' default), 0 otherwise.
  std::optional<float> weight_decay;
  // Variables whose name contains one of these are not decayed ("bias").
  std::vector<std::string> exclude_from_weight_decay;
  // The linear scaling rule (Goyal et al. 2017): > 0 multiplies learning_rate by
  // global_batch_size / reference_batch; see ScaleLearningRateForBatch.
  int64_t reference_batch = 0;
};

// `config` with the linear scaling rule applied for `global_batch_size`
// (learning_rate scaled, reference_batch 0); unchanged when reference_batch is 0.
// kInvalidArgument for a negative reference_batch.
absl::StatusOr<OptimizerConfig> ScaleLearningRateForBatch(OptimizerConfig config,
                                                          int64_t global_batch_size);

class Optimizer {
 public:
  // kInvalidArgument names the bad field ("optimizer.momentum: -1 ...").
  static absl::StatusOr<std::unique_ptr<Optimizer>> Create(const OptimizerConfig& config);
  virtual ~Optimizer() = default;

  const OptimizerConfig& config() const { return config_; }
  const LearningRateSchedule& schedule() const { return schedule_; }
  float weight_decay() const { return weight_decay_; }
  // Slot names, in the order Apply* expects the slot tensors.
  virtual const std::vector<std::string>& slot_names() const = 0;

  // The scheduled rate of update number `step` (1-based): schedule(step - 1).
  float LearningRate(int64_t step) const;
  // Whether the variable called `name` is decayed (weight_decay > 0 and no
  // exclude_from_weight_decay entry in its name).
  bool DecaysWeights(absl::string_view name) const;

  // One update of `var`, the variable called `name`, by `grad`. `step` is this
  // variable's update count, 1-based (the schedule and Adam's bias correction).
  // `lr_scale` multiplies the scheduled rate (parameter servers use it to damp
  // stale gradients). Weight decay comes first, as in Keras.
  void ApplyDense(Kernels& kernels, absl::string_view name, const Tensor& grad, int64_t step,
                  float lr_scale, Tensor& var, absl::Span<Tensor> slots) const;

  // The same update for rows `ids` (int64, distinct) of var and its slots, with
  // `grad_rows` [n, cols]. Rows not listed are untouched (their momentum and
  // their weight decay too, as TensorFlow's sparse apply and TF-Addons'
  // decoupled weight decay do).
  absl::Status ApplySparse(Kernels& kernels, absl::string_view name, const Tensor& ids,
                           const Tensor& grad_rows, int64_t step, float lr_scale, Tensor& var,
                           absl::Span<Tensor> slots) const;

 protected:
  Optimizer(const OptimizerConfig& config, LearningRateSchedule schedule, float weight_decay)
      : config_(config), schedule_(std::move(schedule)), weight_decay_(weight_decay) {}

 private:
  // The gradient step proper at rate `learning_rate`.
  virtual void Update(Kernels& kernels, const Tensor& grad, int64_t step, float learning_rate,
                      Tensor& var, absl::Span<Tensor> slots) const = 0;

  OptimizerConfig config_;
  LearningRateSchedule schedule_;
  float weight_decay_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_OPTIM_OPTIMIZER_H_

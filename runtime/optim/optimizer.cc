#include "runtime/optim/optimizer.h"

#include <cmath>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/base/check.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

// Keras' AdamW default.
constexpr float kAdamWDefaultWeightDecay = 0.004f;

class Sgd final : public Optimizer {
 public:
  Sgd(const OptimizerConfig& config, LearningRateSchedule schedule, float weight_decay)
      : Optimizer(config, std::move(schedule), weight_decay) {
    if (config.momentum != 0.0f) slot_names_ = {"momentum"};
  }
  const std::vector<std::string>& slot_names() const override { return slot_names_; }

 private:
  void Update(Kernels& kernels, const Tensor& grad, int64_t step, float learning_rate, Tensor& var,
              absl::Span<Tensor> slots) const override {
    MESHTRAIN_CHECK(slots.size() == slot_names_.size()) << "sgd slots";
    Tensor none;
    kernels.SgdUpdate(grad, learning_rate, config().momentum, config().nesterov, var,
                      slots.empty() ? none : slots[0]);
  }

  std::vector<std::string> slot_names_;
};

// Adam and AdamW: AdamW is Adam whose weight decay defaults to Keras' 0.004.
class Adam final : public Optimizer {
 public:
  Adam(const OptimizerConfig& config, LearningRateSchedule schedule, float weight_decay)
      : Optimizer(config, std::move(schedule), weight_decay) {}
  const std::vector<std::string>& slot_names() const override { return slot_names_; }

 private:
  void Update(Kernels& kernels, const Tensor& grad, int64_t step, float learning_rate, Tensor& var,
              absl::Span<Tensor> slots) const override {
    MESHTRAIN_CHECK(slots.size() == 2 && step >= 1) << "adam slots, step " << step;
    AdamParams params{learning_rate, config().beta1, config().beta2, config().epsilon};
    kernels.AdamUpdate(grad, params, step, var, slots[0], slots[1]);
  }

  std::vector<std::string> slot_names_ = {"m", "v"};
};

absl::Status CheckRange(absl::string_view field, float value, float low, float high,
                        absl::string_view fix) {
  if (!(value >= low && value <= high) || !std::isfinite(value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer.", field, ": ", value, " is out of range; ", fix));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OptimizerConfig> ScaleLearningRateForBatch(OptimizerConfig config,
                                                          int64_t global_batch_size) {
  if (config.reference_batch < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "optimizer.scale_learning_rate_with_batch.reference_batch: ", config.reference_batch,
        " is negative; use the batch size the learning rate "
        "was tuned for, such as 256"));
  }
  if (config.reference_batch == 0) return config;
  config.learning_rate = static_cast<float>(static_cast<double>(config.learning_rate) *
                                            static_cast<double>(global_batch_size) /
                                            static_cast<double>(config.reference_batch));
  config.reference_batch = 0;
  return config;
}

absl::StatusOr<std::unique_ptr<Optimizer>> Optimizer::Create(const OptimizerConfig& config) {
  MESHTRAIN_RETURN_IF_ERROR(CheckRange("learning_rate", config.learning_rate, 0.0f, 1e6f,
                                       "use a positive learning rate such as 0.05"));
  if (config.learning_rate == 0.0f) {
    return absl::InvalidArgumentError("optimizer.learning_rate: 0 would never train; use > 0");
  }
  if (config.reference_batch != 0) {
    return absl::InvalidArgumentError(
        "optimizer.scale_learning_rate_with_batch: not applied before the optimizer was made "
        "(a bug: call ScaleLearningRateForBatch with the global batch size)");
  }
  MESHTRAIN_ASSIGN_OR_RETURN(LearningRateSchedule schedule,
                             LearningRateSchedule::Create(config.learning_rate, config.schedule));
  const bool adam = config.type == "adam" || config.type == "adamw";
  if (config.type != "sgd" && !adam) {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer.type '", config.type, "' is unknown: use sgd, adam or adamw"));
  }
  const float weight_decay =
      config.weight_decay.value_or(config.type == "adamw" ? kAdamWDefaultWeightDecay : 0.0f);
  MESHTRAIN_RETURN_IF_ERROR(CheckRange("weight_decay", weight_decay, 0.0f, 1.0f,
                                       "use 0 <= weight_decay <= 1, such as 0.004"));
  if (weight_decay * config.learning_rate >= 1.0f) {
    return absl::InvalidArgumentError(absl::StrCat(
        "optimizer.weight_decay: ", weight_decay, " times learning_rate ", config.learning_rate,
        " is >= 1 and would flip the weights' sign; lower one of them"));
  }
  if (config.type == "sgd") {
    MESHTRAIN_RETURN_IF_ERROR(
        CheckRange("momentum", config.momentum, 0.0f, 0.9999f, "use 0 <= momentum < 1"));
    if (config.nesterov && config.momentum == 0.0f) {
      return absl::InvalidArgumentError("optimizer.nesterov needs momentum > 0");
    }
    return std::unique_ptr<Optimizer>(new Sgd(config, std::move(schedule), weight_decay));
  }
  MESHTRAIN_RETURN_IF_ERROR(
      CheckRange("beta1", config.beta1, 0.0f, 0.9999999f, "use 0 <= beta1 < 1"));
  MESHTRAIN_RETURN_IF_ERROR(
      CheckRange("beta2", config.beta2, 0.0f, 0.9999999f, "use 0 <= beta2 < 1"));
  MESHTRAIN_RETURN_IF_ERROR(
      CheckRange("epsilon", config.epsilon, 1e-30f, 1.0f, "use a small epsilon such as 1e-7"));
  return std::unique_ptr<Optimizer>(new Adam(config, std::move(schedule), weight_decay));
}

float Optimizer::LearningRate(int64_t step) const {
  return static_cast<float>(schedule_.Value(step - 1));
}

bool Optimizer::DecaysWeights(absl::string_view name) const {
  if (weight_decay_ == 0.0f) return false;
  for (const std::string& excluded : config_.exclude_from_weight_decay) {
    if (absl::StrContains(name, excluded)) return false;
  }
  return true;
}

void Optimizer::ApplyDense(Kernels& kernels, absl::string_view name, const Tensor& grad,
                           int64_t step, float lr_scale, Tensor& var,
                           absl::Span<Tensor> slots) const {
  const float learning_rate = LearningRate(step) * lr_scale;
  // var -= lr * wd * var, as one scaling: the same kernel on the CPU and GPU.
  if (DecaysWeights(name)) kernels.Scale(1.0f - learning_rate * weight_decay_, var);
  Update(kernels, grad, step, learning_rate, var, slots);
}

absl::Status Optimizer::ApplySparse(Kernels& kernels, absl::string_view name, const Tensor& ids,
                                    const Tensor& grad_rows, int64_t step, float lr_scale,
                                    Tensor& var, absl::Span<Tensor> slots) const {
  const int64_t n = ids.num_elements();
  const Shape rows_shape = var.shape().WithRows(n);
  if (grad_rows.shape() != rows_shape) {
    return absl::InvalidArgumentError(absl::StrCat("sparse gradient ", grad_rows.DebugString(),
                                                   " for ", n, " rows of ", var.DebugString()));
  }
  // Gather the touched rows of the variable and its slots, update them densely,
  // scatter them back: the dense kernel is the one definition of the update.
  MESHTRAIN_ASSIGN_OR_RETURN(Tensor var_rows, kernels.Allocate(DType::kFloat32, rows_shape));
  kernels.GatherRows(var, ids, var_rows);
  std::vector<Tensor> slot_rows;
  for (Tensor& slot : slots) {
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor rows, kernels.Allocate(DType::kFloat32, rows_shape));
    kernels.GatherRows(slot, ids, rows);
    slot_rows.push_back(std::move(rows));
  }
  ApplyDense(kernels, name, grad_rows, step, lr_scale, var_rows, absl::MakeSpan(slot_rows));
  kernels.ScatterRows(var_rows, ids, var);
  for (size_t i = 0; i < slots.size(); ++i) kernels.ScatterRows(slot_rows[i], ids, slots[i]);
  return absl::OkStatus();
}

}  // namespace meshtrain

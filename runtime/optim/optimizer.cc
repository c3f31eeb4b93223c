#include "runtime/optim/optimizer.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "runtime/base/check.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

class Sgd final : public Optimizer {
 public:
  explicit Sgd(const OptimizerConfig& config) : config_(config) {
    if (config_.momentum != 0.0f) slot_names_ = {"momentum"};
  }
  const OptimizerConfig& config() const override { return config_; }
  const std::vector<std::string>& slot_names() const override { return slot_names_; }

  void ApplyDense(Kernels& kernels, const Tensor& grad, int64_t step, float lr_scale, Tensor& var,
                  absl::Span<Tensor> slots) const override {
    MESHTRAIN_CHECK(slots.size() == slot_names_.size()) << "sgd slots";
    Tensor none;
    kernels.SgdUpdate(grad, config_.learning_rate * lr_scale, config_.momentum, config_.nesterov,
                      var, slots.empty() ? none : slots[0]);
  }

 private:
  OptimizerConfig config_;
  std::vector<std::string> slot_names_;
};

class Adam final : public Optimizer {
 public:
  explicit Adam(const OptimizerConfig& config) : config_(config) {}
  const OptimizerConfig& config() const override { return config_; }
  const std::vector<std::string>& slot_names() const override { return slot_names_; }

  void ApplyDense(Kernels& kernels, const Tensor& grad, int64_t step, float lr_scale, Tensor& var,
                  absl::Span<Tensor> slots) const override {
    MESHTRAIN_CHECK(slots.size() == 2 && step >= 1) << "adam slots, step " << step;
    AdamParams params{config_.learning_rate * lr_scale, config_.beta1, config_.beta2,
                      config_.epsilon};
    kernels.AdamUpdate(grad, params, step, var, slots[0], slots[1]);
  }

 private:
  OptimizerConfig config_;
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

absl::StatusOr<std::unique_ptr<Optimizer>> Optimizer::Create(const OptimizerConfig& config) {
  MESHTRAIN_RETURN_IF_ERROR(CheckRange("learning_rate", config.learning_rate, 0.0f, 1e6f,
                                       "use a positive learning rate such as 0.05"));
  if (config.learning_rate == 0.0f) {
    return absl::InvalidArgumentError("optimizer.learning_rate: 0 would never train; use > 0");
  }
  if (config.type == "sgd") {
    MESHTRAIN_RETURN_IF_ERROR(
        CheckRange("momentum", config.momentum, 0.0f, 0.9999f, "use 0 <= momentum < 1"));
    if (config.nesterov && config.momentum == 0.0f) {
      return absl::InvalidArgumentError("optimizer.nesterov needs momentum > 0");
    }
    return std::unique_ptr<Optimizer>(new Sgd(config));
  }
  if (config.type == "adam") {
    MESHTRAIN_RETURN_IF_ERROR(
        CheckRange("beta1", config.beta1, 0.0f, 0.9999999f, "use 0 <= beta1 < 1"));
    MESHTRAIN_RETURN_IF_ERROR(
        CheckRange("beta2", config.beta2, 0.0f, 0.9999999f, "use 0 <= beta2 < 1"));
    MESHTRAIN_RETURN_IF_ERROR(
        CheckRange("epsilon", config.epsilon, 1e-30f, 1.0f, "use a small epsilon such as 1e-7"));
    return std::unique_ptr<Optimizer>(new Adam(config));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("optimizer.type '", config.type, "' is unknown: use sgd or adam"));
}

absl::Status Optimizer::ApplySparse(Kernels& kernels, const Tensor& ids, const Tensor& grad_rows,
                                    int64_t step, float lr_scale, Tensor& var,
                                    absl::Span<Tensor> slots) const {
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
  ApplyDense(kernels, grad_rows, step, lr_scale, var_rows, absl::MakeSpan(slot_rows));
  kernels.ScatterRows(var_rows, ids, var);
  for (size_t i = 0; i < slots.size(); ++i) kernels.ScatterRows(slot_rows[i], ids, slots[i]);
  return absl::OkStatus();
}

}  // namespace meshtrain

#include "runtime/optim/learning_rate_schedule.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

constexpr double kPi = 3.14159265358979323846;

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("optimizer.learning_rate.", field, ": ", problem));
}

}  // namespace

absl::Status ReadLearningRateScheduleFields(JsonReader& r, LearningRateScheduleConfig* out) {
  MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("schedule", &out->schedule));
  MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("decay_steps", &out->decay_steps));
  MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("decay_rate", &out->decay_rate));
  MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("staircase", &out->staircase));
  MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("alpha", &out->alpha));
  MESHTRAIN_RETURN_IF_ERROR(r.ReadOptional("warmup_steps", &out->warmup_steps));
  return r.ReadOptional("warmup_initial", &out->warmup_initial);
}

absl::StatusOr<LearningRateSchedule> LearningRateSchedule::Create(
    double initial, const LearningRateScheduleConfig& config) {
  if (!(initial > 0.0) || !std::isfinite(initial)) {
    return Invalid("initial", absl::StrCat(initial,
                                           " would never train; use a positive rate "
                                           "such as 0.05"));
  }
  const std::string& name = config.schedule;
  if (name != "constant" && name != "step" && name != "cosine") {
    return Invalid("schedule",
                   absl::StrCat("'", name, "' is unknown: use constant, step or cosine"));
  }
  if (name != "constant" && config.decay_steps < 1) {
    return Invalid("decay_steps", absl::StrCat(config.decay_steps, " is out of range; the ", name,
                                               " schedule needs decay_steps >= 1"));
  }
  if (name == "step" && !(config.decay_rate > 0.0 && config.decay_rate <= 1.0)) {
    return Invalid("decay_rate", absl::StrCat(config.decay_rate,
                                              " is out of range; use 0 < decay_rate <= 1, such as "
                                              "0.1 for a tenfold drop every decay_steps"));
  }
  if (name == "cosine" && !(config.alpha >= 0.0 && config.alpha <= 1.0)) {
    return Invalid("alpha", absl::StrCat(config.alpha,
                                         " is out of range; use 0 <= alpha <= 1 (the final rate "
                                         "as a fraction of initial)"));
  }
  if (config.warmup_steps < 0) {
    return Invalid("warmup_steps",
                   absl::StrCat(config.warmup_steps, " is negative; use 0 for no warm-up"));
  }
  if (!(config.warmup_initial >= 0.0 && config.warmup_initial <= initial)) {
    return Invalid("warmup_initial", absl::StrCat(config.warmup_initial,
                                                  " is out of range; use 0 <= warmup_initial "
                                                  "<= initial (",
                                                  initial, ")"));
  }
  return LearningRateSchedule(initial, config);
}

double LearningRateSchedule::Value(int64_t step) const {
  step = std::max<int64_t>(step, 0);
  const int64_t warmup = config_.warmup_steps;
  if (step < warmup) {
    const double fraction = static_cast<double>(step) / static_cast<double>(warmup);
    return config_.warmup_initial + (initial_ - config_.warmup_initial) * fraction;
  }
  const int64_t s = step - warmup;
  if (config_.schedule == "step") {
    double exponent = static_cast<double>(s) / static_cast<double>(config_.decay_steps);
    if (config_.staircase) exponent = std::floor(exponent);
    return initial_ * std::pow(config_.decay_rate, exponent);
  }
  if (config_.schedule == "cosine") {
    const double fraction = static_cast<double>(std::min(s, config_.decay_steps)) /
                            static_cast<double>(config_.decay_steps);
    const double cosine = 0.5 * (1.0 + std::cos(kPi * fraction));
    return initial_ * ((1.0 - config_.alpha) * cosine + config_.alpha);
  }
  return initial_;
}

}  // namespace meshtrain

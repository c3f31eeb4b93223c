// LearningRateSchedule: the learning rate as a pure function of the step, the
// number of updates already applied (0 for the first update; Keras' optimizer
// `iterations`). A schedule is an optional linear warm-up followed by a decay:
//   constant  lr = initial
//   step      lr = initial * decay_rate^(s / decay_steps), s / decay_steps
//             rounded down when `staircase` (Keras' ExponentialDecay; staircase
//             is the classic step decay and the default here)
//   cosine    lr = initial * ((1 - alpha) * 0.5 * (1 + cos(pi * min(s, decay_steps)
//             / decay_steps)) + alpha) (Keras' CosineDecay): alpha * initial from
//             decay_steps on
// With warmup_steps = W > 0 the rate rises linearly from warmup_initial at step 0
// to initial at step W, and the decay sees s = step - W (Keras' CosineDecay with
// initial_learning_rate = warmup_initial, warmup_target = initial). Immutable,
// so thread-safe.
#ifndef MESHTRAIN_RUNTIME_OPTIM_LEARNING_RATE_SCHEDULE_H_
#define MESHTRAIN_RUNTIME_OPTIM_LEARNING_RATE_SCHEDULE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/base/json_reader.h"

namespace meshtrain {

struct LearningRateScheduleConfig {
  std::string schedule = "constant";  // constant | step | cosine
  int64_t decay_steps = 0;            // step, cosine
  double decay_rate = 0.1;            // step
  bool staircase = true;              // step
  double alpha = 0.0;                 // cosine: the final rate as a fraction of initial
  int64_t warmup_steps = 0;
  double warmup_initial = 0.0;
};

// Reads the optional fields above from `r` (a job config's learning_rate
// object, a ps plan's schedule); values are checked by LearningRateSchedule::Create.
absl::Status ReadLearningRateScheduleFields(JsonReader& r, LearningRateScheduleConfig* out);

class LearningRateSchedule {
 public:
  // kInvalidArgument names the field under optimizer.learning_rate and the fix.
  static absl::StatusOr<LearningRateSchedule> Create(double initial,
                                                     const LearningRateScheduleConfig& config);

  // The rate of the update that follows `step` applied ones (step >= 0).
  double Value(int64_t step) const;

  double initial() const { return initial_; }
  const LearningRateScheduleConfig& config() const { return config_; }

 private:
  LearningRateSchedule(double initial, const LearningRateScheduleConfig& config)
      : initial_(initial), config_(config) {}

  double initial_;
  LearningRateScheduleConfig config_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_OPTIM_LEARNING_RATE_SCHEDULE_H_

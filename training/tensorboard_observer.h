// TensorBoardObserver: the chief's training scalars as TensorBoard events
// (event_writer.h), so `tensorboard --logdir MODEL_DIR` shows the run. Tags:
//   per step:  train/loss (mean loss of the step's batch on this process),
//              optimizer/learning_rate (the schedule's rate of that step's
//              update; a parameter server's staleness damping is not in it)
//   per epoch: train/epoch_loss, train/accuracy, test/loss, test/accuracy
//              (evaluating tasks), perf/samples_per_sec
// all at the global step the epoch ended on. Events are flushed at each epoch's
// end. A failed write (a full disk) is a warning, never a reason to stop
// training: the first is logged, later ones at most once per kWarnEvery with
// their count; the writer drops those events and writes on when it can.
// Called on the training thread; `writer` must outlive the observer.
#ifndef MESHTRAIN_TRAINING_TENSORBOARD_OBSERVER_H_
#define MESHTRAIN_TRAINING_TENSORBOARD_OBSERVER_H_

#include <cstdint>
#include <utility>

#include "absl/time/time.h"
#include "runtime/optim/learning_rate_schedule.h"
#include "summaries/event_writer.h"
#include "training/training_loop.h"

namespace meshtrain {

class TensorBoardObserver final : public TrainingObserver {
 public:
  // `evaluates`: whether epochs carry test figures (the chief's do).
  TensorBoardObserver(EventWriter* writer, LearningRateSchedule schedule, bool evaluates)
      : writer_(writer), schedule_(std::move(schedule)), evaluates_(evaluates) {}

  static constexpr absl::Duration kWarnEvery = absl::Minutes(1);

  absl::Status OnStepEnd(const StepRecord& step) override;
  absl::Status OnEpochEnd(const EpochRecord& epoch) override;

  // Writes that failed so far.
  int64_t failures() const { return failures_; }

 private:
  absl::Status WriteEpoch(const EpochRecord& e);
  // Logs `status` as a warning unless one was logged less than kWarnEvery ago.
  void Warn(const absl::Status& status);

  EventWriter* const writer_;
  const LearningRateSchedule schedule_;
  const bool evaluates_;
  int64_t last_step_ = 0;
  int64_t failures_ = 0;
  int64_t unlogged_failures_ = 0;
  absl::Time last_warning_ = absl::InfinitePast();
};

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_TENSORBOARD_OBSERVER_H_

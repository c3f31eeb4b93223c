#include "training/tensorboard_observer.h"

#include <algorithm>

#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {

absl::Status TensorBoardObserver::OnStepEnd(const StepRecord& step) {
  last_step_ = step.global_step;
  const StepResult& r = *step.result;
  const double loss = r.loss.loss_sum / static_cast<double>(std::max<int64_t>(1, r.examples));
  absl::Status status = writer_->WriteScalar("train/loss", step.global_step, loss, step.end);
  // global_step counts this step's update, the schedule the ones before it.
  if (status.ok()) {
    status = writer_->WriteScalar("optimizer/learning_rate", step.global_step,
                                  schedule_.Value(step.global_step - 1), step.end);
  }
  if (!status.ok()) Warn(status);
  return absl::OkStatus();
}

absl::Status TensorBoardObserver::OnEpochEnd(const EpochRecord& e) {
  const absl::Status status = WriteEpoch(e);
  if (!status.ok()) Warn(status);
  return absl::OkStatus();
}

void TensorBoardObserver::Warn(const absl::Status& status) {
  ++failures_;
  ++unlogged_failures_;
  const absl::Time now = absl::Now();
  if (now - last_warning_ < kWarnEvery) return;
  MESHTRAIN_LOG(WARNING) << "tensorboard: " << status << " (" << unlogged_failures_
                         << " failed write(s) since the last warning, " << failures_
                         << " in all); training goes on, events are dropped until the disk has "
                            "room; this warning repeats at most once a minute";
  unlogged_failures_ = 0;
  last_warning_ = now;
}

absl::Status TensorBoardObserver::WriteEpoch(const EpochRecord& e) {
  const absl::Time now = absl::Now();
  MESHTRAIN_RETURN_IF_ERROR(
      writer_->WriteScalar("train/epoch_loss", last_step_, e.train_loss, now));
  MESHTRAIN_RETURN_IF_ERROR(
      writer_->WriteScalar("train/accuracy", last_step_, e.train_accuracy, now));
  if (evaluates_) {
    MESHTRAIN_RETURN_IF_ERROR(writer_->WriteScalar("test/loss", last_step_, e.test_loss, now));
    MESHTRAIN_RETURN_IF_ERROR(
        writer_->WriteScalar("test/accuracy", last_step_, e.test_accuracy, now));
  }
  MESHTRAIN_RETURN_IF_ERROR(
      writer_->WriteScalar("perf/samples_per_sec", last_step_, e.samples_per_sec, now));
  return writer_->Flush();
}

}  // namespace meshtrain

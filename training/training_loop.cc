#include "training/training_loop.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/data/batch_schedule.h"

namespace meshtrain {
namespace {

constexpr int64_t kEvalChunk = 2500;

}  // namespace

absl::StatusOr<LossStats> EvaluateDataset(Strategy& strategy, const Model& model,
                                          const Dataset& data) {
  LossStats total;
  MESHTRAIN_RETURN_IF_ERROR(strategy.Read([&](ReplicaContext& ctx) -> absl::Status {
    for (int64_t begin = 0; begin < data.size(); begin += kEvalChunk) {
      const int64_t end = std::min(data.size(), begin + kEvalChunk);
      Batch chunk{data.inputs.Slice(begin, end), data.labels.Slice(begin, end)};
      MESHTRAIN_ASSIGN_OR_RETURN(LossStats stats, model.Evaluate(ctx, chunk, nullptr));
      total.loss_sum += stats.loss_sum;
      total.correct += stats.correct;
    }
    return absl::OkStatus();
  }));
  return total;
}

absl::StatusOr<TrainingReport> RunTraining(Strategy& strategy, const Model& model,
                                           const Dataset& train, const Dataset* test,
                                           const TrainingOptions& options) {
  MESHTRAIN_RETURN_IF_ERROR(
      ValidateShardable(options.global_batch_size, strategy.num_replicas_in_sync()));
  const InputShard shard = strategy.input_shard();
  BatchScheduleOptions schedule_options;
  schedule_options.num_examples = train.size();
  schedule_options.global_batch_size = options.global_batch_size;
  schedule_options.seed = options.seed;
  schedule_options.shuffle = options.shuffle;
  schedule_options.drop_remainder = options.drop_remainder;
  schedule_options.num_shards = shard.num_shards;
  schedule_options.shard_index = shard.shard_index;
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<InputPipeline> pipeline,
                             InputPipeline::Create(&train, schedule_options, options.start,
                                                   options.prefetch_depth));
  const BatchSchedule& schedule = pipeline->schedule();
  const int64_t steps_per_epoch = schedule.steps_per_epoch();
  if (steps_per_epoch == 0) {
    return absl::InvalidArgumentError(
        "the training set has fewer examples than one global batch with drop_remainder");
  }
  int64_t last_step = options.epochs * steps_per_epoch;
  if (options.max_steps > 0) last_step = std::min(last_step, options.max_steps);

  StepFn step_fn = [&model](ReplicaContext& ctx, const Batch& slice, float grad_scale) {
    return model.ComputeGradients(ctx, slice, grad_scale);
  };

  TrainingReport report;
  const absl::Time start = absl::Now();
  absl::Duration train_time;
  int64_t global_step = options.start.epoch * steps_per_epoch + options.start.step;
  pipeline->Start();
  if (options.tracer != nullptr) options.tracer->NameThread("training loop");
  while (global_step < last_step) {
    const int64_t epoch = global_step / steps_per_epoch;
    const int64_t epoch_end = std::min(last_step, (epoch + 1) * steps_per_epoch);
    LossStats epoch_loss;
    int64_t epoch_examples = 0, epoch_samples = 0, epoch_steps = 0;
    absl::Duration epoch_train;
    absl::Time next_progress = absl::Now() + options.progress_interval;
    while (global_step < epoch_end) {
      const absl::Time step_start = absl::Now();
      TraceSpan step_trace(options.tracer, "step", "step");
      step_trace.SetArg(0, "step", global_step);
      absl::StatusOr<std::pair<Batch, InputPosition>> next;
      {
        TraceSpan trace(options.tracer, "input", "input");
        next = pipeline->Next(step_start + options.step_timeout);
      }
      if (!next.ok()) return next.status();
      const Batch& batch = next->first;
      const int64_t step_in_epoch = next->second.step;
      const int64_t global_batch = schedule.GlobalBatchSize(step_in_epoch);
      absl::StatusOr<StepResult> result = strategy.Run(step_fn, batch, global_batch);
      if (!result.ok()) {
        return Annotate(result.status(), absl::StrCat("step ", global_step));
      }
      epoch_train += absl::Now() - step_start;
      epoch_loss.loss_sum += result->loss.loss_sum;
      epoch_loss.correct += result->loss.correct;
      epoch_examples += result->examples;
      epoch_samples += global_batch;
      report.timing.compute += result->timing.compute;
      report.timing.communicate += result->timing.communicate;
      report.timing.wait += result->timing.wait;
      report.timing.bytes_sent += result->timing.bytes_sent;
      report.timing.bytes_received += result->timing.bytes_received;
      ++global_step;
      ++epoch_steps;
      if (!options.observers.empty()) {
        StepRecord record{global_step, pipeline->schedule().Advance(next->second), global_batch,
                          &*result, step_start, absl::Now()};
        for (TrainingObserver* observer : options.observers) {
          MESHTRAIN_RETURN_IF_ERROR(observer->OnStepEnd(record));
        }
      }
      if (options.on_progress && absl::Now() >= next_progress) {
        options.on_progress(epoch + 1, step_in_epoch + 1, steps_per_epoch,
                            epoch_loss.loss_sum / std::max<int64_t>(1, epoch_examples));
        next_progress = absl::Now() + options.progress_interval;
      }
    }
    train_time += epoch_train;
    EpochRecord record;
    record.epoch = epoch + 1;
    record.steps = epoch_steps;
    record.train_loss = epoch_loss.loss_sum / std::max<int64_t>(1, epoch_examples);
    record.train_accuracy =
        static_cast<double>(epoch_loss.correct) / std::max<int64_t>(1, epoch_examples);
    record.train_seconds = absl::ToDoubleSeconds(epoch_train);
    record.samples_per_sec = epoch_samples / std::max(1e-9, record.train_seconds);
    if (options.evaluate && test != nullptr && test->size() > 0) {
      TraceSpan trace(options.tracer, "evaluate", "evaluate");
      MESHTRAIN_ASSIGN_OR_RETURN(LossStats eval, EvaluateDataset(strategy, model, *test));
      record.test_loss = eval.loss_sum / static_cast<double>(test->size());
      record.test_accuracy = static_cast<double>(eval.correct) / static_cast<double>(test->size());
    }
    record.elapsed_seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (options.target_accuracy > 0 && !report.seconds_to_target &&
        record.test_accuracy >= options.target_accuracy) {
      report.seconds_to_target = record.elapsed_seconds;
    }
    report.samples += epoch_samples;
    report.examples += epoch_examples;
    report.epochs.push_back(record);
    if (options.on_epoch) options.on_epoch(record);
    for (TrainingObserver* observer : options.observers) {
      MESHTRAIN_RETURN_IF_ERROR(observer->OnEpochEnd(record));
    }
  }
  pipeline->Stop();
  MESHTRAIN_RETURN_IF_ERROR(strategy.Finish());
  // Where the model stands at the end, when the last epoch's evaluation does
  // not say: resumed at the last step (a restart after the final
  // checkpoint), nothing trained; with independent workers, the others'
  // last updates arrived after it.
  std::optional<LossStats> final_eval;
  if ((report.epochs.empty() || strategy.independent_workers()) && options.evaluate && test != nullptr &&
      test->size() > 0) {
    MESHTRAIN_ASSIGN_OR_RETURN(final_eval, EvaluateDataset(strategy, model, *test));
  }

  report.final_step = global_step;
  report.train_seconds = absl::ToDoubleSeconds(train_time);
  report.wall_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  report.samples_per_sec = report.samples / std::max(1e-9, report.train_seconds);
  if (!report.epochs.empty()) {
    report.train_loss = report.epochs.back().train_loss;
    report.test_loss = report.epochs.back().test_loss;
    report.test_accuracy = report.epochs.back().test_accuracy;
  }
  if (final_eval.has_value()) {
    report.test_loss = final_eval->loss_sum / static_cast<double>(test->size());
    report.test_accuracy = static_cast<double>(final_eval->correct) / static_cast<double>(test->size());
  }
  return report;
}

}  // namespace meshtrain

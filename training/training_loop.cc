#include "training/training_loop.h"

#include <algorithm>
#include <fstream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/data/batch_schedule.h"
#include "runtime/data/file_sharding.h"

namespace meshtrain {
namespace {

// Rows evaluated at once. A model's forward buffers grow to the largest batch
// they see, so this is also what evaluation adds to a replica's memory: the
// reference CNN's activations take about 0.4 MB a row (2500 rows peaked at
// 950 MB; 256, the reference job's global batch, adds nothing to training's).
constexpr int64_t kEvalChunk = 256;

}  // namespace

absl::StatusOr<LossStats> EvaluateDataset(Strategy& strategy, const Model& model,
                                          const Dataset& data) {
  LossStats total;
  MESHTRAIN_RETURN_IF_ERROR(strategy.Read([&](ReplicaContext& ctx) -> absl::Status {
    for (int64_t begin = 0; begin < data.size(); begin += kEvalChunk) {
      const int64_t end = std::min(data.size(), begin + kEvalChunk);
      const Batch chunk = DatasetRows(data, begin, end);
      MESHTRAIN_ASSIGN_OR_RETURN(LossStats stats, model.Evaluate(ctx, chunk, nullptr));
      total.loss_sum += stats.loss_sum;
      total.correct += stats.correct;
    }
    return absl::OkStatus();
  }));
  return total;
}

absl::Status ValidateTrainingShape(const Strategy& strategy, const Dataset& train,
                                   const TrainingOptions& options) {
  const int replicas = strategy.num_replicas_in_sync();
  MESHTRAIN_RETURN_IF_ERROR(
      ValidateShardable(options.global_batch_size, options.uneven_batches ? 1 : replicas));
  if (options.global_batch_size < replicas) {
    return absl::InvalidArgumentError(
        absl::StrCat("global batch size ", options.global_batch_size, " is smaller than the ",
                     replicas, " replicas in sync; choose a global batch of at least ", replicas));
  }
  if (options.own_files.has_value()) {
    const OwnFilesOptions& own = *options.own_files;
    return OwnFilesSchedule({.num_examples = train.size(),
                             .global_batch_size = options.global_batch_size,
                             .num_input_workers = own.num_input_workers,
                             .worker_index = own.worker_index})
        .status();
  }
  if (options.global_batch_size > train.size()) {
    // Without drop_remainder the pipeline takes it (one short batch an
    // epoch), but it is a typo, not a plan.
    return absl::InvalidArgumentError(absl::StrCat(
        "global batch size ", options.global_batch_size, " is larger than the training set (",
        train.size(), " examples); choose a global batch of at most ", train.size()));
  }
  return absl::OkStatus();
}

namespace {

// One run of the loop: the input pipeline and what the epochs add up.
class Loop {
 public:
  Loop(Strategy& strategy, const Model& model, const Dataset* test, const TrainingOptions& options)
      : strategy_(strategy), model_(model), test_(test), options_(options) {
    // A replica's random draws (dropout) depend on the seed, the step and
    // which replica in sync it is: this process's input shard and its local
    // replica. (A replica's step_fn runs on its own thread, reading
    // global_step_, which changes only between steps.)
    step_fn_ = [this](ReplicaContext& ctx, const Batch& slice, float grad_scale) {
      const uint64_t shard = static_cast<uint64_t>(strategy_.input_shard().shard_index);
      ctx.set_step_randomness(StepRandomness{
          options_.seed, global_step_, (shard << 32) | static_cast<uint32_t>(ctx.replica_id())});
      return model_.ComputeGradients(ctx, slice, grad_scale);
    };
  }

  absl::Status Start(const Dataset& train);
  // The schedule of a worker reading its own files, its steps agreed with
  // the other workers where they step together.
  absl::StatusOr<BatchScheduleOptions> OwnFilesScheduleFor(const Dataset& train);
  absl::StatusOr<TrainingReport> Run();

 private:
  // What one epoch adds up to, on this process.
  struct EpochTotals {
    LossStats loss;
    int64_t examples = 0;
    int64_t samples = 0;
    int64_t steps = 0;
    absl::Duration train;
  };
  // Steps since the previous progress report.
  struct ProgressWindow {
    absl::Time next;
    int64_t steps = 0;
    absl::Duration train;
    absl::Duration communicate;
    absl::Duration input;
  };

  absl::Status RunEpoch(int64_t epoch, int64_t epoch_end);
  // --test-record-examples: one line per step, flushed (a killed task keeps its lines).
  void RecordExamples(InputPosition position);
  absl::Status RunStep(int64_t epoch, EpochTotals& totals, ProgressWindow& progress);
  void ReportProgress(int64_t epoch, int64_t step_in_epoch, const EpochTotals& totals,
                      ProgressWindow& progress);
  // The epoch's record, evaluated on the chief.
  absl::StatusOr<EpochRecord> FinishEpoch(int64_t epoch, const EpochTotals& totals);
  absl::Status Finish();

  Strategy& strategy_;
  const Model& model_;
  const Dataset* const test_;
  const TrainingOptions& options_;
  StepFn step_fn_;
  std::unique_ptr<InputPipeline> pipeline_;
  int64_t steps_per_epoch_ = 0;
  // A step's global batch is the schedule's batch times this: the input
  // workers' batches under the file policy, 1 under the data policy.
  int64_t batches_per_global_batch_ = 1;
  int64_t global_step_ = 0;
  std::ofstream record_;  // --test-record-examples
  absl::Time start_;
  absl::Duration train_time_;
  TrainingReport report_;
};

absl::Status Loop::Start(const Dataset& train) {
  MESHTRAIN_RETURN_IF_ERROR(ValidateTrainingShape(strategy_, train, options_));
  BatchScheduleOptions schedule;
  if (options_.own_files.has_value()) {
    MESHTRAIN_ASSIGN_OR_RETURN(schedule, OwnFilesScheduleFor(train));
    batches_per_global_batch_ = options_.own_files->num_input_workers;
  } else {
    const InputShard shard = strategy_.input_shard();
    schedule.num_examples = train.size();
    schedule.global_batch_size = options_.global_batch_size;
    schedule.seed = options_.seed;
    schedule.shuffle = options_.shuffle;
    schedule.drop_remainder = options_.drop_remainder;
    schedule.num_shards = shard.num_shards;
    schedule.shard_index = shard.shard_index;
    schedule.resume_from = options_.resume_from;
  }
  MESHTRAIN_ASSIGN_OR_RETURN(pipeline_,
                             InputPipeline::Create(&train, schedule, options_.start,
                                                   {.prefetch_depth = options_.prefetch_depth,
                                                    .num_threads = options_.input_threads,
                                                    .augment = options_.augment}));
  steps_per_epoch_ = pipeline_->schedule().steps_per_epoch();  // >= 1: Create checked it
  if (!options_.record_examples.empty()) {
    record_.open(options_.record_examples, std::ios::app);
    if (!record_) {
      return absl::InvalidArgumentError(absl::StrCat("--test-record-examples: cannot open ",
                                                     options_.record_examples, " for appending"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<BatchScheduleOptions> Loop::OwnFilesScheduleFor(const Dataset& train) {
  const OwnFilesOptions& own = *options_.own_files;
  const InputShard shard = strategy_.input_shard();
  if (shard.num_shards != own.num_input_workers || shard.shard_index != own.worker_index) {
    return absl::InternalError(absl::StrCat(
        "auto_shard file: the train files were chosen for input worker ", own.worker_index, " of ",
        own.num_input_workers, " but the strategy reads input shard ", shard.shard_index, " of ",
        shard.num_shards));
  }
  OwnFilesInput input{.num_examples = train.size(),
                      .global_batch_size = options_.global_batch_size,
                      .seed = options_.seed,
                      .shuffle = options_.shuffle,
                      .num_input_workers = own.num_input_workers,
                      .worker_index = own.worker_index};
  const int64_t full_batches =
      FullBatches(train.size(), options_.global_batch_size, own.num_input_workers);
  if (own.agree_steps_per_epoch) {
    MESHTRAIN_ASSIGN_OR_RETURN(input.steps_per_epoch, own.agree_steps_per_epoch(full_batches));
    if (input.steps_per_epoch < 1 || input.steps_per_epoch > full_batches) {
      return absl::InternalError(absl::StrCat("auto_shard file: the workers agreed on ",
                                              input.steps_per_epoch,
                                              " steps an epoch, but this "
                                              "worker holds ",
                                              full_batches, " full batches"));
    }
  }
  MESHTRAIN_ASSIGN_OR_RETURN(BatchScheduleOptions schedule, OwnFilesSchedule(input));
  const int64_t steps = input.steps_per_epoch > 0 ? input.steps_per_epoch : full_batches;
  const int64_t skipped = train.size() - steps * schedule.global_batch_size;
  MESHTRAIN_LOG(INFO) << "data: auto_shard file: " << steps << " steps an epoch of "
                      << schedule.global_batch_size << " examples from each of "
                      << own.num_input_workers << " input worker(s)"
                      << (own.agree_steps_per_epoch ? " (the fewest full batches of any worker)"
                                                    : " (this worker's full batches)")
                      << "; this worker reads " << steps * schedule.global_batch_size << " of its "
                      << train.size() << " examples each epoch, " << skipped
                      << " are skipped each epoch (drawn anew each epoch when shuffling)";
  return schedule;
}

absl::StatusOr<TrainingReport> Loop::Run() {
  start_ = absl::Now();
  const InputPosition start = pipeline_->next_position();  // normalized
  global_step_ =
      options_.start_step.value_or(options_.start.epoch * steps_per_epoch_ + options_.start.step);
  pipeline_->Start();
  if (options_.tracer != nullptr) options_.tracer->NameThread("training loop");
  const auto more_steps = [this] {
    return options_.max_steps <= 0 || global_step_ < options_.max_steps;
  };
  // Epochs may differ in steps (a resumed one holds only what is left of it):
  // each runs from the input's position to its end, or to max_steps.
  for (InputPosition at = start; at.epoch < options_.epochs && more_steps();
       at = pipeline_->next_position()) {
    int64_t epoch_end = global_step_ + pipeline_->schedule().StepsInEpoch(at.epoch) - at.step;
    if (options_.max_steps > 0) epoch_end = std::min(epoch_end, options_.max_steps);
    MESHTRAIN_RETURN_IF_ERROR(RunEpoch(at.epoch, epoch_end));
  }
  pipeline_->Stop();
  for (TrainingObserver* observer : options_.observers) {
    MESHTRAIN_RETURN_IF_ERROR(observer->OnTrainingEnd(pipeline_->next_position()));
  }
  MESHTRAIN_RETURN_IF_ERROR(Finish());
  return std::move(report_);
}

absl::Status Loop::RunEpoch(int64_t epoch, int64_t epoch_end) {
  EpochTotals totals;
  ProgressWindow progress{absl::Now() + options_.progress_interval};
  while (global_step_ < epoch_end) {
    MESHTRAIN_RETURN_IF_ERROR(RunStep(epoch, totals, progress));
  }
  train_time_ += totals.train;
  MESHTRAIN_ASSIGN_OR_RETURN(EpochRecord record, FinishEpoch(epoch, totals));
  if (options_.target_accuracy > 0 && !report_.seconds_to_target &&
      record.test_accuracy >= options_.target_accuracy) {
    report_.seconds_to_target = record.elapsed_seconds;
  }
  report_.samples += totals.samples;
  report_.examples += totals.examples;
  report_.epochs.push_back(record);
  if (options_.on_epoch) options_.on_epoch(record);
  for (TrainingObserver* observer : options_.observers) {
    MESHTRAIN_RETURN_IF_ERROR(observer->OnEpochEnd(record));
  }
  return absl::OkStatus();
}

absl::Status Loop::RunStep(int64_t epoch, EpochTotals& totals, ProgressWindow& progress) {
  const absl::Time step_start = absl::Now();
  TraceSpan step_trace(options_.tracer, "step", "step");
  step_trace.SetArg(0, "step", global_step_);
  absl::StatusOr<std::pair<Batch, InputPosition>> next;
  {
    TraceSpan trace(options_.tracer, "input", "input");
    next = pipeline_->Next(step_start + options_.step_timeout);
  }
  if (!next.ok()) return next.status();
  const absl::Duration input_wait = absl::Now() - step_start;
  report_.input_wait += input_wait;
  progress.input += input_wait;
  const Batch& batch = next->first;
  const int64_t step_in_epoch = next->second.step;
  const int64_t global_batch =
      pipeline_->schedule().GlobalBatchSize(next->second.epoch, step_in_epoch) *
      batches_per_global_batch_;
  absl::StatusOr<StepResult> result = strategy_.Run(step_fn_, batch, global_batch);
  if (!result.ok()) return Annotate(result.status(), absl::StrCat("step ", global_step_));
  const absl::Duration step_time = absl::Now() - step_start;
  totals.train += step_time;
  progress.train += step_time;
  progress.communicate += result->timing.communicate;
  ++progress.steps;
  totals.loss.loss_sum += result->loss.loss_sum;
  totals.loss.correct += result->loss.correct;
  totals.examples += result->examples;
  totals.samples += global_batch;
  StepTiming& timing = report_.timing;
  timing.compute += result->timing.compute;
  timing.communicate += result->timing.communicate;
  timing.wait += result->timing.wait;
  timing.hidden += result->timing.hidden;
  timing.bytes_sent += result->timing.bytes_sent;
  timing.bytes_received += result->timing.bytes_received;
  ++global_step_;
  ++totals.steps;
  if (record_.is_open()) RecordExamples(next->second);
  if (!options_.observers.empty()) {
    StepRecord record{global_step_, pipeline_->schedule().Advance(next->second),
                      global_batch, &*result,
                      step_start,   absl::Now()};
    for (TrainingObserver* observer : options_.observers) {
      MESHTRAIN_RETURN_IF_ERROR(observer->OnStepEnd(record));
    }
  }
  if (options_.on_progress && absl::Now() >= progress.next) {
    ReportProgress(epoch, step_in_epoch, totals, progress);
  }
  return absl::OkStatus();
}

void Loop::RecordExamples(InputPosition position) {
  record_ << global_step_ << ' ' << position.epoch;
  for (int64_t i : pipeline_->ExampleIndices(position)) record_ << ' ' << i;
  record_ << '\n';
  record_.flush();
}

void Loop::ReportProgress(int64_t epoch, int64_t step_in_epoch, const EpochTotals& totals,
                          ProgressWindow& progress) {
  ProgressRecord record;
  record.epoch = epoch + 1;
  record.step = step_in_epoch + 1;
  record.steps_per_epoch = pipeline_->schedule().StepsInEpoch(epoch);
  record.loss = totals.loss.loss_sum / std::max<int64_t>(1, totals.examples);
  record.window_steps = progress.steps;
  record.step_time = progress.train / std::max<int64_t>(1, progress.steps);
  record.communicate_time = progress.communicate / std::max<int64_t>(1, progress.steps);
  record.input_time = progress.input / std::max<int64_t>(1, progress.steps);
  options_.on_progress(record);
  progress = ProgressWindow{absl::Now() + options_.progress_interval};
}

absl::StatusOr<EpochRecord> Loop::FinishEpoch(int64_t epoch, const EpochTotals& totals) {
  EpochRecord record;
  record.epoch = epoch + 1;
  record.steps = totals.steps;
  record.train_loss = totals.loss.loss_sum / std::max<int64_t>(1, totals.examples);
  record.train_accuracy =
      static_cast<double>(totals.loss.correct) / std::max<int64_t>(1, totals.examples);
  record.train_seconds = absl::ToDoubleSeconds(totals.train);
  record.samples_per_sec = totals.samples / std::max(1e-9, record.train_seconds);
  if (options_.evaluate && test_ != nullptr && test_->size() > 0) {
    TraceSpan trace(options_.tracer, "evaluate", "evaluate");
    MESHTRAIN_ASSIGN_OR_RETURN(LossStats eval, EvaluateDataset(strategy_, model_, *test_));
    record.test_loss = eval.loss_sum / static_cast<double>(test_->size());
    record.test_accuracy = static_cast<double>(eval.correct) / static_cast<double>(test_->size());
  }
  record.elapsed_seconds = absl::ToDoubleSeconds(absl::Now() - start_);
  return record;
}

absl::Status Loop::Finish() {
  MESHTRAIN_RETURN_IF_ERROR(strategy_.Finish());
  // Where the model stands at the end, when the last epoch's evaluation does
  // not say: resumed at the last step (a restart after the final
  // checkpoint), nothing trained; with independent workers, the others'
  // last updates arrived after it.
  std::optional<LossStats> final_eval;
  if ((report_.epochs.empty() || strategy_.recovery_policy().independent_workers) &&
      options_.evaluate && test_ != nullptr && test_->size() > 0) {
    MESHTRAIN_ASSIGN_OR_RETURN(final_eval, EvaluateDataset(strategy_, model_, *test_));
  }
  report_.final_step = global_step_;
  report_.train_seconds = absl::ToDoubleSeconds(train_time_);
  report_.wall_seconds = absl::ToDoubleSeconds(absl::Now() - start_);
  report_.samples_per_sec = report_.samples / std::max(1e-9, report_.train_seconds);
  if (!report_.epochs.empty()) {
    report_.train_loss = report_.epochs.back().train_loss;
    report_.test_loss = report_.epochs.back().test_loss;
    report_.test_accuracy = report_.epochs.back().test_accuracy;
  }
  if (final_eval.has_value()) {
    report_.test_loss = final_eval->loss_sum / static_cast<double>(test_->size());
    report_.test_accuracy =
        static_cast<double>(final_eval->correct) / static_cast<double>(test_->size());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TrainingReport> RunTraining(Strategy& strategy, const Model& model,
                                           const Dataset& train, const Dataset* test,
                                           const TrainingOptions& options) {
  Loop loop(strategy, model, test, options);
  MESHTRAIN_RETURN_IF_ERROR(loop.Start(train));
  return loop.Run();
}

}  // namespace meshtrain

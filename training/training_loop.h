// The training loop, the same for every strategy: feed this process's shard of
// each global batch to Strategy::Run, evaluate on the test set after each epoch
// (chief only), report progress. It never asks which strategy runs.
#ifndef MESHTRAIN_TRAINING_TRAINING_LOOP_H_
#define MESHTRAIN_TRAINING_TRAINING_LOOP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/base/trace.h"
#include "runtime/data/dataset.h"
#include "runtime/data/global_position.h"
#include "runtime/data/input_pipeline.h"
#include "runtime/model/model.h"
#include "strategies/strategy.h"

namespace meshtrain {

struct EpochRecord {
  int64_t epoch = 0;  // 1-based
  int64_t steps = 0;
  double train_loss = 0;  // mean over this process's examples
  double train_accuracy = 0;
  double test_loss = 0;  // evaluating tasks only
  double test_accuracy = 0;
  double samples_per_sec = 0;  // global samples over training time (evaluation excluded)
  double train_seconds = 0;
  double elapsed_seconds = 0;  // since training started, evaluations included
};

// One finished step, as observers see it.
struct StepRecord {
  int64_t global_step = 0;  // steps done since training began, this one included
  InputPosition next;       // where the input resumes after this step
  int64_t global_batch_size = 0;
  const StepResult* result = nullptr;
  absl::Time start;
  absl::Time end;
};

// A progress report within an epoch: where the loop is, and how its steps went
// since the previous report (so a step slowed by the network shows at once).
struct ProgressRecord {
  int64_t epoch = 0;  // 1-based
  int64_t step = 0;   // 1-based, within the epoch
  int64_t steps_per_epoch = 0;
  double loss = 0;                  // mean over the epoch so far
  int64_t window_steps = 0;         // steps since the previous report
  absl::Duration step_time;         // their mean wall time
  absl::Duration communicate_time;  // of which moving and reducing (mean per step)
  absl::Duration input_time;        // of which waiting for the batch (mean per step)
};

// Hooks into the loop: checkpoint savers, summary writers, tracers. A hook's
// error stops training with that error. Called on the training thread.
class TrainingObserver {
 public:
  virtual ~TrainingObserver() = default;
  virtual absl::Status OnStepEnd(const StepRecord& step) { return absl::OkStatus(); }
  virtual absl::Status OnEpochEnd(const EpochRecord& epoch) { return absl::OkStatus(); }
  // After this process's last step, before Strategy::Finish (which may wait
  // for the other workers): `next` is where its input stands.
  virtual absl::Status OnTrainingEnd(InputPosition next) { return absl::OkStatus(); }
};

// Under the file policy (runtime/data/file_sharding.h) the training set is
// this input worker's own files: it walks its own permutation of them in
// batches of global_batch_size / num_input_workers, whole batches only.
struct OwnFilesOptions {
  int num_input_workers = 1;
  int worker_index = 0;  // must be the strategy's input_shard()
  // Workers that step together must run the same steps an epoch: given this
  // worker's full batches, returns the count every worker runs (the fewest
  // any holds). Empty: its own count (workers that step independently).
  std::function<absl::StatusOr<int64_t>(int64_t full_batches)> agree_steps_per_epoch;
};

struct TrainingOptions {
  // The global batch may split unevenly over the replicas in sync (elastic
  // training keeps it when the workers change): each replica's gradient is
  // weighted by its rows, so the update is one replica's on the whole batch.
  bool uneven_batches = false;
  int64_t epochs = 1;
  int64_t max_steps = 0;  // 0: no limit
  int64_t global_batch_size = 256;
  uint64_t seed = 0;
  bool shuffle = true;
  bool drop_remainder = false;
  bool evaluate = true;  // the chief evaluates; other workers do not
  double target_accuracy = 0;
  int prefetch_depth = 2;
  int input_threads = 1;   // InputPipeline's producer threads (prefetch_depth > 0)
  AugmentOptions augment;  // random flips and crops of training images
  std::optional<OwnFilesOptions> own_files;  // nullopt: the data policy
  InputPosition start;                       // resume here (epoch, step within epoch)
  // Null: the schedule is the job's from its beginning. Otherwise the
  // examples trained before this run (another cluster shape's checkpoint):
  // the schedule leaves them out and `start` is a position in it.
  std::shared_ptr<const GlobalInputPosition> resume_from;
  // Global steps done before `start`; unset: start.epoch x steps_per_epoch +
  // start.step (a schedule that never changed).
  std::optional<int64_t> start_step;
  // Debugging and tests (--test-record-examples): after each step, appends a
  // line "STEP EPOCH INDEX..." (the global step done, the 0-based epoch, the
  // example indices this process trained) to this file. Empty: nothing.
  std::string record_examples;
  absl::Duration step_timeout = absl::Minutes(5);  // longest wait for a batch
  absl::Duration progress_interval = absl::Seconds(10);
  std::vector<TrainingObserver*> observers;  // not owned; outlive the call
  Tracer* tracer = nullptr;  // null: no spans (step, input, evaluate); outlives the call
  // Called after each epoch, and every progress_interval within a long epoch.
  std::function<void(const EpochRecord&)> on_epoch;
  std::function<void(const ProgressRecord&)> on_progress;
};

struct TrainingReport {
  std::vector<EpochRecord> epochs;
  int64_t final_step = 0;  // global steps run, from the start of training
  double train_loss = 0;   // last epoch's
  double test_loss = 0;
  double test_accuracy = 0;    // after the last epoch (evaluating tasks)
  double samples_per_sec = 0;  // over all training time
  double train_seconds = 0;
  double wall_seconds = 0;
  std::optional<double> seconds_to_target;  // wall time to target_accuracy
  int64_t samples = 0;   // global samples, counted as global batches of this process's steps
  int64_t examples = 0;  // examples this process trained on (its shards)
  StepTiming timing;     // summed over steps
  // Time the steps waited for their batch (summed): near zero when the input
  // pipeline keeps up, the whole shortfall when it does not.
  absl::Duration input_wait;
};

absl::StatusOr<TrainingReport> RunTraining(Strategy& strategy, const Model& model,
                                           const Dataset& train, const Dataset* test,
                                           const TrainingOptions& options);

// InvalidArgument, naming the fix, where the global batch cannot train `train`
// under `strategy`: it does not split over the replicas in sync, or it is
// larger than the training set (under the file policy: this worker's batch is
// larger than its own files hold). RunTraining checks it first; a cluster task
// checks it before its first collective call, so that every task ends on the
// same configuration error instead of some seeing a peer leave first.
absl::Status ValidateTrainingShape(const Strategy& strategy, const Dataset& train,
                                   const TrainingOptions& options);

// Loss and accuracy of the current variables on `data` (in chunks, in order).
absl::StatusOr<LossStats> EvaluateDataset(Strategy& strategy, const Model& model,
                                          const Dataset& data);

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_TRAINING_LOOP_H_

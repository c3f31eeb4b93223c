// The `evaluator` task (TF_CONFIG task type "evaluator"), TensorFlow's
// side-car evaluator: it joins no mesh, so its death is noticed by nobody. It
// watches MODEL_DIR and, for each checkpoint committed there (oldest first):
//   1. opens and verifies it (a corrupt one is reported and skipped; one
//      deleted meanwhile by max_to_keep is skipped quietly);
//   2. restores it into a one_device strategy and evaluates the test set;
//   3. appends {"step", "loss", "accuracy", "checkpoint", "final",
//      "unix_time"} as one line to MODEL_DIR/eval.jsonl (O_APPEND, fsync);
// and returns after the final checkpoint (its manifest says "final"). A
// restarted evaluator reads eval.jsonl first and does not evaluate a step
// twice. Single-threaded.
#ifndef MESHTRAIN_TRAINING_EVALUATOR_H_
#define MESHTRAIN_TRAINING_EVALUATOR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/base/file_system.h"
#include "training/job_config.h"
#include "training/preemption.h"

namespace meshtrain {

inline constexpr char kEvalFileName[] = "eval.jsonl";

struct EvaluatorOptions {
  std::string model_dir;
  absl::Duration poll_interval = absl::Milliseconds(200);
  // No new checkpoint for this long: DeadlineExceeded (the chief may be gone).
  absl::Duration idle_timeout = absl::Minutes(30);
  FileSystem* fs = nullptr;                 // null: DefaultFileSystem()
  PreemptionWatcher* preemption = nullptr;  // SIGTERM: stop between checkpoints
};

absl::Status RunEvaluator(const JobConfig& job, const EvaluatorOptions& options);

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_EVALUATOR_H_

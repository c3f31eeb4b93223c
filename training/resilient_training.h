// RunResilientTraining: a training task's whole run, surviving failures of
// any task of the cluster. The run is a sequence of lives; each life:
//   1. builds the strategy (with its links on the mesh, named after the
//      cluster's generation, so no byte of an earlier life can reach them)
//      and the model;
//   2. restores: the chief (or a lone process) finds the newest checkpoint
//      that verifies (naming and skipping corrupt ones) and publishes its step
//      for this generation; every worker restores that same step; training
//      resumes at the saved step and input position;
//   3. trains, the chief checkpointing in the background (CheckpointSaver),
//      every task honouring SIGTERM at step boundaries (preemption);
//   4. writes the final checkpoint (chief) and gathers every worker's
//      parameter checksum.
// When a life fails with a recoverable error (a peer died or restarted, the
// chief went away, a collective timed out) the task reports it, tears the life
// down, rejoins the cluster (Mesh::Rejoin: waits up to --recovery-timeout for
// the dead task to come back, retrying while the chief restarts) and starts
// the next life. docs/fault_tolerance.md gives the protocols. With
// ResilienceOptions::elastic a failed life first keeps its state in memory,
// and the next life, on the generation's members (Mesh::TrainingMembers),
// starts from the most advanced state a member holds (5.9).
#ifndef MESHTRAIN_TRAINING_RESILIENT_TRAINING_H_
#define MESHTRAIN_TRAINING_RESILIENT_TRAINING_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "runtime/base/abort_signal.h"
#include "runtime/base/file_system.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/model/model.h"
#include "runtime/optim/optimizer.h"
#include "runtime/rpc/mesh.h"
#include "strategies/strategy.h"
#include "strategies/strategy_builder.h"
#include "training/job_config.h"
#include "training/job_data.h"
#include "training/preemption.h"
#include "training/training_loop.h"
#include "training/worker_reports.h"

namespace meshtrain {

struct ResilienceOptions {
  std::string model_dir;  // "": no checkpoints and so no recovery
  int64_t checkpoint_every_steps = 0;
  absl::Duration checkpoint_every = absl::ZeroDuration();
  int max_to_keep = 3;
  // false (--restore none): the first life starts from the initial values
  // whatever MODEL_DIR holds; a recovery restores only what this run saved.
  bool restore_existing = true;
  // How long survivors wait for a failed task to come back; 0: fail instead.
  absl::Duration recovery_timeout = absl::Minutes(5);
  absl::Duration startup_timeout = absl::Minutes(5);  // agreeing on what to restore
  FileSystem* fs = nullptr;                           // null: DefaultFileSystem()
  PreemptionWatcher* preemption = nullptr;            // null: SIGTERM is not watched
  // Elastic membership (docs/fault_tolerance.md 5.9), for strategies whose
  // workers all hold the whole state: after a recovery every worker resumes
  // from the state the survivors held at their last step boundary (shared
  // over the data path), on however many workers the generation has; the
  // disk's checkpoint only when no survivor holds a state.
  bool elastic = false;
  // Elastic: on fewer workers than the cluster lists, keep each replica's
  // batch (the global batch shrinks with the workers, the learning rate with
  // it, the linear scaling rule) instead of the global batch.
  bool keep_per_replica_batch = false;
};

// What a training task brings; every pointer outlives the call.
struct TrainingTask {
  const JobConfig* job = nullptr;
  const ClusterConfig* cluster = nullptr;
  Mesh* mesh = nullptr;  // null: a lone process
  AbortSignal* abort = nullptr;
  const JobData* data = nullptr;
  const Optimizer* optimizer = nullptr;
  StrategyBuilder* strategies = nullptr;  // builds each life's strategy
  int threads = 1;
  std::string rpc_layer;
  absl::Time process_start = absl::Now();  // a restarted chief's recovery starts here
  // The loop's options (the session adds its own observers and start).
  TrainingOptions training;
  Tracer* tracer = nullptr;  // null unless --trace
};

// What one life builds (the strategy owns its links on the mesh).
struct TrainingLife {
  // Elastic with keep per_replica_batch on fewer workers: this life's
  // optimizer (its learning rate scaled with the global batch); null: the
  // task's. Outlives the strategy, whose stores refer to it.
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<Strategy> strategy;
  std::unique_ptr<Model> model;
};

struct ResilientRun {
  TrainingReport report;  // the last life's, with every life's epochs
  TrainingLife life;      // as training left it (Describe)
  // chief: every worker's checksum, memory and rate (worker_reports.h)
  std::map<std::string, WorkerReport> reports;
  nlohmann::json fault_tolerance;  // summary.json: restarts, restored_from_step, ...
  // Not OK when the final checkpoint did not fit (kResourceExhausted, naming
  // the directory, the bytes needed and the fix): the task then reports the
  // run and exits non-zero with it.
  absl::Status final_checkpoint;
};

// Preempted: a PreemptedError (exit kPreemptedExitCode).
absl::StatusOr<ResilientRun> RunResilientTraining(const TrainingTask& task,
                                                  const ResilienceOptions& options);

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_RESILIENT_TRAINING_H_

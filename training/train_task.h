// RunTrainingTask: one process's whole part of a training job, whatever its
// role and strategy:
//   1. resolves its place in the cluster (runtime/cluster/cluster_source.h):
//      TF_CONFIG, else a Slurm step (addresses computed from the step's
//      layout), else mpirun (the server starts first, on a port of its
//      choosing, and ranks exchange addresses), else torchrun-style
//      variables (likewise, the exchange going through rank 0 at
//      MASTER_ADDR:MASTER_PORT), else a lone process;
//   2. an evaluator (no mesh) follows the chief's checkpoints;
//   3. every other task joins the mesh with the services and recovery rules
//      its strategy gives (StrategyBuilder), then
//        - a training worker trains (RunResilientTraining), the chief writes
//          summary.json, TensorBoard events and asks the cluster to shut down;
//        - a task with a part of its own in the strategy (a ps task) serves it
//          across the cluster's generations (RunServingTask);
//        - any other task waits for the chief's shutdown request;
//   4. the first error of the cluster aborts every other task, and each names
//      the task that failed first.
// The launcher's `train` command is a thin shell over it.
#ifndef MESHTRAIN_TRAINING_TRAIN_TASK_H_
#define MESHTRAIN_TRAINING_TRAIN_TASK_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "training/job_config.h"
#include "training/preemption.h"
#include "training/task_security.h"

namespace meshtrain {

// How this process runs its task (the job config says what it trains).
struct TaskOptions {
  std::string model_dir;      // summary.json, checkpoints, events; "": none written
  std::string trace;          // Chrome trace file (summaries/trace_files.h); "": off
  std::string job_label;      // names the job in logs when the config has no name
  int64_t threads = 0;        // CPU threads for compute; 0: the host's cores over its tasks
  std::string rpc_layer;      // "": TF_CONFIG's, then the fastest (runtime/rpc/data_path.h)
  int64_t prefetch = 2;       // batches prepared ahead by the input threads
  int64_t input_threads = 1;  // threads gathering them (InputPipeline)
  int64_t logical_gpus = 1;
  std::string gpu_memory_limit;
  absl::Duration startup_timeout = absl::Seconds(300);
  absl::Duration heartbeat_timeout = absl::Seconds(5);
  // While training, a task silent for longer than max(this, 10 x the median
  // step time) is stuck and treated as dead; zero: off.
  absl::Duration stuck_timeout = absl::Seconds(2);
  int64_t mpi_ps = 0;  // under mpirun: the last N ranks are parameter servers
  // Host every listening socket binds to; "": this task's own host when it is
  // loopback, else every interface (MeshOptions::bind_host, docs/mesh.md).
  std::string bind_host;
  // Under Slurm or torchrun-style variables (runtime/cluster/rank_roles.h):
  // rank 0 the evaluator if asked for, the next `ps` ranks parameter servers.
  int64_t ps = 0;
  bool evaluator = false;
  int64_t port_base = 8888;  // under Slurm: rank r listens on port_base + its local rank
  absl::Duration progress_interval = absl::Seconds(10);  // the chief's step-time lines
  // Checkpoints and recovery (docs/fault_tolerance.md).
  int64_t checkpoint_every_steps = 0;
  double checkpoint_every_secs = 60;
  int64_t max_to_keep = 3;
  // "latest": resume from the newest valid checkpoint in model_dir (refusing
  // when every one is corrupt); "none": start from the initial values.
  std::string restore = "latest";
  absl::Duration recovery_timeout = absl::Minutes(5);
  absl::Duration eval_timeout = absl::Minutes(30);
  // Fault injection for tests: every checkpoint fsync sleeps this long.
  absl::Duration test_checkpoint_sync_delay = absl::ZeroDuration();
  // Debugging and tests: each training task appends the example indices of
  // every step it trains to DIR/examples-JOB-INDEX.txt (training_loop.h).
  std::string test_record_examples;
  // TLS on the mesh (docs/security.md).
  TaskSecurityOptions security;
};

// `preemption` (may be null) turns SIGTERM into a checkpoint and a
// PreemptedError; `process_start` is when the process began (a restarted
// chief's recovery is timed from it).
absl::Status RunTrainingTask(const JobConfig& job, const TaskOptions& options,
                             PreemptionWatcher* preemption, absl::Time process_start);

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_TRAIN_TASK_H_

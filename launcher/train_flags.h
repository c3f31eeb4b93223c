// The flags of `meshtrain train`, shared by `launch` and `compare` (which pass
// them on to every task). Each flag left at its default leaves the job config's
// value alone; a flag given overrides that one field.
#ifndef MESHTRAIN_LAUNCHER_TRAIN_FLAGS_H_
#define MESHTRAIN_LAUNCHER_TRAIN_FLAGS_H_

#include <cstdint>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "launcher/flag_set.h"
#include "training/job_config.h"

namespace meshtrain {

struct TrainFlags {
  std::string config;
  std::string model_dir;
  std::string trace;  // Chrome trace file (launcher/trace_files.h); "" = off
  int64_t epochs = -1;
  int64_t max_steps = -1;
  std::string strategy;
  int64_t seed = -1;
  int64_t threads = 0;
  int64_t global_batch_size = 0;
  double learning_rate = 0;
  std::string data_dir;
  std::string devices;
  std::string cross_device_ops;
  std::string communication;
  int64_t bytes_per_pack = -1;
  std::string overlap;
  std::string rpc_layer;
  int64_t logical_gpus = 1;
  std::string gpu_memory_limit;
  std::string placement;
  int64_t fixed_shards = -1;
  int64_t min_shard_bytes = -1;
  int64_t max_shard_bytes = -1;
  int64_t max_staleness = -2;
  bool staleness_scaling = false;
  int64_t warmup_steps = -1;
  int64_t sync_replicas = -1;
  absl::Duration startup_timeout = absl::Seconds(300);
  absl::Duration heartbeat_timeout = absl::Seconds(5);
  int64_t prefetch = 2;
  int64_t mpi_ps = 0;
  bool quiet = false;
  // Checkpoints and recovery (docs/fault_tolerance.md).
  int64_t checkpoint_every_steps = 0;
  double checkpoint_every_secs = 60;
  int64_t max_to_keep = 3;
  absl::Duration recovery_timeout = absl::Minutes(5);
  absl::Duration eval_timeout = absl::Minutes(30);
  // Fault injection for tests: every checkpoint fsync sleeps this long.
  absl::Duration test_checkpoint_sync_delay = absl::ZeroDuration();
};

// Registers every train flag on `flags`, writing into `values`.
void RegisterTrainFlags(FlagSet& flags, TrainFlags& values);
// The names RegisterTrainFlags declares (what launch forwards to tasks).
std::set<std::string> TrainFlagNames();

// Loads --config and applies the flags that were given. Errors name the flag.
absl::StatusOr<JobConfig> LoadJobWithOverrides(const FlagSet& flags, const TrainFlags& values);

}  // namespace meshtrain

#endif  // MESHTRAIN_LAUNCHER_TRAIN_FLAGS_H_

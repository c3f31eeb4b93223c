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
#include "training/train_task.h"

namespace meshtrain {

struct TrainFlags {
  std::string config;
  int64_t epochs = -1;
  int64_t max_steps = -1;
  std::string strategy;
  int64_t seed = -1;
  int64_t global_batch_size = 0;
  double learning_rate = 0;
  std::string data_dir;
  std::string devices;
  std::string cross_device_ops;
  std::string communication;
  std::string wire_dtype;
  int64_t bytes_per_pack = -1;
  std::string overlap;
  std::string placement;
  int64_t fixed_shards = -1;
  int64_t min_shard_bytes = -1;
  int64_t max_shard_bytes = -1;
  int64_t max_staleness = -2;
  bool staleness_scaling = false;
  int64_t warmup_steps = -1;
  int64_t sync_replicas = -1;
  bool elastic = false;
  absl::Duration rejoin_grace;
  int64_t min_workers = 0;
  int64_t max_workers = 0;
  int64_t initial_workers = 0;
  bool quiet = false;
  TaskOptions task;  // how the process runs (--model-dir, --threads, timeouts, ...)
};

// Registers every train flag on `flags`, writing into `values`.
void RegisterTrainFlags(FlagSet& flags, TrainFlags& values);
// The names RegisterTrainFlags declares (what launch forwards to tasks).
std::set<std::string> TrainFlagNames();

// --ps, --evaluator and --port-base: how `train` (and `check-config`) split the
// ranks of a Slurm step or a torchrun-style job into roles. Not in
// RegisterTrainFlags: `launch` and `compare` have their own --ps.
void RegisterClusterEngineFlags(FlagSet& flags, TaskOptions& values);

// Loads --config and applies the flags that were given. Errors name the flag.
absl::StatusOr<JobConfig> LoadJobWithOverrides(const FlagSet& flags, const TrainFlags& values);

}  // namespace meshtrain

#endif  // MESHTRAIN_LAUNCHER_TRAIN_FLAGS_H_

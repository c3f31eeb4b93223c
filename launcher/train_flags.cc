#include "launcher/train_flags.h"

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

void RegisterJobFlags(FlagSet& f, TrainFlags& v) {
  const std::string job = "job";
  f.AddString("config", &v.config, "job config (JSON), e.g. configs/fashion_mnist_mlp.json", job);
  f.AddString("model-dir", &v.task.model_dir,
              "where summary.json, checkpoints and event files go (none written if empty)", job);
  f.AddInt("epochs", &v.epochs, "epochs to train (-1: the config's training.epochs)", job);
  f.AddInt("max-steps", &v.max_steps, "stop after this many global steps (-1: config; 0: no limit)",
           job);
  f.AddInt("seed", &v.seed, "seed for initial values and data order (-1: config)", job);
  f.AddInt("global-batch-size", &v.global_batch_size,
           "examples per step over all replicas (0: config)", job);
  f.AddDouble("learning-rate", &v.learning_rate, "optimizer learning rate (0: config)", job);
  f.AddString("data-dir", &v.data_dir, "dataset directory (default: config, then the Debian path)",
              job);
  f.AddString("trace", &v.task.trace,
              "write a Chrome trace (Perfetto, chrome://tracing) of every task's steps and "
              "collectives to FILE (none if empty)",
              job);
  f.AddInt("prefetch", &v.task.prefetch,
           "batches prepared ahead by the input threads (0: on the training thread)", job);
  f.AddInt("input-threads", &v.task.input_threads,
           "threads that gather and convert batches ahead of the step (with --prefetch > 0)", job);
}

void RegisterStrategyFlags(FlagSet& f, TrainFlags& v) {
  const std::string strategy = "strategy";
  f.AddString("strategy", &v.strategy,
              "one_device | mirrored | central_storage | multi_worker_mirrored | parameter_server "
              "(default: config)",
              strategy);
  f.AddInt("threads", &v.task.threads, "CPU threads for this process's compute (0: all cores)",
           strategy);
  f.AddString("devices", &v.devices,
              "replicas of this process: cpu:0,cpu:1 or a count (default: config)", strategy);
  f.AddString("cross-device-ops", &v.cross_device_ops,
              "mirrored: reduce_to_one_device | hierarchical_copy | ring | nccl (default: config)",
              strategy);
  f.AddString("communication", &v.communication,
              "multi_worker_mirrored: auto | ring | hierarchical | nccl (auto: hierarchical across "
              "hosts that hold several workers)",
              strategy);
  f.AddString("wire-dtype", &v.wire_dtype,
              "float32 | bfloat16 | float16: gradients between workers (multi_worker_mirrored's "
              "ring) and to and from parameter servers in 16 bits, summed in float32 "
              "(default: config's strategy.communication.wire_dtype, else float32)",
              strategy);
  f.AddInt("bytes-per-pack", &v.bytes_per_pack,
           "gradient bucket size in bytes (-1: config, default 64 KiB; 0: one pack, as TensorFlow; "
           "1: a bucket per variable)",
           strategy);
  f.AddString("overlap", &v.overlap,
              "when replicas sum a gradient bucket: auto | thread (beside backward) | inline | off "
              "(after backward) (default: config)",
              strategy);
  f.AddString("rpc-layer", &v.task.rpc_layer,
              "grpc (everything over gRPC) or auto: tensor bytes over shared memory/TCP (default: "
              "TF_CONFIG, then auto)",
              strategy);
}

void RegisterGpuFlags(FlagSet& f, TrainFlags& v) {
  const std::string gpu = "gpu";
  f.AddInt("logical-gpus", &v.task.logical_gpus,
           "split each GPU into N logical GPUs (own stream and memory share): --logical-gpus 2 "
           "--devices gpu:0,gpu:1 runs mirrored on one GPU",
           gpu);
  f.AddString("gpu-memory-limit", &v.task.gpu_memory_limit,
              "GPU memory this process may use per GPU, e.g. 8GiB (default: what is free)", gpu);
}

void RegisterPsFlags(FlagSet& f, TrainFlags& v) {
  const std::string ps = "parameter servers";
  f.AddString("placement", &v.placement, "round_robin | greedy (default: config)", ps);
  f.AddInt("fixed-shards", &v.fixed_shards, "split large variables into N partitions (-1: config)",
           ps);
  f.AddInt("min-shard-bytes", &v.min_shard_bytes, "smallest partition (-1: config)", ps);
  f.AddInt("max-shard-bytes", &v.max_shard_bytes, "largest partition; 0 = no limit (-1: config)",
           ps);
  f.AddInt("max-staleness", &v.max_staleness,
           "drop gradients staler than this (-1: never; -2: config)", ps);
  f.AddBool("staleness-scaling", &v.staleness_scaling, "scale the learning rate by 1/(1+staleness)",
            ps);
  f.AddInt("warmup-steps", &v.warmup_steps,
           "only the chief trains for the first N steps (-1: config)", ps);
  f.AddInt("sync-replicas", &v.sync_replicas,
           "synchronous mode: apply after the first N gradients of a step (-1: config)", ps);
}

void RegisterClusterFlags(FlagSet& f, TrainFlags& v) {
  const std::string cluster = "cluster";
  f.AddDuration("startup-timeout", &v.task.startup_timeout,
                "how long the first tasks wait for the others", cluster);
  f.AddDuration("heartbeat-timeout", &v.task.heartbeat_timeout,
                "a task silent this long is declared dead", cluster);
  f.AddDuration("stuck-timeout", &v.task.stuck_timeout,
                "while training, a task silent for longer than max(this, 10 x the median step "
                "time) is stuck, not gone, and treated as dead (0: off)",
                cluster);
  f.AddString("bind-host", &v.task.bind_host,
              "host the listening sockets bind to (default: the task's TF_CONFIG host when it is "
              "loopback, else every interface)",
              cluster);
  f.AddInt("mpi-ps", &v.task.mpi_ps, "under mpirun: the last N ranks are parameter servers",
           cluster);
  f.AddBool("quiet", &v.quiet, "log warnings and errors only", cluster);
  f.AddDuration("progress-every", &v.task.progress_interval,
                "within an epoch, the chief prints its step and ms/step this often", cluster);
}

void RegisterSecurityFlags(FlagSet& f, TrainFlags& v) {
  const std::string security = "security (docs/security.md)";
  f.AddString("tls-dir", &v.task.security.tls_dir,
              "mutual TLS on every link of the mesh, with the credentials in DIR (made by "
              "`meshtrain certs --out DIR`; default: $MESHTRAIN_TLS_DIR, else none)",
              security);
  f.AddBool("require-tls", &v.task.security.require_tls, "refuse to start without credentials",
            security);
  f.AddString("data-path-encryption", &v.task.security.data_path_encryption,
              "on: the tcp data path is encrypted | off: authenticated only, for a fabric you "
              "trust",
              security);
}

void RegisterCheckpointFlags(FlagSet& f, TrainFlags& v) {
  const std::string ft = "checkpoints and recovery";
  f.AddInt("checkpoint-every-steps", &v.task.checkpoint_every_steps,
           "the chief checkpoints to --model-dir every N global steps (0: not by steps)", ft);
  f.AddDouble("checkpoint-every-secs", &v.task.checkpoint_every_secs,
              "... and every S seconds (0: not by time); a final checkpoint is always written", ft);
  f.AddInt("max-to-keep", &v.task.max_to_keep,
           "valid checkpoints kept in --model-dir (0: all); corrupt ones do not count", ft);
  f.AddString("restore", &v.task.restore,
              "latest: resume from the newest valid checkpoint in --model-dir (an error if every "
              "one is corrupt) | none: start from the initial values",
              ft);
  f.AddDuration("recovery-timeout", &v.task.recovery_timeout,
                "survivors of a failed task wait this long for it to come back (0: fail instead)",
                ft);
  f.AddDuration("eval-timeout", &v.task.eval_timeout,
                "the evaluator gives up after this long without a new checkpoint", ft);
  f.AddDuration("test-checkpoint-sync-delay", &v.task.test_checkpoint_sync_delay,
                "fault injection for tests: every checkpoint fsync sleeps this long", ft);
  f.AddString("test-record-examples", &v.task.test_record_examples,
              "debugging and tests: each training task appends a line per step (global step, "
              "epoch, the example indices it trained) to DIR/examples-JOB-INDEX.txt",
              ft);
}

void RegisterElasticFlags(FlagSet& f, TrainFlags& v) {
  const std::string elastic = "elastic training (docs/fault_tolerance.md 5.9)";
  f.AddBool("elastic", &v.elastic,
            "multi_worker_mirrored goes on without a worker that does not come back within "
            "--rejoin-grace, from the state the survivors hold, and grows back when it returns "
            "(default: the config's elastic section)",
            elastic);
  f.AddDuration("rejoin-grace", &v.rejoin_grace,
                "how long survivors wait for a dead worker before going on without it (0: at "
                "once; default 3s); implies --elastic",
                elastic);
  f.AddInt("min-workers", &v.min_workers,
           "the fewest training workers an elastic cluster goes on with (default 1); implies "
           "--elastic",
           elastic);
  f.AddInt("max-workers", &v.max_workers,
           "the most training workers an elastic cluster grows back to (default: all of "
           "TF_CONFIG); implies --elastic",
           elastic);
  f.AddInt("initial-workers", &v.initial_workers,
           "the cluster starts once the first N training workers are in; the others join later "
           "(meshtrain launch --join); implies --elastic",
           elastic);
}

}  // namespace

void RegisterClusterEngineFlags(FlagSet& f, TaskOptions& v) {
  const std::string group = "Slurm and torchrun-style clusters";
  f.AddInt("ps", &v.ps,
           "the N ranks after the evaluator are parameter servers (TensorFlow's "
           "SlurmClusterResolver order)",
           group);
  f.AddBool("evaluator", &v.evaluator, "rank 0 is the evaluator", group);
  f.AddInt("port-base", &v.port_base,
           "under Slurm: each task listens on this port plus its local rank", group);
}

void RegisterTrainFlags(FlagSet& f, TrainFlags& v) {
  RegisterJobFlags(f, v);
  RegisterStrategyFlags(f, v);
  RegisterGpuFlags(f, v);
  RegisterPsFlags(f, v);
  RegisterClusterFlags(f, v);
  RegisterSecurityFlags(f, v);
  RegisterCheckpointFlags(f, v);
  RegisterElasticFlags(f, v);
}

std::set<std::string> TrainFlagNames() {
  FlagSet flags("train", "", "");
  TrainFlags values;
  RegisterTrainFlags(flags, values);
  const std::vector<std::string> names = flags.names();
  return std::set<std::string>(names.begin(), names.end());
}

absl::StatusOr<JobConfig> LoadJobWithOverrides(const FlagSet& f, const TrainFlags& v) {
  if (v.config.empty()) {
    return absl::InvalidArgumentError(
        "--config is required: pass a job config such as configs/fashion_mnist_mlp.json");
  }
  MESHTRAIN_ASSIGN_OR_RETURN(JobConfig job, LoadJobConfig(v.config));
  auto positive = [](absl::string_view flag, int64_t value) -> absl::Status {
    if (value < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, " must be at least 1, got ", value));
    }
    return absl::OkStatus();
  };
  if (f.IsSet("epochs")) {
    MESHTRAIN_RETURN_IF_ERROR(positive("epochs", v.epochs));
    job.training.epochs = v.epochs;
  }
  if (f.IsSet("max-steps")) {
    if (v.max_steps < 0)
      return absl::InvalidArgumentError("--max-steps must be >= 0 (0: no limit)");
    job.training.max_steps = v.max_steps;
  }
  if (f.IsSet("seed")) {
    if (v.seed < 0) return absl::InvalidArgumentError("--seed must be >= 0");
    job.training.seed = static_cast<uint64_t>(v.seed);
  }
  if (f.IsSet("global-batch-size")) {
    MESHTRAIN_RETURN_IF_ERROR(positive("global-batch-size", v.global_batch_size));
    job.training.global_batch_size = v.global_batch_size;
  }
  if (f.IsSet("learning-rate")) job.optimizer.learning_rate = static_cast<float>(v.learning_rate);
  if (f.IsSet("data-dir")) job.data.dir = v.data_dir;
  if (f.IsSet("strategy")) job.strategy.name = v.strategy;
  if (f.IsSet("devices")) job.strategy.devices = v.devices;
  if (f.IsSet("cross-device-ops")) job.strategy.cross_device_ops = v.cross_device_ops;
  if (f.IsSet("communication")) job.strategy.communication = v.communication;
  if (f.IsSet("wire-dtype")) job.strategy.wire_dtype = v.wire_dtype;
  if (f.IsSet("bytes-per-pack")) job.strategy.bytes_per_pack = v.bytes_per_pack;
  if (f.IsSet("overlap")) job.strategy.overlap = v.overlap;
  if (f.IsSet("placement")) job.strategy.placement = v.placement;
  if (f.IsSet("fixed-shards")) job.strategy.fixed_shards = static_cast<int>(v.fixed_shards);
  if (f.IsSet("min-shard-bytes")) job.strategy.min_shard_bytes = v.min_shard_bytes;
  if (f.IsSet("max-shard-bytes")) job.strategy.max_shard_bytes = v.max_shard_bytes;
  if (f.IsSet("max-staleness")) job.strategy.max_staleness = static_cast<int>(v.max_staleness);
  if (f.IsSet("staleness-scaling")) job.strategy.staleness_scaling = v.staleness_scaling;
  if (f.IsSet("elastic")) job.elastic.enabled = v.elastic;
  if (f.IsSet("rejoin-grace")) {
    job.elastic.enabled = true;
    job.elastic.rejoin_grace = v.rejoin_grace;
  }
  if (f.IsSet("min-workers")) {
    job.elastic.enabled = true;
    job.elastic.min_workers = v.min_workers;
  }
  if (f.IsSet("max-workers")) {
    job.elastic.enabled = true;
    job.elastic.max_workers = v.max_workers;
  }
  if (f.IsSet("initial-workers")) {
    job.elastic.enabled = true;
    job.elastic.initial_workers = v.initial_workers;
  }
  if (f.IsSet("warmup-steps")) job.strategy.warmup_steps = v.warmup_steps;
  if (f.IsSet("sync-replicas")) job.strategy.sync_replicas = static_cast<int>(v.sync_replicas);
  return job;
}

}  // namespace meshtrain

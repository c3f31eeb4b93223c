#include "launcher/ps_job.h"

#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/rpc/coordination_service.h"

namespace meshtrain {

absl::StatusOr<PsJobOptions> MakePsJobOptions(const JobConfig& job, const TrainFlags& flags,
                                              const ClusterConfig& cluster) {
  const StrategyConfig& s = job.strategy;
  PsJobOptions options;
  MESHTRAIN_ASSIGN_OR_RETURN(options.placement.policy, ParsePlacementPolicy(s.placement));
  options.placement.num_ps = cluster.cluster.num_tasks(kPsJob);
  options.placement.partitioning.fixed_shards = s.fixed_shards;
  options.placement.partitioning.min_shard_bytes = s.min_shard_bytes;
  options.placement.partitioning.max_shard_bytes = s.max_shard_bytes;
  MESHTRAIN_RETURN_IF_ERROR(ValidatePlacementOptions(options.placement));
  options.optimizer = job.optimizer;
  options.seed = job.training.seed;
  options.rules.num_workers = cluster.cluster.num_training_workers();
  options.rules.max_staleness = s.max_staleness;
  options.rules.staleness_scaling = s.staleness_scaling;
  options.rules.warmup_steps = s.warmup_steps;
  options.rules.sync_replicas = s.sync_replicas;
  MESHTRAIN_RETURN_IF_ERROR(ValidateUpdateRules(options.rules));
  const std::string rpc_layer = flags.rpc_layer.empty() ? cluster.rpc_layer : flags.rpc_layer;
  options.data_path = rpc_layer.empty() ? "auto" : rpc_layer;
  options.startup_timeout = flags.startup_timeout;
  return options;
}

absl::Status RunParameterServerTask(Mesh& mesh, PsService& service, absl::Duration startup_timeout,
                                    absl::Duration recovery_timeout) {
  while (true) {
    const absl::Status status = ServeParameterServer(mesh, service, startup_timeout);
    if (status.ok()) return status;
    const bool recoverable = IsRecoverable(status) || mesh.abort_signal().aborted();
    if (recovery_timeout <= absl::ZeroDuration() || !recoverable) return status;
    MESHTRAIN_LOG(ERROR) << mesh.task().ToString() << " stopped serving: " << status
                         << "; recovering: waiting up to " << absl::FormatDuration(recovery_timeout)
                         << " for the cluster to come back";
    if (!mesh.abort_signal().aborted()) (void)mesh.coordination().ReportError(status);
    MESHTRAIN_RETURN_IF_ERROR(mesh.Rejoin(recovery_timeout));
    MESHTRAIN_LOG(INFO) << mesh.task().ToString() << " serves generation " << mesh.generation()
                        << " (the chief restores its variables from the latest checkpoint)";
  }
}

}  // namespace meshtrain

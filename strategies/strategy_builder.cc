#include "strategies/strategy_builder.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/ps/ps_bootstrap.h"
#include "runtime/tensor/cpu_kernels.h"
#include "runtime/transport/wire_codec.h"
#include "strategies/central_storage.h"
#include "strategies/cross_worker.h"
#include "strategies/mirrored.h"
#include "strategies/one_device.h"
#include "strategies/parameter_server.h"

namespace meshtrain {
namespace {

constexpr char kOneDevice[] = "one_device";
constexpr char kMirrored[] = "mirrored";
constexpr char kMultiWorkerMirrored[] = "multi_worker_mirrored";
constexpr char kCentralStorage[] = "central_storage";
constexpr char kParameterServer[] = "parameter_server";

// TensorFlow's default: NCCL when every device is a GPU, else reduce to one device.
std::string ResolveCrossDeviceOps(const std::string& requested,
                                  const std::vector<Device>& devices) {
  if (requested != "auto" && !requested.empty()) return requested;
  return AllGpus(devices) ? "nccl" : "reduce_to_one_device";
}

// "auto": a combiner thread per replica where the process has a core to spare
// for it (or its devices are GPUs, which leave the cores idle), else inline.
absl::StatusOr<GradientOverlap> ResolveOverlap(const std::string& name, int threads,
                                               const std::vector<Device>& devices) {
  if (name == "thread") return GradientOverlap::kThread;
  if (name == "inline") return GradientOverlap::kInline;
  if (name == "off") return GradientOverlap::kAfterBackward;
  if (name != "auto" && !name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("overlap '", name, "' is unknown: use auto, thread, inline or off"));
  }
  const bool spare_core = threads > static_cast<int>(devices.size());
  return spare_core || AllGpus(devices) ? GradientOverlap::kThread : GradientOverlap::kInline;
}

// OpenBLAS threads per replica: the process's cores shared by its replicas.
void SetThreadsPerReplica(int threads, size_t replicas) {
  SetBlasThreads(std::max<int>(1, threads / static_cast<int>(std::max<size_t>(1, replicas))));
}

bool MultiWorker(const StrategyContext& context) {
  if (!context.workers.empty()) return context.workers.size() > 1;
  return context.cluster != nullptr && context.cluster->cluster.num_training_workers() > 1;
}

absl::StatusOr<std::unique_ptr<Strategy>> BuildOneDevice(const StrategyConfig& config,
                                                         const std::vector<Device>& devices,
                                                         const StrategyContext& context) {
  if (devices.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("one_device runs on one device, but --devices lists ", devices.size(),
                     "; use --strategy mirrored for several"));
  }
  if (MultiWorker(context)) {
    return absl::InvalidArgumentError(
        "one_device trains in one process, but TF_CONFIG lists several workers; use "
        "--strategy multi_worker_mirrored or parameter_server");
  }
  SetThreadsPerReplica(context.threads, 1);
  return OneDeviceStrategy::Create(devices[0], *context.optimizer, context.seed);
}

// mirrored, and multi_worker_mirrored with its communicator across workers.
absl::StatusOr<std::unique_ptr<Strategy>> BuildMirrored(const StrategyConfig& config,
                                                        const std::vector<Device>& devices,
                                                        const StrategyContext& context) {
  MirroredStrategy::Options options;
  options.name = config.name;
  options.devices = devices;
  options.cross_device_ops = ResolveCrossDeviceOps(config.cross_device_ops, devices);
  options.bytes_per_pack = config.bytes_per_pack;
  MESHTRAIN_ASSIGN_OR_RETURN(options.overlap,
                             ResolveOverlap(config.overlap, context.threads, devices));
  options.optimizer = context.optimizer;
  options.seed = context.seed;
  options.abort = context.abort;
  options.tracer = context.tracer;
  if (config.name == kMirrored && MultiWorker(context)) {
    return absl::InvalidArgumentError(
        "mirrored trains in one process, but TF_CONFIG lists several workers; use "
        "--strategy multi_worker_mirrored");
  }
  if (config.name == kMultiWorkerMirrored && MultiWorker(context)) {
    if (context.mesh == nullptr || context.abort == nullptr) {
      return absl::FailedPreconditionError("multi_worker_mirrored needs the cluster's mesh");
    }
    CrossWorkerOptions link;
    link.devices = devices;
    link.rpc_layer = context.rpc_layer;
    link.generation = context.generation;
    link.timeout = context.startup_timeout;
    link.workers = context.workers;
    MESHTRAIN_ASSIGN_OR_RETURN(options.cross_worker,
                               CreateCrossWorkerLink(*context.mesh, *context.abort, config, link));
    options.worker_rank = options.cross_worker.communicator->rank();
    options.num_workers = options.cross_worker.communicator->world_size();
  }
  SetThreadsPerReplica(context.threads, devices.size());
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<MirroredStrategy> strategy,
                             MirroredStrategy::Create(std::move(options)));
  return std::unique_ptr<Strategy>(std::move(strategy));
}

absl::StatusOr<std::unique_ptr<Strategy>> BuildCentralStorage(const StrategyConfig& config,
                                                              const std::vector<Device>& devices,
                                                              const StrategyContext& context) {
  if (AnyGpu(devices) || !ParseDevice(config.parameter_device).value_or(Device::Cpu()).is_cpu()) {
    return absl::UnimplementedError(
        "central_storage sums gradients in host memory; on GPUs use mirrored (NCCL)");
  }
  if (MultiWorker(context)) {
    return absl::InvalidArgumentError(
        "central_storage trains in one process, but TF_CONFIG lists several workers; use "
        "parameter_server to keep variables apart from workers");
  }
  CentralStorageStrategy::Options options;
  options.compute_devices = devices;
  MESHTRAIN_ASSIGN_OR_RETURN(options.parameter_device, ParseDevice(config.parameter_device));
  options.optimizer = context.optimizer;
  options.seed = context.seed;
  options.abort = context.abort;
  options.tracer = context.tracer;
  SetThreadsPerReplica(context.threads, devices.size());
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<CentralStorageStrategy> strategy,
                             CentralStorageStrategy::Create(std::move(options)));
  return std::unique_ptr<Strategy>(std::move(strategy));
}

// What every task of a parameter_server job derives from the config and the
// cluster (on the chief it becomes the plan the others follow).
absl::StatusOr<PsJobOptions> MakePsJobOptions(const StrategyConfig& s,
                                              const StrategyContext& context) {
  const ClusterSpec& cluster = context.cluster->cluster;
  PsJobOptions options;
  MESHTRAIN_ASSIGN_OR_RETURN(options.placement.policy, ParsePlacementPolicy(s.placement));
  options.placement.num_ps = cluster.num_tasks(kPsJob);
  options.placement.partitioning.fixed_shards = s.fixed_shards;
  options.placement.partitioning.min_shard_bytes = s.min_shard_bytes;
  options.placement.partitioning.max_shard_bytes = s.max_shard_bytes;
  MESHTRAIN_RETURN_IF_ERROR(ValidatePlacementOptions(options.placement));
  options.optimizer = context.optimizer->config();
  options.seed = context.seed;
  options.rules.num_workers = cluster.num_training_workers();
  options.rules.max_staleness = s.max_staleness;
  options.rules.staleness_scaling = s.staleness_scaling;
  options.rules.warmup_steps = s.warmup_steps;
  options.rules.sync_replicas = s.sync_replicas;
  MESHTRAIN_RETURN_IF_ERROR(ValidateUpdateRules(options.rules));
  options.data_path = context.rpc_layer.empty() ? "auto" : context.rpc_layer;
  MESHTRAIN_ASSIGN_OR_RETURN(options.wire_dtype, ParseWireDtype(s.wire_dtype));
  options.startup_timeout = context.startup_timeout;
  return options;
}

absl::StatusOr<std::unique_ptr<Strategy>> BuildParameterServer(const StrategyConfig& config,
                                                               const std::vector<Device>& devices,
                                                               const StrategyContext& context) {
  if (devices.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter_server runs one replica per worker, but --devices lists ",
                     devices.size(), "; add workers instead"));
  }
  ParameterServerStrategy::Options options;
  if (context.mesh != nullptr) {
    MESHTRAIN_ASSIGN_OR_RETURN(PsJobOptions ps, MakePsJobOptions(config, context));
    Mesh* mesh = context.mesh;
    options.connect = [mesh, ps](const std::vector<VariableSpec>& specs) {
      return ConnectToParameterServers(*mesh, specs, ps);
    };
  }
  options.device = devices[0];
  if (context.cluster != nullptr && !context.cluster->is_local()) {
    options.worker_rank = context.cluster->worker_rank();
    options.num_workers = context.cluster->cluster.num_training_workers();
  }
  options.warmup_steps = config.warmup_steps;
  SetThreadsPerReplica(context.threads, 1);
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<ParameterServerStrategy> strategy,
                             ParameterServerStrategy::Create(std::move(options)));
  return std::unique_ptr<Strategy>(std::move(strategy));
}

}  // namespace

StrategyBuilder::StrategyBuilder(StrategyConfig config) : config_(std::move(config)) {}
StrategyBuilder::~StrategyBuilder() = default;

std::string DefaultStrategyForCluster(int training_workers, int ps_tasks) {
  if (ps_tasks > 0) return kParameterServer;
  if (training_workers > 1) return kMultiWorkerMirrored;
  return "";
}

absl::StatusOr<std::unique_ptr<StrategyBuilder>> StrategyBuilder::Create(
    const StrategyConfig& config, const std::string& model_dir) {
  const std::string& n = config.name;
  if (n != kOneDevice && n != kMirrored && n != kMultiWorkerMirrored && n != kCentralStorage &&
      n != kParameterServer) {
    return absl::InvalidArgumentError(absl::StrCat(
        "strategy '", n,
        "' is unknown: use one_device, mirrored, central_storage, multi_worker_mirrored or "
        "parameter_server"));
  }
  MESHTRAIN_RETURN_IF_ERROR(ParseDeviceList(config.devices).status());
  if (config.bytes_per_pack < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "strategy.bytes_per_pack is ", config.bytes_per_pack,
        ": use a byte count (0: one pack of every gradient, as TensorFlow; 1: one per variable)"));
  }
  if (n == kMultiWorkerMirrored && config.communication != "auto" &&
      config.communication != "ring" && config.communication != "hierarchical" &&
      config.communication != "nccl") {
    return absl::InvalidArgumentError(
        absl::StrCat("communication '", config.communication,
                     "' is unknown: use auto, ring, hierarchical or nccl"));
  }
  MESHTRAIN_ASSIGN_OR_RETURN(const WireDtype wire_dtype, ParseWireDtype(config.wire_dtype));
  if (wire_dtype != WireDtype::kFloat32 && n != kMultiWorkerMirrored && n != kParameterServer) {
    return absl::InvalidArgumentError(absl::StrCat(
        "wire_dtype ", config.wire_dtype, ": ", n,
        " sends no gradients between tasks; 16 bits on the wire are for multi_worker_mirrored "
        "and parameter_server"));
  }
  auto builder = std::unique_ptr<StrategyBuilder>(new StrategyBuilder(config));
  if (n == kParameterServer) {
    builder->ps_service_ = std::make_unique<PsService>(PsServiceOptions{.model_dir = model_dir});
  }
  return builder;
}

RecoveryPolicy StrategyBuilder::recovery_policy() const {
  if (config_.name == kParameterServer) return ParameterServerStrategy::kRecoveryPolicy;
  return RecoveryPolicy{.replicated_state = config_.name == kMultiWorkerMirrored};
}

void StrategyBuilder::RegisterServices(ServerOptions& server) {
  if (ps_service_ != nullptr) server.services.push_back(ps_service_->grpc_service());
}

bool StrategyBuilder::Serves(const TaskId& task) const {
  return ps_service_ != nullptr && task.job == kPsJob;
}

absl::Status StrategyBuilder::Serve(Mesh& mesh, absl::Duration startup_timeout,
                                    const std::function<absl::Status()>& poll) {
  if (!Serves(mesh.task())) {
    return absl::InternalError(absl::StrCat(mesh.task().ToString(), " has no part in ",
                                            config_.name, " but its own training"));
  }
  return ServeParameterServer(mesh, *ps_service_, startup_timeout, poll);
}

absl::StatusOr<std::unique_ptr<Strategy>> StrategyBuilder::Build(const StrategyContext& context) {
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<Device> devices, ParseDeviceList(config_.devices));
  if (config_.name == kOneDevice) return BuildOneDevice(config_, devices, context);
  if (config_.name == kMirrored || config_.name == kMultiWorkerMirrored) {
    return BuildMirrored(config_, devices, context);
  }
  if (config_.name == kCentralStorage) return BuildCentralStorage(config_, devices, context);
  return BuildParameterServer(config_, devices, context);
}

}  // namespace meshtrain

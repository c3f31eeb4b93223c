#include "strategies/strategy_factory.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/tensor/cpu_kernels.h"
#include "strategies/central_storage.h"
#include "strategies/mirrored.h"
#include "strategies/one_device.h"
#include "strategies/parameter_server.h"

namespace meshtrain {
namespace {

bool AllGpus(const std::vector<Device>& devices) {
  return std::all_of(devices.begin(), devices.end(), [](const Device& d) { return !d.is_cpu(); });
}

// TensorFlow's default: NCCL when every device is a GPU, else reduce to one device.
std::string ResolveCrossDeviceOps(const std::string& requested, const std::vector<Device>& devices) {
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

}  // namespace

absl::StatusOr<std::unique_ptr<Strategy>> CreateStrategy(const StrategyConfig& config,
                                                         const StrategyEnvironment& env) {
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<Device> devices, ParseDeviceList(config.devices));
  const bool multi_worker = env.cluster != nullptr && env.cluster->cluster.num_training_workers() > 1;
  if (config.name == "one_device") {
    if (devices.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "one_device runs on one device, but --devices lists ", devices.size(),
          "; use --strategy mirrored for several"));
    }
    if (multi_worker) {
      return absl::InvalidArgumentError(
          "one_device trains in one process, but TF_CONFIG lists several workers; use "
          "--strategy multi_worker_mirrored or parameter_server");
    }
    SetThreadsPerReplica(env.threads, 1);
    return OneDeviceStrategy::Create(devices[0], *env.optimizer, env.seed);
  }
  if (config.name == "mirrored" || config.name == "multi_worker_mirrored") {
    MirroredStrategy::Options options;
    options.name = config.name;
    options.devices = devices;
    options.cross_device_ops = ResolveCrossDeviceOps(config.cross_device_ops, devices);
    options.bytes_per_pack = config.bytes_per_pack > 0 ? config.bytes_per_pack : kAutoBytesPerPack;
    MESHTRAIN_ASSIGN_OR_RETURN(options.overlap, ResolveOverlap(config.overlap, env.threads, devices));
    options.optimizer = env.optimizer;
    options.seed = env.seed;
    options.abort = env.abort;
    options.tracer = env.tracer;
    if (config.name == "mirrored" && multi_worker) {
      return absl::InvalidArgumentError(
          "mirrored trains in one process, but TF_CONFIG lists several workers; use "
          "--strategy multi_worker_mirrored");
    }
    if (config.name == "multi_worker_mirrored" && multi_worker) {
      if (env.cross_worker == nullptr) {
        return absl::FailedPreconditionError("multi_worker_mirrored needs the cluster's communicator");
      }
      if (config.communication != "auto" && config.communication != "ring" &&
          config.communication != "nccl") {
        return absl::InvalidArgumentError(absl::StrCat(
            "communication '", config.communication, "' is unknown: use auto, ring or nccl"));
      }
      if (config.communication == "nccl" && !env.cross_worker->takes_device_memory()) {
        return absl::FailedPreconditionError(
            "communication 'nccl' needs GPU devices and a meshtrain built with CUDA; use ring");
      }
      options.cross_worker = env.cross_worker;
      options.communication = env.communication;
      options.worker_rank = env.cross_worker->rank();
      options.num_workers = env.cross_worker->world_size();
    }
    SetThreadsPerReplica(env.threads, devices.size());
    MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<MirroredStrategy> strategy,
                               MirroredStrategy::Create(std::move(options)));
    return std::unique_ptr<Strategy>(std::move(strategy));
  }
  if (config.name == "central_storage") {
    const bool any_gpu = std::any_of(devices.begin(), devices.end(),
                                     [](const Device& d) { return !d.is_cpu(); });
    if (any_gpu || !ParseDevice(config.parameter_device).value_or(Device::Cpu()).is_cpu()) {
      return absl::UnimplementedError(
          "central_storage sums gradients in host memory; on GPUs use mirrored (NCCL)");
    }
    if (multi_worker) {
      return absl::InvalidArgumentError(
          "central_storage trains in one process, but TF_CONFIG lists several workers; use "
          "parameter_server to keep variables apart from workers");
    }
    CentralStorageStrategy::Options options;
    options.compute_devices = devices;
    MESHTRAIN_ASSIGN_OR_RETURN(options.parameter_device, ParseDevice(config.parameter_device));
    options.optimizer = env.optimizer;
    options.seed = env.seed;
    options.abort = env.abort;
    options.tracer = env.tracer;
    SetThreadsPerReplica(env.threads, devices.size());
    MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<CentralStorageStrategy> strategy,
                               CentralStorageStrategy::Create(std::move(options)));
    return std::unique_ptr<Strategy>(std::move(strategy));
  }
  if (config.name == "parameter_server") {
    if (devices.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "parameter_server runs one replica per worker, but --devices lists ", devices.size(),
          "; add workers instead"));
    }
    ParameterServerStrategy::Options options;
    options.connect = env.connect_ps;
    options.device = devices[0];
    if (env.cluster != nullptr && !env.cluster->is_local()) {
      options.worker_rank = env.cluster->worker_rank();
      options.num_workers = env.cluster->cluster.num_training_workers();
    }
    options.warmup_steps = env.warmup_steps;
    SetThreadsPerReplica(env.threads, 1);
    MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<ParameterServerStrategy> strategy,
                               ParameterServerStrategy::Create(std::move(options)));
    return std::unique_ptr<Strategy>(std::move(strategy));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "strategy '", config.name,
      "' is unknown: use one_device, mirrored, central_storage, multi_worker_mirrored or "
      "parameter_server"));
}

}  // namespace meshtrain

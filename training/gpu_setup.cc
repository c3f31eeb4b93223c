#include "training/gpu_setup.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/base/status_macros.h"
#include "runtime/cluster/cluster_source.h"
#include "runtime/cluster/env_lookup.h"
#include "runtime/cluster/mpi_resolver.h"
#include "runtime/cluster/slurm_resolver.h"
#include "runtime/cluster/torchrun_resolver.h"

namespace meshtrain {
absl::StatusOr<GpuConfig> GpuConfigFor(const GpuFlags& flags, const std::vector<Device>& devices) {
  GpuConfig config;
  if (flags.logical_gpus < 1 || flags.logical_gpus > 64) {
    return absl::InvalidArgumentError(absl::StrCat("--logical-gpus ", flags.logical_gpus,
                                                   ": use 1 (each GPU is one device) to 64"));
  }
  config.logical_per_physical = static_cast<int>(flags.logical_gpus);
  if (!flags.memory_limit.empty()) {
    MESHTRAIN_ASSIGN_OR_RETURN(config.memory_limit_bytes,
                               ParseByteSize(flags.memory_limit, "gpu-memory-limit"));
  }
  int max_index = -1;
  for (const Device& d : devices) {
    if (!d.is_cpu()) max_index = std::max(max_index, d.index);
  }
  if (flags.local_rank.has_value() && max_index >= 0) {
    const int per_rank = max_index / config.logical_per_physical + 1;
    const std::vector<absl::string_view> visible =
        absl::StrSplit(flags.visible_devices, ',', absl::SkipWhitespace());
    const bool isolated = static_cast<int>(visible.size()) == per_rank;
    config.first_physical = isolated ? 0 : *flags.local_rank * per_rank;
  }
  return config;
}

absl::Status ConfigureGpus(int64_t logical_gpus, absl::string_view memory_limit,
                           const std::vector<Device>& devices) {
  if (!AnyGpu(devices)) {
    if (logical_gpus > 1 || !memory_limit.empty()) {
      return absl::InvalidArgumentError(
          "--logical-gpus and --gpu-memory-limit apply to GPU devices; pass --devices gpu:0,...");
    }
    return absl::OkStatus();
  }
  GpuFlags flags;
  flags.logical_gpus = logical_gpus;
  flags.memory_limit = std::string(memory_limit);
  if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES")) flags.visible_devices = visible;
  const EnvLookup env = ProcessEnvironment();
  const ClusterSource source = ChooseClusterSource(env).source;
  if (source == ClusterSource::kSlurm) {
    MESHTRAIN_ASSIGN_OR_RETURN(SlurmPlacement placement, SlurmPlacementFromEnvironment(env));
    flags.local_rank = placement.local_rank;
  } else if (source == ClusterSource::kTorchrun) {
    MESHTRAIN_ASSIGN_OR_RETURN(TorchrunPlacement placement, TorchrunPlacementFromEnvironment(env));
    flags.local_rank = placement.local_rank;
  } else if (RunningUnderMpi()) {
    MESHTRAIN_ASSIGN_OR_RETURN(MpiPlacement placement, MpiPlacementFromEnvironment());
    flags.local_rank = placement.local_rank;
  }
  MESHTRAIN_ASSIGN_OR_RETURN(GpuConfig config, GpuConfigFor(flags, devices));
  return SetGpuConfig(config);
}

}  // namespace meshtrain

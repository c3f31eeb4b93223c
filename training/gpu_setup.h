// GPU set-up of a training process: its GpuConfig from --logical-gpus,
// --gpu-memory-limit and, under mpirun, srun or torchrun, the local rank: rank k of a host takes
// the GPUs after those of ranks 0..k-1 (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID,
// LOCAL_RANK), so
// `mpirun -np 8` on an 8-GPU host gives each rank its own GPU with
// --devices gpu:0. (The NCCL communicator across workers is the strategy's:
// strategies/cross_worker.h.) Called from the training thread at start-up.
#ifndef MESHTRAIN_TRAINING_GPU_SETUP_H_
#define MESHTRAIN_TRAINING_GPU_SETUP_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/tensor/device.h"
#include "runtime/tensor/gpu_config.h"

namespace meshtrain {

struct GpuFlags {
  int64_t logical_gpus = 1;       // --logical-gpus
  std::string memory_limit;       // --gpu-memory-limit ("" or "0": none)
  std::optional<int> local_rank;  // under mpirun, srun or torchrun
  std::string visible_devices;    // CUDA_VISIBLE_DEVICES ("" when unset)
};

// Pure. Under mpirun (local_rank set) with GPU devices, the first CUDA device
// is local_rank x the physical GPUs `devices` span -- unless
// CUDA_VISIBLE_DEVICES already lists exactly that many (a wrapper gave each
// rank its own GPUs). kInvalidArgument names the flag.
absl::StatusOr<GpuConfig> GpuConfigFor(const GpuFlags& flags, const std::vector<Device>& devices);

// GpuFlags from the environment (the launcher's local rank, CUDA_VISIBLE_DEVICES)
// and the flags, applied with SetGpuConfig when `devices` include a GPU.
absl::Status ConfigureGpus(int64_t logical_gpus, absl::string_view memory_limit,
                           const std::vector<Device>& devices);

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_GPU_SETUP_H_

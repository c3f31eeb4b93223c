// GPU set-up of a training process, apart from the training loop:
//   - the process's GpuConfig from --logical-gpus, --gpu-memory-limit and,
//     under mpirun, the local rank: rank k of a host takes the GPUs after
//     those of ranks 0..k-1 (OMPI_COMM_WORLD_LOCAL_RANK), so `mpirun -np 8`
//     on an 8-GPU host gives each rank its own GPU with --devices gpu:0;
//   - the choice of NCCL for multi_worker_mirrored, and the NCCL communicator
//     across workers, its unique id carried by the mesh's key-value store.
// Called from the training thread at start-up.
#ifndef MESHTRAIN_LAUNCHER_GPU_SETUP_H_
#define MESHTRAIN_LAUNCHER_GPU_SETUP_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/base/abort_signal.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/collective/communicator.h"
#include "runtime/rpc/mesh.h"
#include "runtime/tensor/device.h"
#include "runtime/tensor/gpu_config.h"
#include "strategies/strategy_config.h"

namespace meshtrain {

struct GpuFlags {
  int64_t logical_gpus = 1;        // --logical-gpus
  std::string memory_limit;        // --gpu-memory-limit ("" or "0": none)
  std::optional<int> local_rank;   // under mpirun
  std::string visible_devices;     // CUDA_VISIBLE_DEVICES ("" when unset)
};

// Pure. Under mpirun (local_rank set) with GPU devices, the first CUDA device
// is local_rank x the physical GPUs `devices` span -- unless
// CUDA_VISIBLE_DEVICES already lists exactly that many (a wrapper gave each
// rank its own GPUs). kInvalidArgument names the flag.
absl::StatusOr<GpuConfig> GpuConfigFor(const GpuFlags& flags, const std::vector<Device>& devices);

// GpuFlags from the environment (mpirun's local rank, CUDA_VISIBLE_DEVICES)
// and the flags, applied with SetGpuConfig when `devices` include a GPU.
absl::Status ConfigureGpus(int64_t logical_gpus, absl::string_view memory_limit,
                           const std::vector<Device>& devices);

// multi_worker_mirrored runs its cross-worker sums over NCCL when
// communication is "nccl", or "auto" with every device a GPU in a CUDA build.
bool UseNcclAcrossWorkers(const StrategyConfig& config, const std::vector<Device>& devices);

// The NCCL communicator over `workers` (rank order) for this task, on
// `device`: worker 0 draws the unique id and publishes it under
// "nccl/<name>", the others read it; every wait ends at `timeout` or on abort.
absl::StatusOr<std::unique_ptr<Communicator>> CreateNcclAcrossWorkers(
    Mesh& mesh, const std::vector<TaskId>& workers, Device device, absl::string_view name,
    AbortSignal& abort, absl::Duration timeout);

}  // namespace meshtrain

#endif  // MESHTRAIN_LAUNCHER_GPU_SETUP_H_

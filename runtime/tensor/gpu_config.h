// GpuConfig: how this process's gpu:N devices map onto the CUDA devices it can
// see. CUDA_VISIBLE_DEVICES applies first (CUDA numbers only the visible
// devices 0..V-1); then, with L = logical_per_physical (--logical-gpus),
//   gpu:i  ->  physical device first_physical + i / L, slice i % L of L,
// and each logical device gets its own stream and memory_limit_bytes / L
// (--gpu-memory-limit is per physical device, for this process). L = 2 turns
// one GPU into gpu:0 and gpu:1, so Mirrored can be tried on a single GPU.
// first_physical lets several processes of a host take different GPUs (under
// mpirun: local rank x GPUs per rank).
//
// The configuration is the process's one view of its hardware, like
// CUDA_VISIBLE_DEVICES: the launcher sets it once before any GPU is used, and
// the CUDA device registry freezes it when it places the first device (later
// changes would move memory that tensors already hold). Thread-safe.
#ifndef MESHTRAIN_RUNTIME_TENSOR_GPU_CONFIG_H_
#define MESHTRAIN_RUNTIME_TENSOR_GPU_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshtrain {

struct GpuConfig {
  int logical_per_physical = 1;
  int first_physical = 0;
  int64_t memory_limit_bytes = 0;  // per physical device; 0: the memory free at first use

  std::string ToString() const;  // "2 logical per GPU, from CUDA device 1, limit 8 GiB"
};

struct GpuPlacement {
  int physical = 0;  // CUDA device ordinal (among the visible devices)
  int slice = 0;     // which logical device of that physical device
  int slices = 1;    // logical devices on that physical device
  // This logical device's share of --gpu-memory-limit; 0: slices share the
  // memory free on the device when it is first used.
  int64_t memory_limit_bytes = 0;
};

// Pure. kInvalidArgument for a bad config, kFailedPrecondition when gpu:index
// lands on a device that is not visible (the message names
// CUDA_VISIBLE_DEVICES, --logical-gpus and --devices).
absl::StatusOr<GpuPlacement> PlaceGpu(const GpuConfig& config, int index, int visible_devices);

// "8GiB", "512 MiB", "1.5GB", "4096" (bytes), "0" -> bytes. kInvalidArgument
// names `flag`.
absl::StatusOr<int64_t> ParseByteSize(absl::string_view text, absl::string_view flag);

// Sets the process's configuration: kFailedPrecondition if a GPU has been
// placed already under a different one, kInvalidArgument for a bad config.
absl::Status SetGpuConfig(const GpuConfig& config);
// The configuration now in force (the default until SetGpuConfig).
GpuConfig CurrentGpuConfig();
// The configuration in force, frozen from now on (the CUDA registry calls it
// when it places its first device).
GpuConfig FreezeGpuConfig();

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_GPU_CONFIG_H_

// GPU cross-device ops: CrossDeviceOps for replicas on GPUs, where each
// replica's span is memory of its own (logical) GPU and "holds the sum" means:
// in the order of that device's compute stream, so the optimizer kernels the
// replica queues next read the sum.
//
//   "nccl" on distinct physical GPUs: one in-process NCCL communicator per
//     replica (ncclCommInitAll); each replica thread runs ncclAllReduce on its
//     device's stream and waits for it (WaitForNccl: deadline and abort
//     honoured; an error aborts the communicators). NCCL gives every rank the
//     same bits.
//   "on_device_reduce", the fallback when logical GPUs share a physical GPU
//     (NCCL refuses two ranks on one device):
//       1. every replica records a `ready` event on its stream, publishes its
//          buffer, and meets the others at a barrier;
//       2. replica 0's stream waits for every `ready`, brings buffers of other
//          physical GPUs over (cudaMemcpyPeerAsync, no peer access needed),
//          and one kernel sums all buffers in replica order into replica 0's;
//          replica 0 records `summed`; barrier;
//       3. every other replica's stream waits for `summed` and copies replica
//          0's buffer into its own, recording `copied`; barrier;
//       4. replica 0's stream waits for every `copied` before it may write its
//          buffer again.
//     The host never waits for the GPU; events order the streams.
// With a cross-worker communicator (MultiWorkerMirrored) the local sum lands
// on replica 0 (ncclReduce, or steps 1-2), replica 0 runs the cross-worker
// AllReduceSum on it -- in place when the communicator takes device memory
// (NCCL), else staged through pinned host memory (the ring) -- and then the
// result is spread (ncclBroadcast, or steps 3-4).
//
// After an error the object is broken (every later call fails). Thread-safe as
// CrossDeviceOps requires; `cross_worker` and `abort` (nullable) must outlive it.
#ifndef MESHTRAIN_RUNTIME_COLLECTIVE_NCCL_GPU_CROSS_DEVICE_OPS_H_
#define MESHTRAIN_RUNTIME_COLLECTIVE_NCCL_GPU_CROSS_DEVICE_OPS_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/base/abort_signal.h"
#include "runtime/collective/communicator.h"
#include "runtime/collective/cross_device_ops.h"
#include "runtime/tensor/device.h"

namespace meshtrain {

inline constexpr absl::string_view kOnDeviceReduceName = "on_device_reduce";

// `devices`: one GPU per replica (at most 16), in replica order.
absl::StatusOr<std::unique_ptr<CrossDeviceOps>> CreateGpuCrossDeviceOps(
    const std::vector<Device>& devices, Communicator* cross_worker, AbortSignal* abort);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_COLLECTIVE_NCCL_GPU_CROSS_DEVICE_OPS_H_

// CrossDeviceOps: sums gradients across the replicas (threads) of one process,
// for MirroredStrategy, and, given a cross-worker Communicator, across workers
// too (MultiWorkerMirrored with several replicas per worker).
//
// AllReduce is called concurrently by every replica thread 0..N-1, each with
// its own buffer of the same length; it returns on each thread once every
// buffer holds the sum, bitwise identical in every replica (each element's sum
// is formed once and copied). Implementations, by TensorFlow's names:
//   "reduce_to_one_device": replica 0 sums all buffers into its own, the
//       others copy it back.
//   "hierarchical_copy": a binary tree; at level k replica i (a multiple of
//       2^(k+1)) adds replica i + 2^k's buffer into its own, in parallel over
//       pairs; then the sum is copied down the same tree.
//   "ring": not a ring of messages but its shared-memory equivalent, the fast
//       way with threads: reduce-scatter in parallel over slices (replica r
//       sums slice r of all buffers, in replica order, into its own buffer),
//       then all-gather (each replica copies the other slices from their
//       owners). Every thread works on 1/N of the data in both phases.
// With a cross-worker communicator (world size > 1) each algorithm reduces to
// replica 0's buffer, replica 0 runs comm->AllReduceSum on it (the other
// replicas wait), and the result is copied to every replica: local reduce,
// cross-worker ring, local broadcast.
//
// Replicas on GPUs (`devices` given, all gpu:N) use the GPU cross-device ops
// of runtime/collective/nccl (name "nccl": NCCL across physical GPUs, falling
// back to an on-device reduce for logical GPUs of one physical GPU); their
// spans are device memory. The algorithms above sum host memory and serve CPU
// replicas only.
//
// Replica threads meet at ReplicaBarrier phases (brief spin, then block); every
// wait honours ctx.deadline and the abort signal. After an error the object is
// broken (every later call fails): build a new one. Thread-safe as described;
// `cross_worker` and `abort` (both nullable) must outlive it, and only replica
// 0's thread calls into `cross_worker`.
#ifndef MESHTRAIN_RUNTIME_COLLECTIVE_CROSS_DEVICE_OPS_H_
#define MESHTRAIN_RUNTIME_COLLECTIVE_CROSS_DEVICE_OPS_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "runtime/base/abort_signal.h"
#include "runtime/collective/communicator.h"
#include "runtime/tensor/device.h"

namespace meshtrain {

class CrossDeviceOps {
 public:
  virtual ~CrossDeviceOps() = default;
  virtual absl::string_view name() const = 0;
  virtual int num_replicas() const = 0;
  virtual absl::Status AllReduce(int replica, absl::Span<float> data,
                                 const CollectiveContext& ctx) = 0;
  // How long `replica` has waited for the other replicas, in all (the
  // cross-worker part is the communicator's stats()); any thread.
  virtual absl::Duration blocked(int replica) const { return absl::ZeroDuration(); }
};

// The host algorithms' names, in the order errors list them.
std::vector<absl::string_view> CrossDeviceOpsNames();
// The GPU algorithm's name (TensorFlow's NcclAllReduce).
inline constexpr absl::string_view kNcclCrossDeviceOpsName = "nccl";

// CPU replicas (`devices` empty or all cpu:N): `name` one of
// CrossDeviceOpsNames() (else kInvalidArgument listing them). GPU replicas
// (`devices` all gpu:N, one per replica): `name` must be "nccl";
// kFailedPrecondition in a build without CUDA. num_replicas >= 1.
absl::StatusOr<std::unique_ptr<CrossDeviceOps>> CreateCrossDeviceOps(
    absl::string_view name, int num_replicas, Communicator* cross_worker = nullptr,
    AbortSignal* abort = nullptr, const std::vector<Device>& devices = {});

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_COLLECTIVE_CROSS_DEVICE_OPS_H_

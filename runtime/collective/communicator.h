// Communicator: the collectives a strategy calls across workers, one object per
// rank. The ring implementation (ring_communicator.h) runs over any Transport;
// NCCL implements the same interface on GPUs. Every rank of the group calls the
// same collectives in the same order with the same lengths (the `sizes` of
// AllGather excepted); a mismatch is reported as an error where a transport
// detects it, or as a deadline.
//
// Errors name the collective, its context and the peer: "allreduce 'gradients'
// step 41: shm: worker:2 (pid 812) exited while receiving from worker:2".
// After an error the communicator's transport is broken; recover by building a
// new one. Thread-safety: one thread per Communicator at a time.
#ifndef MESHTRAIN_RUNTIME_COLLECTIVE_COMMUNICATOR_H_
#define MESHTRAIN_RUNTIME_COLLECTIVE_COMMUNICATOR_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "runtime/transport/transport.h"

namespace meshtrain {

// What a collective is for, so errors and deadlines can say so.
struct CollectiveContext {
  int64_t step = 0;
  absl::string_view name;  // "gradients"
  absl::Time deadline = absl::InfiniteFuture();
  // The sum must be float32's, whatever 16-bit wire dtype the communicator
  // was given for gradients (statistics such as batch normalisation's row
  // counts and column sums, where rounding would shift every replica's
  // normalisation).
  bool exact = false;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;

  // Whether the spans may be GPU memory (NCCL: memory of this rank's GPU,
  // with the collective ordered on that device's stream). The ring takes host
  // memory only; callers holding GPU buffers stage them through the host.
  virtual bool takes_device_memory() const { return false; }

  // data = the element-wise sum of every rank's data, bitwise identical on all
  // ranks. In place.
  virtual absl::Status AllReduceSum(absl::Span<float> data, const CollectiveContext& ctx) = 0;

  // data = root's data on every rank (same length everywhere).
  virtual absl::Status Broadcast(absl::Span<std::byte> data, int root,
                                 const CollectiveContext& ctx) = 0;

  // Every rank contributes `mine` (sizes may differ); `all` receives the
  // rank-ordered concatenation, `sizes` each rank's byte count. Both are resized
  // (reuse them across calls to avoid allocating).
  virtual absl::Status AllGather(absl::Span<const std::byte> mine, std::vector<std::byte>* all,
                                 std::vector<size_t>* sizes, const CollectiveContext& ctx) = 0;

  // Returns once every rank has entered the barrier.
  virtual absl::Status Barrier(const CollectiveContext& ctx) = 0;

  // Bytes moved and time blocked on peers since creation (the transport's
  // counters); any thread. Zeros where the implementation does not count.
  virtual TransportStats stats() const { return {}; }
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_COLLECTIVE_COMMUNICATOR_H_

// RingCommunicator: the Communicator over a Transport, with ring algorithms
// that only talk to the left and right neighbours (so a transport connected as
// a ring suffices).
//   AllReduceSum: ring reduce-scatter then all-gather (ring_schedule.h), each
//     step one SendRecv that sends a chunk right while adding the chunk from the
//     left (RecvAction::kAddFloat32, no staging copy in the algorithm); the
//     transport streams each chunk in pieces, so sending and reducing overlap.
//     Two ranks with at most options.exchange_max_bytes exchange the whole
//     buffer in one step instead (one round trip instead of two; each adds the
//     other's copy, and IEEE addition commutes, so both get identical bits).
//   Broadcast: a chain from the root, cut into pieces of
//     options.broadcast_piece_bytes so that every hop forwards one piece while
//     it receives the next.
//   AllGather: sizes first (a ring all-gather of 8-byte counts), then the data
//     by a ring all-gather of variable blocks.
//   Barrier: n - 1 ring steps of one byte (after them every rank has heard,
//     through the chain, from every other).
// 16 bits on the wire (options.wire_dtype, runtime/transport/wire_codec.h):
//   AllReduceSum packs each chunk it sends into a 16-bit message, receives the
//   left neighbour's 16-bit chunk whole (RecvAction::kCopy into a staging
//   buffer) and widens it into the float32 chunk it accumulates: every hop adds
//   in float32 and only the forwarded partial sum is rounded. At the start of
//   the all-gather the rank that completed a chunk encodes it once and also
//   takes the decoded (rounded) values itself; the others forward the received
//   bytes unchanged and decode them, so every rank ends with identical bits. The
//   two-rank exchange sends each rank's encoded buffer and both compute
//   decode(own) + decode(peer), identical by commutativity. Error bound for n
//   ranks (u = 2^-8 for bfloat16, 2^-11 for float16): n roundings of partial
//   sums, |result - sum| <= ((1 + u)^n - 1) x sum of |x_i| (plus float32's
//   own rounding, and for float16 the scaled subnormals, both far smaller).
//   float32 runs the float32 algorithm above, unchanged, and so does a call
//   whose CollectiveContext is `exact`.
// World size 1: AllReduceSum and Barrier are no-ops, Broadcast checks the root,
// AllGather copies.
// Buffers for the exchange are kept and reused; nothing is allocated per call
// once they reached their size. Not thread-safe: one thread drives it.
// `transport` must outlive the communicator.
#ifndef MESHTRAIN_RUNTIME_COLLECTIVE_RING_COMMUNICATOR_H_
#define MESHTRAIN_RUNTIME_COLLECTIVE_RING_COMMUNICATOR_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/collective/communicator.h"
#include "runtime/transport/transport.h"
#include "runtime/transport/wire_codec.h"

namespace meshtrain {

struct RingCommunicatorOptions {
  // Two ranks exchange whole buffers up to this size (0 = always the ring).
  // Measured on shared memory the ring is as fast from 16 KiB on (faster at
  // 64 KiB); the exchange saves one round trip for tiny messages.
  size_t exchange_max_bytes = size_t{8} << 10;
  // Broadcast pipelining unit.
  size_t broadcast_piece_bytes = size_t{512} << 10;
  // How AllReduceSum's chunks travel (float32: the bytes of the floats).
  WireDtype wire_dtype = WireDtype::kFloat32;
};

class RingCommunicator : public Communicator {
 public:
  explicit RingCommunicator(Transport* transport, RingCommunicatorOptions options = {})
      : transport_(transport), options_(options) {}

  int rank() const override { return transport_->rank(); }
  int world_size() const override { return transport_->world_size(); }

  absl::Status AllReduceSum(absl::Span<float> data, const CollectiveContext& ctx) override;
  absl::Status Broadcast(absl::Span<std::byte> data, int root,
                         const CollectiveContext& ctx) override;
  absl::Status AllGather(absl::Span<const std::byte> mine, std::vector<std::byte>* all,
                         std::vector<size_t>* sizes, const CollectiveContext& ctx) override;
  absl::Status Barrier(const CollectiveContext& ctx) override;
  TransportStats stats() const override { return transport_->stats(); }

 private:
  absl::Status RingAllReduce(absl::Span<float> data, absl::Time deadline);
  absl::Status ExchangeAllReduce(absl::Span<float> data, absl::Time deadline);
  // The same two algorithms with 16-bit chunks on the wire.
  absl::Status EncodedRingAllReduce(absl::Span<float> data, absl::Time deadline);
  absl::Status EncodedExchangeAllReduce(absl::Span<float> data, absl::Time deadline);
  absl::Status BroadcastChain(absl::Span<std::byte> data, int root, absl::Time deadline);
  // Ring all-gather of n blocks of `buffer` at `offsets` (n + 1 entries).
  absl::Status RingAllGather(std::byte* buffer, absl::Span<const size_t> offsets,
                             absl::Time deadline);

  Transport* const transport_;
  const RingCommunicatorOptions options_;
  std::vector<float> exchange_buffer_;
  // 16-bit wire: every chunk's message, at wire_offsets_ (n + 1 entries).
  std::vector<std::byte> wire_buffer_;
  std::vector<size_t> wire_offsets_;
  std::vector<uint64_t> gather_sizes_;
  std::vector<size_t> gather_offsets_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_COLLECTIVE_RING_COMMUNICATOR_H_

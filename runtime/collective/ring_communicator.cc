#include "runtime/collective/ring_communicator.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/collective/ring_schedule.h"

namespace meshtrain {
namespace {

// Prefixes an error with the collective and its context; OK stays OK without
// building a string (this runs on every call).
absl::Status InContext(absl::Status status, absl::string_view op, const CollectiveContext& ctx) {
  if (status.ok()) return status;
  return Annotate(status, absl::StrCat(op, " '", ctx.name, "' step ", ctx.step));
}

absl::Span<std::byte> Bytes(float* data, size_t n) {
  return {reinterpret_cast<std::byte*>(data), n * sizeof(float)};
}

}  // namespace

absl::Status RingCommunicator::AllReduceSum(absl::Span<float> data, const CollectiveContext& ctx) {
  if (world_size() == 1 || data.empty()) return absl::OkStatus();
  const bool exchange =
      world_size() == 2 && data.size() * sizeof(float) <= options_.exchange_max_bytes;
  absl::Status status;
  if (options_.wire_dtype == WireDtype::kFloat32 || ctx.exact) {
    status = exchange ? ExchangeAllReduce(data, ctx.deadline) : RingAllReduce(data, ctx.deadline);
  } else {
    status = exchange ? EncodedExchangeAllReduce(data, ctx.deadline)
                      : EncodedRingAllReduce(data, ctx.deadline);
  }
  return InContext(std::move(status), "allreduce", ctx);
}

absl::Status RingCommunicator::RingAllReduce(absl::Span<float> data, absl::Time deadline) {
  const int n = world_size(), r = rank();
  const int right = (r + 1) % n, left = (r + n - 1) % n;
  for (int step = 0; step < RingSteps(n); ++step) {
    RingStep plan = PlanRingStep(r, n, step);
    ChunkRange send = RingChunk(data.size(), n, plan.send_chunk);
    ChunkRange recv = RingChunk(data.size(), n, plan.recv_chunk);
    MESHTRAIN_RETURN_IF_ERROR(transport_->SendRecv(
        {.send_to = right,
         .send = Bytes(data.data() + send.begin, send.size()),
         .recv_from = left,
         .recv = Bytes(data.data() + recv.begin, recv.size()),
         .action = plan.accumulate ? RecvAction::kAddFloat32 : RecvAction::kCopy,
         .deadline = deadline}));
  }
  return absl::OkStatus();
}

absl::Status RingCommunicator::ExchangeAllReduce(absl::Span<float> data, absl::Time deadline) {
  // The send must not read what the add already changed: send a copy.
  if (exchange_buffer_.size() < data.size()) exchange_buffer_.resize(data.size());
  std::memcpy(exchange_buffer_.data(), data.data(), data.size() * sizeof(float));
  const int peer = 1 - rank();
  return transport_->SendRecv({.send_to = peer,
                               .send = Bytes(exchange_buffer_.data(), data.size()),
                               .recv_from = peer,
                               .recv = Bytes(data.data(), data.size()),
                               .action = RecvAction::kAddFloat32,
                               .deadline = deadline});
}

absl::Status RingCommunicator::EncodedRingAllReduce(absl::Span<float> data, absl::Time deadline) {
  const WireDtype dtype = options_.wire_dtype;
  const int n = world_size(), r = rank();
  const int right = (r + 1) % n, left = (r + n - 1) % n;
  // Chunk c's message lives at wire_offsets_[c]; every offset is even, so
  // each message's 16-bit values are aligned.
  wire_offsets_.resize(n + 1);
  wire_offsets_[0] = 0;
  for (int c = 0; c < n; ++c) {
    wire_offsets_[c + 1] = wire_offsets_[c] + WireBytes(dtype, RingChunk(data.size(), n, c).size());
  }
  if (wire_buffer_.size() < wire_offsets_[n]) wire_buffer_.resize(wire_offsets_[n]);
  auto message = [&](int c) {
    return absl::MakeSpan(wire_buffer_.data() + wire_offsets_[c],
                          wire_offsets_[c + 1] - wire_offsets_[c]);
  };
  auto values = [&](int c) {
    ChunkRange range = RingChunk(data.size(), n, c);
    return data.subspan(range.begin, range.size());
  };
  for (int step = 0; step < RingSteps(n); ++step) {
    RingStep plan = PlanRingStep(r, n, step);
    // 1. Reduce-scatter: pack the partial sum this rank forwards. At the first
    //    all-gather step the chunk this rank completed is packed once and
    //    decoded back, so this rank keeps the rounded values the others get.
    //    Later all-gather steps forward the message received the step before.
    if (plan.accumulate || step == n - 1) {
      EncodeWire(dtype, values(plan.send_chunk), message(plan.send_chunk));
      if (!plan.accumulate) {
        MESHTRAIN_RETURN_IF_ERROR(
            DecodeWire(dtype, message(plan.send_chunk), values(plan.send_chunk), false));
      }
    }
    // 2. Exchange whole messages (send and receive chunks differ, so the
    //    spans do not overlap).
    MESHTRAIN_RETURN_IF_ERROR(transport_->SendRecv({.send_to = right,
                                                    .send = message(plan.send_chunk),
                                                    .recv_from = left,
                                                    .recv = message(plan.recv_chunk),
                                                    .action = RecvAction::kCopy,
                                                    .deadline = deadline}));
    // 3. Widen: add into the float32 partial sum, or take the final values.
    MESHTRAIN_RETURN_IF_ERROR(
        DecodeWire(dtype, message(plan.recv_chunk), values(plan.recv_chunk), plan.accumulate));
  }
  return absl::OkStatus();
}

absl::Status RingCommunicator::EncodedExchangeAllReduce(absl::Span<float> data,
                                                        absl::Time deadline) {
  const WireDtype dtype = options_.wire_dtype;
  const size_t bytes = WireBytes(dtype, data.size());
  if (wire_buffer_.size() < 2 * bytes) wire_buffer_.resize(2 * bytes);
  absl::Span<std::byte> mine = absl::MakeSpan(wire_buffer_.data(), bytes);
  absl::Span<std::byte> theirs = absl::MakeSpan(wire_buffer_.data() + bytes, bytes);
  EncodeWire(dtype, data, mine);
  const int peer = 1 - rank();
  MESHTRAIN_RETURN_IF_ERROR(transport_->SendRecv({.send_to = peer,
                                                  .send = mine,
                                                  .recv_from = peer,
                                                  .recv = theirs,
                                                  .action = RecvAction::kCopy,
                                                  .deadline = deadline}));
  // decode(own) + decode(peer) on one rank, decode(peer) + decode(own) on the
  // other: the same bits, as IEEE addition commutes.
  MESHTRAIN_RETURN_IF_ERROR(DecodeWire(dtype, mine, data, false));
  return DecodeWire(dtype, theirs, data, true);
}

absl::Status RingCommunicator::Broadcast(absl::Span<std::byte> data, int root,
                                         const CollectiveContext& ctx) {
  if (root < 0 || root >= world_size()) {
    return InContext(absl::InvalidArgumentError(absl::StrCat(
                         "root ", root, " out of range for world size ", world_size())),
                     "broadcast", ctx);
  }
  if (world_size() == 1) return absl::OkStatus();
  return InContext(BroadcastChain(data, root, ctx.deadline), "broadcast", ctx);
}

absl::Status RingCommunicator::BroadcastChain(absl::Span<std::byte> data, int root,
                                              absl::Time deadline) {
  // The chain root, root + 1, ..., root - 1; piece k moves one hop per step, so
  // a middle rank forwards piece k - 1 while it receives piece k.
  const int n = world_size(), r = rank();
  const int position = (r - root + n) % n;
  const int right = position == n - 1 ? -1 : (r + 1) % n;
  const int left = position == 0 ? -1 : (r + n - 1) % n;
  const size_t piece = std::max<size_t>(options_.broadcast_piece_bytes, 1);
  const size_t pieces = std::max<size_t>(1, (data.size() + piece - 1) / piece);
  auto piece_span = [&](size_t k) {
    size_t begin = std::min(data.size(), k * piece);
    return data.subspan(begin, std::min(piece, data.size() - begin));
  };
  if (left < 0) {
    for (size_t k = 0; k < pieces; ++k) {
      MESHTRAIN_RETURN_IF_ERROR(transport_->Send(right, piece_span(k), deadline));
    }
    return absl::OkStatus();
  }
  for (size_t k = 0; k <= pieces; ++k) {
    SendRecvOp op{.deadline = deadline};
    if (k < pieces) {
      op.recv_from = left;
      op.recv = piece_span(k);
    }
    if (right >= 0 && k >= 1) {
      op.send_to = right;
      op.send = piece_span(k - 1);
    }
    if (op.send_to < 0 && op.recv_from < 0) continue;
    MESHTRAIN_RETURN_IF_ERROR(transport_->SendRecv(op));
  }
  return absl::OkStatus();
}

absl::Status RingCommunicator::AllGather(absl::Span<const std::byte> mine,
                                         std::vector<std::byte>* all, std::vector<size_t>* sizes,
                                         const CollectiveContext& ctx) {
  const int n = world_size(), r = rank();
  // 1. Every rank's byte count.
  gather_sizes_.assign(n, 0);
  gather_sizes_[r] = mine.size();
  gather_offsets_.resize(n + 1);
  for (int i = 0; i <= n; ++i) gather_offsets_[i] = i * sizeof(uint64_t);
  MESHTRAIN_RETURN_IF_ERROR(
      InContext(RingAllGather(reinterpret_cast<std::byte*>(gather_sizes_.data()), gather_offsets_,
                              ctx.deadline),
                "allgather (sizes)", ctx));
  // 2. The data, at offsets from those counts.
  sizes->resize(n);
  gather_offsets_[0] = 0;
  for (int i = 0; i < n; ++i) {
    (*sizes)[i] = gather_sizes_[i];
    gather_offsets_[i + 1] = gather_offsets_[i] + gather_sizes_[i];
  }
  all->resize(gather_offsets_[n]);
  if (!mine.empty()) std::memcpy(all->data() + gather_offsets_[r], mine.data(), mine.size());
  return InContext(RingAllGather(all->data(), gather_offsets_, ctx.deadline), "allgather", ctx);
}

absl::Status RingCommunicator::RingAllGather(std::byte* buffer, absl::Span<const size_t> offsets,
                                             absl::Time deadline) {
  // Step s: send block (r - s) right, receive block (r - s - 1) from the left.
  const int n = world_size(), r = rank();
  const int right = (r + 1) % n, left = (r + n - 1) % n;
  auto block = [&](int i) {
    i = ((i % n) + n) % n;
    return absl::Span<std::byte>(buffer + offsets[i], offsets[i + 1] - offsets[i]);
  };
  for (int s = 0; s < n - 1; ++s) {
    MESHTRAIN_RETURN_IF_ERROR(transport_->SendRecv({.send_to = right,
                                                    .send = block(r - s),
                                                    .recv_from = left,
                                                    .recv = block(r - s - 1),
                                                    .deadline = deadline}));
  }
  return absl::OkStatus();
}

absl::Status RingCommunicator::Barrier(const CollectiveContext& ctx) {
  const int n = world_size(), r = rank();
  const std::byte token[1] = {std::byte{1}};
  std::byte got[1];
  for (int s = 0; s < n - 1; ++s) {
    MESHTRAIN_RETURN_IF_ERROR(InContext(transport_->SendRecv({.send_to = (r + 1) % n,
                                                              .send = token,
                                                              .recv_from = (r + n - 1) % n,
                                                              .recv = got,
                                                              .deadline = ctx.deadline}),
                                        "barrier", ctx));
  }
  return absl::OkStatus();
}

}  // namespace meshtrain

// GrpcTransport: the Transport (runtime/transport/transport.h) over gRPC, used
// for rpc_layer=grpc and wherever no faster data path applies.
//
// A message from rank a to rank b (usually a collective's chunk) travels as
// pieces of at most `max_piece_bytes`; each piece is one SendChunk RPC on a
// data channel (its own TCP connection, apart from heartbeats) to b's server,
// which stores it in b's mailbox for this transport's name, keyed by (a's
// task, seq). seq counts pieces per ordered pair from 0; each piece also
// carries its offset and the size of the whole message, which the receiver
// checks against the size it expects.
//
// SendRecv, as numbered steps:
//   1. issue the first `max_pieces_in_flight` pieces of the outgoing message;
//      from then on each piece's acknowledgement (its gRPC callback) issues the
//      next, so at most that many are unacknowledged at any time;
//   2. take the incoming pieces from the mailbox in seq order as they come,
//      copying or adding each into the destination;
//   3. wait until every piece sent is acknowledged (stored at the receiver);
//      on deadline or abort, cancel those in flight and wait for their
//      callbacks.
// Two ranks sending to each other progress at once whatever the size.
//
// Why pieces and a window (docs/mesh.md has the measurements): a whole large
// message in one call is buffered whole at the receiver in memory gRPC
// allocates for it, which glibc gives back to the kernel once freed, so every
// large message paid a page fault per 4 KiB on both sides (about 20 us each
// on the VMs measured: 64 MiB allreduces at 0.02-0.1 GB/s). Bounded pieces in
// flight keep the memory on both sides small and reused, and overlap the
// receiver's sum with the transfer of the next piece.
//
// Copies: one on the sending side, into a pooled buffer that stays paged in
// (SendBufferPool; the caller's buffer is free again when SendRecv returns,
// whatever gRPC still holds), none on the receiving side beyond the final copy
// or float32 sum into the destination.
//
// After SendRecv fails, the pair's sequence numbers no longer agree: the
// transport must be replaced, not reused. One thread drives a transport at a
// time; the abort signal may fire from any thread and ends every wait.
#ifndef MESHTRAIN_RUNTIME_RPC_GRPC_TRANSPORT_H_
#define MESHTRAIN_RUNTIME_RPC_GRPC_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "runtime/base/abort_signal.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/rpc/channel_cache.h"
#include "runtime/rpc/mailbox.h"
#include "runtime/rpc/peer_directory.h"
#include "runtime/transport/transport.h"
#include "runtime/transport/transport_counters.h"

namespace meshtrain {

// Defaults of the piece size and window (measured in docs/mesh.md).
inline constexpr size_t kDefaultGrpcPieceBytes = size_t{512} << 10;
inline constexpr int kDefaultGrpcPiecesInFlight = 2;

struct GrpcTransportOptions {
  std::string name;           // equal on every rank of the group; unique per task
  std::vector<TaskId> group;  // rank order
  int rank = -1;              // this task's position in `group`
  uint64_t incarnation = 0;   // this task's
  // What follows must outlive the transport (the Mesh owns them).
  std::shared_ptr<const PeerDirectory> peers;
  ChannelCache* channels = nullptr;
  MailboxRegistry* mailboxes = nullptr;  // this task's server's
  AbortSignal* abort = nullptr;
  // Piece size and window (see the file comment; measured in docs/mesh.md).
  // max_piece_bytes is a positive multiple of 4, max_pieces_in_flight >= 1.
  size_t max_piece_bytes = kDefaultGrpcPieceBytes;
  int max_pieces_in_flight = kDefaultGrpcPiecesInFlight;
};

class GrpcTransport final : public Transport {
 public:
  static absl::StatusOr<std::unique_ptr<GrpcTransport>> Create(GrpcTransportOptions options);
  ~GrpcTransport() override;

  int rank() const override { return options_.rank; }
  int world_size() const override { return static_cast<int>(options_.group.size()); }
  std::string PeerName(int rank) const override;
  absl::string_view kind() const override { return "grpc"; }
  absl::Status SendRecv(const SendRecvOp& op) override;
  TransportStats stats() const override { return counters_.Snapshot(); }

 private:
  struct Links;      // a generic stub per peer
  struct SendState;  // the pieces of the current SendRecv's outgoing message
  struct ChunkCall;  // one SendChunk RPC

  GrpcTransport(GrpcTransportOptions options, std::shared_ptr<Mailbox> mailbox);
  // `name` ("grpc transport 't' on worker:0") starts every error.
  absl::Status CheckOp(const SendRecvOp& op, const std::string& name) const;
  // Step 1 of SendRecv: starts the pieces' calls, or deposits the message into
  // this task's own mailbox when sending to itself (its failure lands in
  // `*deposited`).
  absl::Status IssueSends(const SendRecvOp& op, const std::string& name, absl::Status* deposited);
  // Starts the next pieces while fewer than the window are in flight.
  // Called by SendRecv and by the calls' callbacks, never with state->mu held.
  static void StartPieces(const std::shared_ptr<SendState>& state);
  // Step 2.
  absl::Status Receive(const SendRecvOp& op);
  // Step 3: waits until the receiver stored every piece sent.
  absl::Status AwaitAcknowledgements(const SendRecvOp& op, const std::string& name);

  const GrpcTransportOptions options_;
  const std::shared_ptr<Mailbox> mailbox_;
  std::unique_ptr<Links> links_;
  std::shared_ptr<SendState> send_state_;  // shared with the calls' callbacks
  std::vector<uint64_t> next_send_seq_;    // per destination rank
  std::vector<uint64_t> next_recv_seq_;    // per source rank
  int abort_callback_ = -1;
  TransportCounters counters_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_GRPC_TRANSPORT_H_

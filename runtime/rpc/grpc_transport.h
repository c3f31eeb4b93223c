// GrpcTransport: the Transport (runtime/transport/transport.h) over gRPC, used
// for rpc_layer=grpc and wherever no faster data path applies.
//
// A message from rank a to rank b (usually a collective's chunk) travels as
// pieces of at most `max_piece_bytes` on one long-lived StreamChunks stream
// from a to b (opened at a's first send to b, on a data channel: its own TCP
// connection, apart from heartbeats). b's server stores each piece in b's
// mailbox for this transport's name, keyed by (a's task, seq). seq counts
// pieces per ordered pair from 0; each piece also carries its offset and the
// size of the whole message, which the receiver checks against the size it
// expects. The receiver ends the stream with an error at the first piece it
// rejects (a stale incarnation, a malformed header); the sender's current or
// next SendRecv returns that error.
//
// SendRecv, as numbered steps:
//   1. start writing the outgoing message's pieces to the stream, one write at
//      a time: each write's completion (a gRPC callback) starts the next;
//   2. take the incoming pieces from the mailbox in seq order as they come,
//      copying or adding each into the destination;
//   3. wait until every piece is written (handed to gRPC's transport, under
//      HTTP/2 flow control) or the stream ended; on deadline or abort, cancel
//      the stream and wait for gRPC to let go of it.
// Two ranks sending to each other progress at once whatever the size.
//
// Why a stream (docs/mesh.md has the measurements): a unary call per piece
// cost about 10 thread hand-offs inside gRPC (a new call at the receiver,
// headers, a response and trailers back), which on the VMs measured made a
// 512 KiB piece cost about 300 us. A message on an open stream is DATA frames
// only. Why pieces: a whole large message is buffered whole at the receiver in
// memory gRPC allocates for it, which glibc gives back to the kernel once
// freed, so every large message paid a page fault per 4 KiB on both sides;
// bounded pieces keep the memory on both sides small and reused, and the
// receiver adds piece k while piece k+1 travels.
//
// Copies: one on the sending side, into a pooled buffer that stays paged in
// (SendBufferPool; the caller's buffer is free again when SendRecv returns,
// whatever gRPC still holds), none on the receiving side beyond the final copy
// or float32 sum into the destination.
//
// Destruction half-closes each stream and waits (up to a grace) until the
// receiver has read it to the end, so pieces written by a SendRecv that
// returned are not lost; after a failed SendRecv it cancels them instead.
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
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "runtime/base/abort_signal.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/rpc/channel_cache.h"
#include "runtime/rpc/mailbox.h"
#include "runtime/rpc/peer_directory.h"
#include "runtime/transport/transport.h"
#include "runtime/transport/transport_counters.h"

namespace meshtrain {

class SendBufferPool;

// The default piece size (measured in docs/mesh.md).
inline constexpr size_t kDefaultGrpcPieceBytes = size_t{512} << 10;

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
  // Piece size (see the file comment; measured in docs/mesh.md): a positive
  // multiple of 4.
  size_t max_piece_bytes = kDefaultGrpcPieceBytes;
  // How long destruction waits for a receiver to read a stream to its end.
  absl::Duration close_grace = absl::Seconds(5);
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
  class ChunkStream;  // the stream to one destination

  GrpcTransport(GrpcTransportOptions options, std::shared_ptr<Mailbox> mailbox);
  // `name` ("grpc transport 't' on worker:0") starts every error.
  absl::Status CheckOp(const SendRecvOp& op, const std::string& name) const;
  // Step 1 of SendRecv: starts writing the pieces, or deposits the message
  // into this task's own mailbox when sending to itself (its failure lands in
  // `*deposited`).
  absl::Status IssueSends(const SendRecvOp& op, const std::string& name, absl::Status* deposited);
  // Step 2.
  absl::Status Receive(const SendRecvOp& op);
  // Step 3.
  absl::Status AwaitWrites(const SendRecvOp& op, const std::string& name);
  // The stream to `rank`, opened on first use.
  ChunkStream& StreamTo(int rank);

  const GrpcTransportOptions options_;
  const std::shared_ptr<Mailbox> mailbox_;
  std::shared_ptr<SendBufferPool> pool_;               // the streams' copies; made on first use
  std::vector<std::unique_ptr<ChunkStream>> streams_;  // per destination rank; null until used
  std::vector<uint64_t> next_send_seq_;                // per destination rank
  std::vector<uint64_t> next_recv_seq_;                // per source rank
  bool failed_ = false;                                // a SendRecv failed: cancel, not close
  int abort_callback_ = -1;
  TransportCounters counters_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_GRPC_TRANSPORT_H_

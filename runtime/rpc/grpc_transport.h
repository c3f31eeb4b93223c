// GrpcTransport: the Transport (runtime/transport/transport.h) over gRPC, used
// for rpc_layer=grpc and wherever no faster data path applies.
//
// A message from rank a to rank b (usually a collective's chunk) travels as one
// piece, or several where it exceeds `max_piece_bytes`; each piece is one
// SendChunk RPC on a data channel (its own TCP connection, apart from
// heartbeats) to b's server, which stores it in b's mailbox for this
// transport's name, keyed by (a's task, seq). seq counts pieces per ordered
// pair from 0; each piece also carries its offset and the size of the whole
// message, which the receiver checks against the size it expects. SendRecv
// issues all its pieces asynchronously, then takes the incoming ones from the
// mailbox as they come, then waits for the sends to be acknowledged (stored at
// the receiver): two ranks sending to each other progress at once whatever the
// size.
//
// Copies: one on the sending side (the payload into the gRPC slice, so the
// caller's buffer is free again when SendRecv returns), none on the receiving
// side beyond the final copy or float32 sum into the destination.
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

struct ChunkMeta;  // runtime/rpc/chunk_codec.h

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
  // One large call beats several concurrent ones on a connection (measured:
  // 16 MiB as 4 MiB chunks took 2.7x as long as one call), so chunks stay big;
  // the limit only keeps a message under gRPC's 2 GiB.
  size_t max_piece_bytes = size_t{64} << 20;
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
  struct SendState;  // the chunks in flight of the current SendRecv

  struct ChunkCall;  // one SendChunk RPC in flight

  GrpcTransport(GrpcTransportOptions options, std::shared_ptr<Mailbox> mailbox);
  // `name` ("grpc transport 't' on worker:0") starts every error.
  absl::Status CheckOp(const SendRecvOp& op, const std::string& name) const;
  // Step 1 of SendRecv: one call per chunk, or a deposit into this task's own
  // mailbox when sending to itself (its failure lands in `*deposited`).
  absl::Status IssueSends(const SendRecvOp& op, const std::string& name,
                          std::vector<std::unique_ptr<ChunkCall>>* calls, absl::Status* deposited);
  std::unique_ptr<ChunkCall> StartChunkCall(const SendRecvOp& op, const ChunkMeta& meta,
                                            absl::Span<const std::byte> payload,
                                            const std::string& send_op);
  // Step 2.
  absl::Status Receive(const SendRecvOp& op);
  // Step 3: waits until the receiver stored every chunk of `calls`.
  absl::Status AwaitAcknowledgements(const SendRecvOp& op, const std::string& name,
                                     const std::vector<std::unique_ptr<ChunkCall>>& calls);

  const GrpcTransportOptions options_;
  const std::shared_ptr<Mailbox> mailbox_;
  std::unique_ptr<Links> links_;
  std::shared_ptr<SendState> send_state_;
  std::vector<uint64_t> next_send_seq_;  // per destination rank
  std::vector<uint64_t> next_recv_seq_;  // per source rank
  int abort_callback_ = -1;
  TransportCounters counters_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_GRPC_TRANSPORT_H_

#include "runtime/rpc/grpc_transport.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "runtime/base/status_macros.h"
#include "runtime/rpc/chunk_codec.h"
#include "runtime/rpc/grpc_status.h"
#include "runtime/rpc/malloc_policy.h"
#include "runtime/rpc/send_buffer_pool.h"

namespace meshtrain {
namespace {

constexpr char kStreamChunksMethod[] = "/meshtrain.proto.Collective/StreamChunks";

}  // namespace

// The StreamChunks stream to one destination. Send() hands it a message; its
// pieces are written one at a time, each write's completion starting the next
// (gRPC allows one write in flight per stream). A hold keeps gRPC from ending
// the reactor while this side may still start writes; it is released when a
// write fails (the stream ended: OnDone then brings the receiver's status), on
// cancellation, or in Close().
class GrpcTransport::ChunkStream final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ChunkStream(std::shared_ptr<grpc::Channel> channel, std::shared_ptr<SendBufferPool> pool,
              AbortSignal* abort)
      : stub_(std::move(channel)), pool_(std::move(pool)), abort_(abort) {
    // No deadline on the stream: each SendRecv bounds its own wait.
    context_.set_wait_for_ready(true);
    stub_.PrepareBidiStreamingCall(&context_, kStreamChunksMethod, grpc::StubOptions(), this);
    AddHold();
    StartCall();
    // Waits on mu_ must see an abort.
    abort_callback_ = abort_->AddCallback([this] { absl::MutexLock lock(&mu_); });
  }

  ~ChunkStream() override { abort_->RemoveCallback(abort_callback_); }

  // Step 1: starts writing `payload` as pieces of `piece_bytes`, the first
  // with `meta`'s seq, from offset 0. `payload` must stay valid until Await
  // returns. Fails if the stream has ended.
  absl::Status Send(ChunkMeta meta, absl::Span<const std::byte> payload, size_t piece_bytes,
                    std::string send_op, absl::Time deadline) {
    {
      absl::MutexLock lock(&mu_);
      send_op_ = std::move(send_op);
      if (ended_) return EndedLocked(deadline);
      meta_ = std::move(meta);
      meta_.offset = 0;
      payload_ = payload;
      piece_bytes_ = piece_bytes;
      // A zero-length message is still one (empty) piece.
      pieces_left_ = std::max<size_t>(1, (payload.size() + piece_bytes - 1) / piece_bytes);
      writing_ = true;
    }
    WriteNextPiece();
    return absl::OkStatus();
  }

  // Step 3: waits until every piece is written, the stream ended, the abort
  // signal fired or `deadline` passed; cancels the stream in the last two
  // cases. When it returns no write reads the payload any more.
  absl::Status Await(absl::Time deadline, const std::string& name, const std::string& timeout) {
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !writing_ || ended_ || abort_->aborted();
    };
    mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
    if (ended_) return EndedLocked(deadline);
    if (!writing_) return absl::OkStatus();
    const absl::Status status =
        abort_->aborted() ? Annotate(abort_->status(), name) : absl::DeadlineExceededError(timeout);
    CancelLocked();
    return status;
  }

  // Half-closes the stream and waits up to `grace` until the receiver read it
  // to its end; cancels it after `grace`, or at once if `cancel`.
  void Close(bool cancel, absl::Duration grace) {
    absl::MutexLock lock(&mu_);
    if (!ended_ && !cancel && !writing_) {
      ended_ = true;
      status_ = absl::CancelledError("the stream was closed");
      mu_.Unlock();
      StartWritesDone();
      mu_.Lock();
      ReleaseHoldLocked();
      mu_.AwaitWithTimeout(absl::Condition(&done_), grace);
    }
    if (!done_) CancelLocked();
  }

  void OnWriteDone(bool ok) override {
    if (ok) {
      WriteNextPiece();
      return;
    }
    // The stream ended (the receiver finished it, or it was cancelled); OnDone
    // brings the status once the hold is gone.
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    writing_ = false;
    ended_ = true;
    ReleaseHoldLocked();
  }

  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    if (!ended_ || status_.ok()) {
      status_ = status.ok() ? absl::UnavailableError("the receiver ended the stream")
                            : FromGrpcStatus(status, "the receiver ended the stream");
    }
    ended_ = true;
    writing_ = false;
    write_in_flight_ = false;
    done_ = true;
  }

 private:
  // Writes the next piece, or marks the message written.
  void WriteNextPiece() {
    ChunkMeta meta;
    absl::Span<const std::byte> piece;
    {
      absl::MutexLock lock(&mu_);
      write_in_flight_ = false;
      if (!writing_ || ended_) return;
      if (pieces_left_ == 0) {
        writing_ = false;
        return;
      }
      meta = meta_;
      piece = payload_.subspan(meta.offset, std::min(piece_bytes_, payload_.size() - meta.offset));
      ++meta_.seq;
      meta_.offset += piece.size();
      --pieces_left_;
      write_in_flight_ = true;
    }
    // Outside the lock: the copy takes time, and gRPC may run OnWriteDone inline.
    request_ = EncodeChunk(std::move(meta), piece.empty() ? grpc::Slice() : pool_->Copy(piece));
    StartWrite(&request_);
  }

  bool Settled() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_ || !write_in_flight_; }

  // The ended stream's status, naming the send; waits for OnDone until
  // `deadline` (it brings the receiver's reason), then cancels.
  absl::Status EndedLocked(absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    mu_.AwaitWithDeadline(absl::Condition(&done_), deadline);
    if (!done_) CancelLocked();
    return Annotate(status_, send_op_);
  }

  // Cancels the stream and waits until gRPC is done with it (promptly, after
  // TryCancel); the stream is ended from then on.
  void CancelLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    writing_ = false;
    if (!ended_) {
      ended_ = true;
      status_ = absl::CancelledError("the stream was cancelled after a failed exchange");
    }
    if (done_) return;
    mu_.Unlock();  // gRPC may run a callback inline
    context_.TryCancel();
    mu_.Lock();
    mu_.Await(absl::Condition(this, &ChunkStream::Settled));
    ReleaseHoldLocked();
    mu_.Await(absl::Condition(&done_));
  }

  void ReleaseHoldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (hold_released_) return;
    hold_released_ = true;
    mu_.Unlock();  // may run OnDone inline
    RemoveHold();
    mu_.Lock();
  }

  grpc::GenericStub stub_;
  const std::shared_ptr<SendBufferPool> pool_;
  AbortSignal* const abort_;
  int abort_callback_ = -1;
  grpc::ClientContext context_;
  grpc::ByteBuffer request_;  // the piece being written (one at a time)
  absl::Mutex mu_;
  ChunkMeta meta_ ABSL_GUARDED_BY(mu_);  // seq and offset: of the next piece
  absl::Span<const std::byte> payload_ ABSL_GUARDED_BY(mu_);
  size_t piece_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t pieces_left_ ABSL_GUARDED_BY(mu_) = 0;
  std::string send_op_ ABSL_GUARDED_BY(mu_);           // names the send in errors
  bool writing_ ABSL_GUARDED_BY(mu_) = false;          // a message is being written
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;  // a StartWrite awaits OnWriteDone
  bool hold_released_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;   // no more writes: failed, closed or cancelled
  bool done_ ABSL_GUARDED_BY(mu_) = false;    // OnDone ran
  absl::Status status_ ABSL_GUARDED_BY(mu_);  // why it ended
};

absl::StatusOr<std::unique_ptr<GrpcTransport>> GrpcTransport::Create(GrpcTransportOptions options) {
  const std::string op = absl::StrCat("grpc transport '", options.name, "'");
  if (options.peers == nullptr || options.channels == nullptr || options.mailboxes == nullptr ||
      options.abort == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": peers, channels, mailboxes and abort signal are required"));
  }
  const int size = static_cast<int>(options.group.size());
  if (options.rank < 0 || options.rank >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": rank ", options.rank, " outside a group of ", size));
  }
  if (options.max_piece_bytes == 0 || options.max_piece_bytes % 4 != 0) {
    // Multiples of 4 keep every chunk of a float32 message whole floats.
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": max_piece_bytes must be a positive multiple of 4"));
  }
  std::set<TaskId> seen;
  for (const TaskId& task : options.group) {
    if (!options.peers->Find(task).has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": ", task.ToString(), " is not in the cluster"));
    }
    if (!seen.insert(task).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": ", task.ToString(), " appears twice in the group"));
    }
  }
  MESHTRAIN_ASSIGN_OR_RETURN(std::shared_ptr<Mailbox> mailbox,
                             options.mailboxes->Claim(options.name));
  KeepFreedMemoryMapped();
  return std::unique_ptr<GrpcTransport>(new GrpcTransport(std::move(options), std::move(mailbox)));
}

GrpcTransport::GrpcTransport(GrpcTransportOptions options, std::shared_ptr<Mailbox> mailbox)
    : options_(std::move(options)),
      mailbox_(std::move(mailbox)),
      streams_(options_.group.size()),
      next_send_seq_(options_.group.size(), 0),
      next_recv_seq_(options_.group.size(), 0) {
  // A mailbox wait must see an abort; the mailbox outlives a late callback.
  abort_callback_ = options_.abort->AddCallback([mailbox = mailbox_] { mailbox->Wake(); });
}

GrpcTransport::~GrpcTransport() {
  const bool cancel = failed_ || options_.abort->aborted();
  for (auto& stream : streams_) {
    if (stream != nullptr) stream->Close(cancel, options_.close_grace);
  }
  options_.abort->RemoveCallback(abort_callback_);
  options_.mailboxes->Release(options_.name);
}

GrpcTransport::ChunkStream& GrpcTransport::StreamTo(int rank) {
  if (streams_[rank] == nullptr) {
    const std::string& address = options_.peers->cluster().address(options_.group[rank]);
    // Enough for the piece being written and one whose buffer gRPC still holds.
    if (pool_ == nullptr) pool_ = SendBufferPool::Create(2 * options_.max_piece_bytes);
    streams_[rank] = std::make_unique<ChunkStream>(
        options_.channels->Get(address, ChannelPurpose::kData), pool_, options_.abort);
  }
  return *streams_[rank];
}

std::string GrpcTransport::PeerName(int rank) const {
  if (rank < 0 || rank >= world_size()) return absl::StrCat("rank ", rank, " (not in the group)");
  return DescribeTask(options_.peers->cluster(), options_.group[rank]);
}

absl::Status GrpcTransport::SendRecv(const SendRecvOp& op) {
  const std::string name = absl::StrCat("grpc transport '", options_.name, "' on ",
                                        options_.group[options_.rank].ToString());
  MESHTRAIN_RETURN_IF_ERROR(CheckOp(op, name));
  if (options_.abort->aborted()) return Annotate(options_.abort->status(), name);

  // 1. Start writing the outgoing message's pieces.
  absl::Status send_status;
  bool sending = false;
  if (op.send_to >= 0) {
    MESHTRAIN_RETURN_IF_ERROR(IssueSends(op, name, &send_status));
    sending = op.send_to != options_.rank;
  }

  // 2. Take the incoming pieces as they arrive, into the destination.
  absl::Status recv_status;
  if (op.recv_from >= 0) recv_status = Receive(op);

  // 3. Wait until every piece is written.
  if (sending) send_status.Update(AwaitWrites(op, name));
  failed_ = failed_ || !recv_status.ok() || !send_status.ok();
  // A receive error usually explains the send's (an abort); report it first.
  if (!recv_status.ok()) return recv_status;
  if (send_status.ok()) counters_.CountCompleted(op);
  return send_status;
}

absl::Status GrpcTransport::CheckOp(const SendRecvOp& op, const std::string& name) const {
  if (op.send_to < -1 || op.send_to >= world_size() || op.recv_from < -1 ||
      op.recv_from >= world_size()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": send_to ", op.send_to, " / recv_from ",
                                                   op.recv_from, " outside a group of ",
                                                   world_size()));
  }
  if (op.action == RecvAction::kAddFloat32 && op.recv.size() % 4 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": float32 sum into ", op.recv.size(), " bytes, not a multiple of 4"));
  }
  return absl::OkStatus();
}

absl::Status GrpcTransport::IssueSends(const SendRecvOp& op, const std::string& name,
                                       absl::Status* deposited) {
  const TaskId& to = options_.group[op.send_to];
  const std::string send_op =
      absl::StrCat(name, ": send ", op.send.size(), " bytes to ", PeerName(op.send_to));
  ChunkMeta meta;
  meta.transport = options_.name;
  meta.source = options_.group[options_.rank];
  meta.source_incarnation = options_.incarnation;
  meta.destination = to;
  meta.destination_incarnation =
      op.send_to == options_.rank ? options_.incarnation : options_.peers->incarnation(to);
  meta.total_bytes = op.send.size();
  if (meta.destination_incarnation == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(send_op, ": the peer has not registered with the coordination service"));
  }
  const size_t piece = options_.max_piece_bytes;
  // A zero-length message is still one (empty) piece.
  const size_t pieces = std::max<size_t>(1, (op.send.size() + piece - 1) / piece);
  meta.seq = next_send_seq_[op.send_to];
  next_send_seq_[op.send_to] += pieces;
  if (op.send_to == options_.rank) {
    // To itself: straight into the mailbox, as the service would.
    for (size_t i = 0; i < pieces; ++i, ++meta.seq) {
      meta.offset = i * piece;
      const size_t n = std::min(piece, op.send.size() - meta.offset);
      ReceivedChunk chunk;
      chunk.meta = meta;
      chunk.meta.payload_bytes = n;
      chunk.slices.emplace_back(op.send.data() + meta.offset, n);
      deposited->Update(mailbox_->Deposit(std::move(chunk)));
    }
    return absl::OkStatus();
  }
  meta.offset = 0;
  absl::Status started =
      StreamTo(op.send_to).Send(std::move(meta), op.send, piece, send_op, op.deadline);
  if (!started.ok()) failed_ = true;
  return started;
}

absl::Status GrpcTransport::AwaitWrites(const SendRecvOp& op, const std::string& name) {
  const absl::Time waiting = absl::Now();
  absl::Status status =
      streams_[op.send_to]->Await(op.deadline, name,
                                  absl::StrCat(name, ": ", PeerName(op.send_to), " did not take ",
                                               op.send.size(), " bytes before the deadline"));
  counters_.AddBlocked(absl::Now() - waiting);
  return status;
}

absl::Status GrpcTransport::Receive(const SendRecvOp& op) {
  const TaskId& from = options_.group[op.recv_from];
  size_t received = 0;
  do {
    const uint64_t seq = next_recv_seq_[op.recv_from]++;
    const std::string recv_op = absl::StrCat(
        "grpc transport '", options_.name, "' on ", options_.group[options_.rank].ToString(),
        ": receive ", op.recv.size(), " bytes (chunk ", seq, ") from ", PeerName(op.recv_from));
    const absl::Time waiting = absl::Now();
    absl::StatusOr<ReceivedChunk> chunk = mailbox_->Take(from, seq, op.deadline, options_.abort);
    counters_.AddBlocked(absl::Now() - waiting);
    if (!chunk.ok()) return Annotate(chunk.status(), recv_op);
    const ChunkMeta& meta = chunk->meta;
    if (meta.total_bytes != op.recv.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(recv_op, ": the peer sent a ", meta.total_bytes,
                       "-byte message; both sides must agree on its size"));
    }
    if (meta.offset != received) {
      return absl::InvalidArgumentError(
          absl::StrCat(recv_op, ": chunk at offset ", meta.offset, ", expected offset ", received));
    }
    if (op.action == RecvAction::kAddFloat32 && meta.payload_bytes % 4 != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(recv_op, ": a float32 chunk of ", meta.payload_bytes, " bytes"));
    }
    MESHTRAIN_RETURN_IF_ERROR(Annotate(
        ApplyPayload(*chunk, op.recv.subspan(received, meta.payload_bytes), op.action), recv_op));
    received += meta.payload_bytes;
  } while (received < op.recv.size());
  return absl::OkStatus();
}

}  // namespace meshtrain

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

constexpr char kSendChunkMethod[] = "/meshtrain.proto.Collective/SendChunk";

}  // namespace

// One SendChunk call; gRPC needs all three alive until its callback ran.
struct GrpcTransport::ChunkCall {
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
};

struct GrpcTransport::Links {
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;  // null for this rank
};

// The outgoing message of the SendRecv in progress. Set by IssueSends; the
// calls' callbacks read `payload` only while `in_flight` > 0, and SendRecv
// returns only once it is 0 and no piece will start, so the caller's buffer
// outlives every read of it.
struct GrpcTransport::SendState {
  std::shared_ptr<SendBufferPool> pool;
  absl::Mutex mu;
  grpc::GenericStub* stub ABSL_GUARDED_BY(mu) = nullptr;
  ChunkMeta meta ABSL_GUARDED_BY(mu);  // seq and offset: of the next piece
  absl::Span<const std::byte> payload ABSL_GUARDED_BY(mu);
  size_t piece_bytes ABSL_GUARDED_BY(mu) = 0;
  int window ABSL_GUARDED_BY(mu) = 1;
  absl::Time deadline ABSL_GUARDED_BY(mu);
  std::string send_op ABSL_GUARDED_BY(mu);  // names the send in errors
  size_t pieces_left ABSL_GUARDED_BY(mu) = 0;
  int in_flight ABSL_GUARDED_BY(mu) = 0;
  bool stopped ABSL_GUARDED_BY(mu) = false;  // a piece failed, or cancelled
  absl::Status error ABSL_GUARDED_BY(mu);    // the first failed piece's
  std::vector<std::unique_ptr<ChunkCall>> calls ABSL_GUARDED_BY(mu);  // of this SendRecv
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
  if (options.max_pieces_in_flight < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": max_pieces_in_flight must be at least 1"));
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
      links_(std::make_unique<Links>()),
      send_state_(std::make_shared<SendState>()),
      next_send_seq_(options_.group.size(), 0),
      next_recv_seq_(options_.group.size(), 0) {
  // Enough for the window's pieces (and one more whose buffer gRPC still holds).
  send_state_->pool = SendBufferPool::Create(
      options_.max_piece_bytes * static_cast<size_t>(options_.max_pieces_in_flight + 1));
  for (int r = 0; r < world_size(); ++r) {
    if (r == options_.rank) {
      links_->stubs.push_back(nullptr);
      continue;
    }
    const std::string& address = options_.peers->cluster().address(options_.group[r]);
    links_->stubs.push_back(std::make_unique<grpc::GenericStub>(
        options_.channels->Get(address, ChannelPurpose::kData)));
  }
  // Both kinds of wait must see an abort; the captured objects outlive a late call.
  abort_callback_ = options_.abort->AddCallback([mailbox = mailbox_, state = send_state_] {
    mailbox->Wake();
    absl::MutexLock lock(&state->mu);
  });
}

GrpcTransport::~GrpcTransport() {
  options_.abort->RemoveCallback(abort_callback_);
  options_.mailboxes->Release(options_.name);
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

  // 1. Start the outgoing message's first pieces; acknowledgements start the rest.
  absl::Status send_status;
  bool sending = false;
  if (op.send_to >= 0) {
    MESHTRAIN_RETURN_IF_ERROR(IssueSends(op, name, &send_status));
    sending = op.send_to != options_.rank;
  }

  // 2. Take the incoming pieces as they arrive, into the destination.
  absl::Status recv_status;
  if (op.recv_from >= 0) recv_status = Receive(op);

  // 3. Wait until every piece sent is stored at the receiver.
  if (sending) send_status.Update(AwaitAcknowledgements(op, name));
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
  {
    absl::MutexLock lock(&send_state_->mu);
    SendState& state = *send_state_;
    state.stub = links_->stubs[op.send_to].get();
    meta.offset = 0;
    state.meta = std::move(meta);
    state.payload = op.send;
    state.piece_bytes = piece;
    state.window = options_.max_pieces_in_flight;
    state.deadline = op.deadline;
    state.send_op = send_op;
    state.pieces_left = pieces;
    state.in_flight = 0;
    state.stopped = false;
    state.error = absl::OkStatus();
    state.calls.clear();
  }
  StartPieces(send_state_);
  return absl::OkStatus();
}

void GrpcTransport::StartPieces(const std::shared_ptr<SendState>& state) {
  while (true) {
    ChunkCall* call;
    ChunkMeta meta;
    absl::Span<const std::byte> payload;
    grpc::GenericStub* stub;
    std::string send_op;
    {
      absl::MutexLock lock(&state->mu);
      if (state->stopped || state->pieces_left == 0 || state->in_flight >= state->window) return;
      // Reserve the piece: from here SendRecv waits for its callback.
      meta = state->meta;
      const size_t n = std::min(state->piece_bytes, state->payload.size() - meta.offset);
      payload = state->payload.subspan(meta.offset, n);
      ++state->meta.seq;
      state->meta.offset += n;
      --state->pieces_left;
      ++state->in_flight;
      state->calls.push_back(std::make_unique<ChunkCall>());
      call = state->calls.back().get();
      call->context.set_deadline(absl::ToChronoTime(state->deadline));
      call->context.set_wait_for_ready(true);
      stub = state->stub;
      send_op = state->send_op;
    }
    // Outside the lock: the copy takes time, and gRPC may run a callback inline.
    call->request = EncodeChunk(meta, payload.empty() ? grpc::Slice() : state->pool->Copy(payload));
    stub->UnaryCall(&call->context, kSendChunkMethod, grpc::StubOptions(), &call->request,
                    &call->response, [state, call, send_op, seq = meta.seq](grpc::Status status) {
                      call->request.Clear();  // the pooled buffer may go back now
                      {
                        absl::MutexLock lock(&state->mu);
                        if (!status.ok()) {
                          state->stopped = true;
                          if (state->error.ok()) {
                            state->error =
                                FromGrpcStatus(status, absl::StrCat(send_op, " (chunk ", seq, ")"));
                          }
                        }
                        --state->in_flight;
                      }
                      StartPieces(state);
                    });
  }
}

// On deadline or abort, cancels the calls still outstanding; gRPC then
// completes them promptly. Returns the first error, and clears the calls' one.
absl::Status GrpcTransport::AwaitAcknowledgements(const SendRecvOp& op, const std::string& name) {
  AbortSignal* abort = options_.abort;
  SendState& state = *send_state_;
  auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
    return state.in_flight == 0 && (state.pieces_left == 0 || state.stopped);
  };
  auto done = [&]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) { return settled() || abort->aborted(); };
  std::vector<ChunkCall*> to_cancel;
  {
    absl::MutexLock lock(&state.mu);
    const absl::Time waiting = absl::Now();
    state.mu.AwaitWithDeadline(absl::Condition(&done), op.deadline);
    counters_.AddBlocked(absl::Now() - waiting);
    if (!settled()) {
      state.stopped = true;  // no piece starts any more
      for (auto& call : state.calls) to_cancel.push_back(call.get());
    }
  }
  absl::Status status;
  if (!to_cancel.empty()) {
    // Outside the lock, since gRPC may run a cancelled call's callback inline;
    // the calls stay alive in state.calls until the end of this function.
    for (ChunkCall* call : to_cancel) call->context.TryCancel();
    if (abort->aborted()) {
      status = Annotate(abort->status(), name);
    } else {
      status = absl::DeadlineExceededError(absl::StrCat(name, ": ", PeerName(op.send_to),
                                                        " did not acknowledge ", op.send.size(),
                                                        " bytes before the deadline"));
    }
  }
  absl::MutexLock lock(&state.mu);
  // After TryCancel gRPC completes every call promptly.
  state.mu.Await(absl::Condition(&settled));
  status.Update(state.error);
  state.error = absl::OkStatus();
  state.calls.clear();
  state.payload = {};
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

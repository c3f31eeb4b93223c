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

struct GrpcTransport::SendState {
  absl::Mutex mu;
  int outstanding ABSL_GUARDED_BY(mu) = 0;
  absl::Status error ABSL_GUARDED_BY(mu);  // the first failed chunk's
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
  return std::unique_ptr<GrpcTransport>(new GrpcTransport(std::move(options), std::move(mailbox)));
}

GrpcTransport::GrpcTransport(GrpcTransportOptions options, std::shared_ptr<Mailbox> mailbox)
    : options_(std::move(options)),
      mailbox_(std::move(mailbox)),
      links_(std::make_unique<Links>()),
      send_state_(std::make_shared<SendState>()),
      next_send_seq_(options_.group.size(), 0),
      next_recv_seq_(options_.group.size(), 0) {
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

  // 1. Issue every chunk of the outgoing message without waiting.
  std::vector<std::unique_ptr<ChunkCall>> calls;
  absl::Status send_status;
  if (op.send_to >= 0) MESHTRAIN_RETURN_IF_ERROR(IssueSends(op, name, &calls, &send_status));

  // 2. Take the incoming chunks as they arrive, into the destination.
  absl::Status recv_status;
  if (op.recv_from >= 0) recv_status = Receive(op);

  // 3. Wait until every chunk sent is stored at the receiver.
  if (!calls.empty()) send_status.Update(AwaitAcknowledgements(op, name, calls));
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
                                       std::vector<std::unique_ptr<ChunkCall>>* calls,
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
  size_t offset = 0;
  do {
    const size_t n = std::min(options_.max_piece_bytes, op.send.size() - offset);
    meta.seq = next_send_seq_[op.send_to]++;
    meta.offset = offset;
    if (op.send_to == options_.rank) {
      // To itself: straight into the mailbox, as the service would.
      ReceivedChunk chunk;
      chunk.meta = meta;
      chunk.meta.payload_bytes = n;
      chunk.slices.emplace_back(op.send.data() + offset, n);
      deposited->Update(mailbox_->Deposit(std::move(chunk)));
    } else {
      calls->push_back(StartChunkCall(op, meta, op.send.subspan(offset, n), send_op));
    }
    offset += n;
  } while (offset < op.send.size());
  return absl::OkStatus();
}

std::unique_ptr<GrpcTransport::ChunkCall> GrpcTransport::StartChunkCall(
    const SendRecvOp& op, const ChunkMeta& meta, absl::Span<const std::byte> payload,
    const std::string& send_op) {
  auto call = std::make_unique<ChunkCall>();
  call->request = EncodeChunk(meta, payload);
  call->context.set_deadline(absl::ToChronoTime(op.deadline));
  call->context.set_wait_for_ready(true);
  {
    absl::MutexLock lock(&send_state_->mu);
    ++send_state_->outstanding;
  }
  links_->stubs[op.send_to]->UnaryCall(
      &call->context, kSendChunkMethod, grpc::StubOptions(), &call->request, &call->response,
      [state = send_state_, send_op, seq = meta.seq](grpc::Status status) {
        absl::MutexLock lock(&state->mu);
        if (!status.ok() && state->error.ok()) {
          state->error = FromGrpcStatus(status, absl::StrCat(send_op, " (chunk ", seq, ")"));
        }
        --state->outstanding;
      });
  return call;
}

// On deadline or abort, cancels the calls still outstanding; gRPC then
// completes them promptly. Returns the first error, and clears the calls' one.
absl::Status GrpcTransport::AwaitAcknowledgements(
    const SendRecvOp& op, const std::string& name,
    const std::vector<std::unique_ptr<ChunkCall>>& calls) {
  absl::Status status;
  AbortSignal* abort = options_.abort;
  absl::MutexLock lock(&send_state_->mu);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_state_->mu) {
    return send_state_->outstanding == 0 || abort->aborted();
  };
  const absl::Time waiting = absl::Now();
  send_state_->mu.AwaitWithDeadline(absl::Condition(&done), op.deadline);
  counters_.AddBlocked(absl::Now() - waiting);
  if (send_state_->outstanding > 0) {
    for (auto& call : calls) call->context.TryCancel();
    auto finished = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_state_->mu) {
      return send_state_->outstanding == 0;
    };
    send_state_->mu.Await(absl::Condition(&finished));
    if (abort->aborted()) {
      status.Update(Annotate(abort->status(), name));
    } else {
      status.Update(absl::DeadlineExceededError(
          absl::StrCat(name, ": ", PeerName(op.send_to), " did not acknowledge ", op.send.size(),
                       " bytes before the deadline")));
    }
  }
  status.Update(send_state_->error);
  send_state_->error = absl::OkStatus();
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

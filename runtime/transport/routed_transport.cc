#include "runtime/transport/routed_transport.h"

#include <cstdint>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "runtime/transport/shm_transport.h"

namespace meshtrain {
namespace {

// The op's error: `earlier` is the side that finished (and failed) first. A
// kAborted error is a consequence (another task failed and raised the abort),
// so the other side's error, the root cause, wins over it.
absl::Status FirstError(absl::Status earlier, absl::Status later) {
  if (earlier.ok()) return later;
  if (later.ok()) return earlier;
  if (absl::IsAborted(earlier) && !absl::IsAborted(later)) return later;
  return earlier;
}

absl::Status CheckOptions(const RoutedTransportOptions& o) {
  const std::string what = absl::StrCat("routed transport (", o.kind, ")");
  if (o.parts.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": no parts"));
  for (const auto& part : o.parts) {
    if (part == nullptr) return absl::InvalidArgumentError(absl::StrCat(what, ": a null part"));
  }
  const int rank = o.parts[0]->rank(), n = o.parts[0]->world_size();
  for (const auto& part : o.parts) {
    if (part->rank() != rank || part->world_size() != n) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": parts disagree on rank/world size (",
                                                     rank, "/", n, " and ", part->rank(), "/",
                                                     part->world_size(), ")"));
    }
  }
  if (static_cast<int>(o.route.size()) != n) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", o.route.size(), " routes for world size ", n));
  }
  for (int peer = 0; peer < n; ++peer) {
    const int part = o.route[peer];
    if (part < kNoRoute || part >= static_cast<int>(o.parts.size()) ||
        (peer == rank && part != kNoRoute)) {
      return absl::InvalidArgumentError(absl::StrCat(what, " on rank ", rank, ": bad route ", part,
                                                     " for peer ", peer, " (", o.parts.size(),
                                                     " parts)"));
    }
  }
  if (!o.peer_names.empty() && static_cast<int>(o.peer_names.size()) != n) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", o.peer_names.size(), " peer names for world size ", n));
  }
  return absl::OkStatus();
}

}  // namespace

RingNeighboursByHost SplitRingNeighboursByHost(int rank,
                                               const std::vector<std::string>& host_identities) {
  RingNeighboursByHost split;
  for (int peer : RingNeighbours(rank, static_cast<int>(host_identities.size()))) {
    if (host_identities[peer] == host_identities[rank]) {
      split.same_host.push_back(peer);
    } else {
      split.other_hosts.push_back(peer);
    }
  }
  return split;
}

RoutedTransport::RoutedTransport(RoutedTransportOptions options)
    : kind_(std::move(options.kind)),
      rank_(options.parts[0]->rank()),
      world_size_(options.parts[0]->world_size()),
      parts_(std::move(options.parts)),
      route_(std::move(options.route)),
      peer_names_(std::move(options.peer_names)) {}

absl::StatusOr<std::unique_ptr<RoutedTransport>> RoutedTransport::Create(
    RoutedTransportOptions options) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  auto transport = absl::WrapUnique(new RoutedTransport(std::move(options)));
  if (transport->parts_.size() > 1) {
    RoutedTransport* t = transport.get();
    transport->helper_ = std::thread([t] { t->HelperLoop(); });
  }
  return transport;
}

RoutedTransport::~RoutedTransport() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (helper_.joinable()) helper_.join();
}

std::string RoutedTransport::PeerName(int rank) const {
  if (rank >= 0 && rank < world_size_) {
    if (!peer_names_.empty()) return peer_names_[rank];
    if (route_[rank] != kNoRoute) return parts_[route_[rank]]->PeerName(rank);
  }
  return absl::StrCat("rank ", rank);
}

std::string RoutedTransport::Describe() const {
  return absl::StrCat("routed transport (", kind_, ") on rank ", rank_);
}

TransportStats RoutedTransport::stats() const {
  TransportStats sum;
  for (const auto& part : parts_) {
    const TransportStats s = part->stats();
    sum.bytes_sent += s.bytes_sent;
    sum.bytes_received += s.bytes_received;
    sum.blocked += s.blocked;
  }
  return sum;
}

absl::Status RoutedTransport::CheckOp(const SendRecvOp& op) const {
  for (int peer : {op.send_to, op.recv_from}) {
    if (peer < -1 || peer >= world_size_ || peer == rank_) {
      return absl::InvalidArgumentError(absl::StrCat(Describe(), ": bad peer (send_to ", op.send_to,
                                                     ", recv_from ", op.recv_from, ", world size ",
                                                     world_size_, ")"));
    }
    if (peer >= 0 && route_[peer] == kNoRoute) {
      return absl::InvalidArgumentError(
          absl::StrCat(Describe(), ": no route to peer ", peer, " (", PeerName(peer), ")"));
    }
  }
  // Checked here too: a split op must not start its send before its receive
  // turns out to be malformed.
  if (op.recv_from >= 0 && op.action == RecvAction::kAddFloat32 &&
      (op.recv.size() % sizeof(float) != 0 ||
       reinterpret_cast<uintptr_t>(op.recv.data()) % alignof(float) != 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        Describe(), ": kAddFloat32 needs an aligned float buffer, got ", op.recv.size(), " bytes"));
  }
  return absl::OkStatus();
}

absl::Status RoutedTransport::SendRecv(const SendRecvOp& op) {
  if (absl::Status s = CheckOp(op); !s.ok()) return s;
  const int send_part = op.send_to >= 0 ? route_[op.send_to] : kNoRoute;
  const int recv_part = op.recv_from >= 0 ? route_[op.recv_from] : kNoRoute;
  if (send_part != kNoRoute && recv_part != kNoRoute && send_part != recv_part) {
    return SplitSendRecv(op);
  }
  // One part moves the whole op; with neither side present, any part does.
  const int part = send_part != kNoRoute ? send_part : recv_part;
  return parts_[part != kNoRoute ? part : 0]->SendRecv(op);
}

absl::Status RoutedTransport::SplitSendRecv(const SendRecvOp& op) {
  // Step 1: post the send.
  {
    absl::MutexLock lock(&mu_);
    job_ = SendJob{parts_[route_[op.send_to]].get(),
                   SendRecvOp{.send_to = op.send_to, .send = op.send, .deadline = op.deadline}};
    send_done_ = false;
  }
  // Step 2: receive meanwhile.
  absl::Status recv_status = parts_[route_[op.recv_from]]->SendRecv(
      {.recv_from = op.recv_from, .recv = op.recv, .action = op.action, .deadline = op.deadline});
  // Step 3: the send reads op.send until it is done.
  absl::MutexLock lock(&mu_);
  const bool send_failed_first = send_done_ && !send_status_.ok();
  mu_.Await(absl::Condition(&send_done_));
  // Step 4.
  absl::Status send_status = std::move(send_status_);
  send_status_ = absl::OkStatus();
  return send_failed_first ? FirstError(std::move(send_status), std::move(recv_status))
                           : FirstError(std::move(recv_status), std::move(send_status));
}

void RoutedTransport::HelperLoop() {
  mu_.Lock();
  while (true) {
    mu_.Await(absl::Condition(this, &RoutedTransport::HelperHasWork));
    if (!job_.has_value()) break;  // stopping
    const SendJob job = *job_;
    mu_.Unlock();
    absl::Status status = job.part->SendRecv(job.op);
    mu_.Lock();
    job_.reset();
    send_status_ = std::move(status);
    send_done_ = true;
  }
  mu_.Unlock();
}

}  // namespace meshtrain

#include "runtime/transport/shm_transport.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/status_macros.h"
#include "runtime/transport/futex.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define MESHTRAIN_CPU_RELAX() _mm_pause()
#else
#define MESHTRAIN_CPU_RELAX() std::atomic_signal_fence(std::memory_order_seq_cst)
#endif

namespace meshtrain {
namespace {

constexpr size_t kLine = ShmLink::kLine;

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

bool ValidPrefix(absl::string_view prefix) {
  if (prefix.empty() || prefix.size() > 200) return false;
  for (char c : prefix) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) return false;
  }
  return true;
}

}  // namespace

std::vector<int> RingNeighbours(int rank, int world_size) {
  std::vector<int> peers;
  if (world_size < 2) return peers;
  int right = (rank + 1) % world_size, left = (rank + world_size - 1) % world_size;
  peers.push_back(right);
  if (left != right) peers.push_back(left);
  std::sort(peers.begin(), peers.end());
  return peers;
}

std::vector<int> AllPeers(int rank, int world_size) {
  std::vector<int> peers;
  for (int r = 0; r < world_size; ++r) {
    if (r != rank) peers.push_back(r);
  }
  return peers;
}

ShmTransport::ShmTransport(ShmTransportOptions options) : options_(std::move(options)) {
  unsigned cores = std::thread::hardware_concurrency();
  if (cores != 0 && options_.world_size > static_cast<int>(cores)) {
    options_.spin = absl::ZeroDuration();
  }
}

ShmTransport::~ShmTransport() {
  if (options_.abort != nullptr && abort_callback_ >= 0) {
    options_.abort->RemoveCallback(abort_callback_);
  }
  for (auto& link : links_) {
    if (link != nullptr) link->UnlinkIfPeerNeverAttached();
  }
}

std::string ShmTransport::PeerName(int rank) const {
  if (rank >= 0 && rank < static_cast<int>(options_.peer_names.size())) {
    return options_.peer_names[rank];
  }
  return absl::StrCat("rank ", rank);
}

absl::StatusOr<std::unique_ptr<ShmTransport>> ShmTransport::Create(
    const ShmTransportOptions& options) {
  const int n = options.world_size;
  if (n < 1 || options.rank < 0 || options.rank >= n) {
    return absl::InvalidArgumentError(
        absl::StrCat("shm transport: rank ", options.rank, " out of range for world size ", n));
  }
  if (!ValidPrefix(options.job_prefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat("shm transport: job_prefix '", options.job_prefix,
                     "' must be 1 to 200 characters of [A-Za-z0-9_.-]"));
  }
  if (options.ring_bytes < 4096 || (options.ring_bytes & (options.ring_bytes - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("shm transport: ring_bytes ", options.ring_bytes,
                                                   " must be a power of two >= 4096"));
  }
  if (options.piece_bytes < kLine || options.piece_bytes % kLine != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shm transport: piece_bytes ", options.piece_bytes, " must be a positive multiple of 64"));
  }
  if (!options.peer_names.empty() && static_cast<int>(options.peer_names.size()) != n) {
    return absl::InvalidArgumentError(absl::StrCat("shm transport: ", options.peer_names.size(),
                                                   " peer names for world size ", n));
  }
  for (int peer : options.peers) {
    if (peer < 0 || peer >= n || peer == options.rank) {
      return absl::InvalidArgumentError(absl::StrCat("shm transport on rank ", options.rank,
                                                     ": bad peer ", peer, " (world size ", n, ")"));
    }
  }
  auto transport = absl::WrapUnique(new ShmTransport(options));
  transport->links_.resize(n);
  MESHTRAIN_RETURN_IF_ERROR(transport->ConnectAll());
  if (options.abort != nullptr) {
    ShmTransport* t = transport.get();
    // Wake our own sleeps: they re-check the abort signal when they wake.
    transport->abort_callback_ = options.abort->AddCallback([t] {
      for (auto& link : t->links_) {
        if (link != nullptr) link->WakeSelf();
      }
    });
  }
  return transport;
}

absl::Status ShmTransport::ConnectAll() {
  std::vector<int> peers = options_.peers;
  std::sort(peers.begin(), peers.end());
  peers.erase(std::unique(peers.begin(), peers.end()), peers.end());
  for (int peer : peers) {
    MESHTRAIN_ASSIGN_OR_RETURN(links_[peer],
                               ShmLink::Open({.rank = options_.rank,
                                              .peer = peer,
                                              .job_prefix = options_.job_prefix,
                                              .peer_name = PeerName(peer),
                                              .ring_bytes = options_.ring_bytes,
                                              .connect_deadline = options_.connect_deadline,
                                              .abort = options_.abort}));
  }
  for (int peer : peers) {
    MESHTRAIN_RETURN_IF_ERROR(links_[peer]->AwaitPeer(options_.connect_deadline, options_.abort));
  }
  return absl::OkStatus();
}

absl::Status ShmTransport::CheckOp(const SendRecvOp& op, ShmLink** out, ShmLink** in) const {
  const int n = options_.world_size;
  auto bad_peer = [&](int peer) {
    return peer < -1 || peer >= n || peer == options_.rank ||
           (peer >= 0 && links_[peer] == nullptr);
  };
  if (bad_peer(op.send_to) || bad_peer(op.recv_from)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shm SendRecv on rank ", options_.rank, ": send_to ", op.send_to, ", recv_from ",
        op.recv_from, " not among the connected peers [", absl::StrJoin(options_.peers, ","),
        "]; list them in ShmTransportOptions::peers"));
  }
  if (op.action == RecvAction::kAddFloat32 &&
      (op.recv.size() % sizeof(float) != 0 ||
       reinterpret_cast<uintptr_t>(op.recv.data()) % alignof(float) != 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shm SendRecv: kAddFloat32 needs an aligned float buffer, got ", op.recv.size(), " bytes"));
  }
  *out = op.send_to >= 0 ? links_[op.send_to].get() : nullptr;
  *in = op.recv_from >= 0 ? links_[op.recv_from].get() : nullptr;
  return absl::OkStatus();
}

absl::Status ShmTransport::SendRecv(const SendRecvOp& op) {
  if (!broken_.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("shm transport unusable after an earlier error: ", broken_.message()));
  }
  ShmLink* out;
  ShmLink* in;
  MESHTRAIN_RETURN_IF_ERROR(CheckOp(op, &out, &in));
  ShmLink::SendProgress s{op.send.data(), op.send.size(), RoundUp(op.send.size(), kLine)};
  ShmLink::RecvProgress r{op.recv.data(), op.recv.size(), RoundUp(op.recv.size(), kLine)};
  r.action = op.action;
  bool sending = out != nullptr, receiving = in != nullptr;
  absl::Duration slept = absl::ZeroDuration();
  while (sending || receiving) {
    bool progressed = false;
    if (sending) {
      progressed |= out->StepSend(s, options_.piece_bytes);
      sending = !s.finished();
    }
    if (receiving) {
      absl::Status status = in->StepRecv(r, options_.piece_bytes, &progressed);
      if (!status.ok()) {
        broken_ = status;
        return status;
      }
      receiving = !r.finished();
    }
    if (!progressed && (sending || receiving)) {
      const absl::Time waiting = absl::Now();
      absl::Status status = Wait(out, sending, in, receiving, op.deadline, &slept);
      counters_.AddBlocked(absl::Now() - waiting);
      if (!status.ok()) {
        broken_ = status;
        return status;
      }
    }
  }
  counters_.CountCompleted(op);
  return absl::OkStatus();
}

absl::Status ShmTransport::Wait(ShmLink* out, bool want_send, ShmLink* in, bool want_recv,
                                absl::Time deadline, absl::Duration* slept) {
  auto can_progress = [&] {
    return (want_send && out->SendSpace() >= kLine) || (want_recv && in->RecvAvailable() >= kLine);
  };
  // 1. Spin: the peer is usually a few microseconds behind.
  {
    using Clock = std::chrono::steady_clock;
    auto spin_until = Clock::now() + absl::ToChronoNanoseconds(options_.spin);
    for (int i = 0;; ++i) {
      if (can_progress()) return absl::OkStatus();
      if ((i & 31) == 31 && Clock::now() >= spin_until) break;
      MESHTRAIN_CPU_RELAX();
    }
  }
  // 2. Sleep on our doorbells, waking to check the deadline, the abort signal
  //    and the peers' processes.
  ShmLink::Bell* bell_a = want_send ? &out->my_bell() : &in->my_bell();
  ShmLink::Bell* bell_b = (want_send && want_recv && in != out) ? &in->my_bell() : nullptr;
  auto describe = [&] {
    std::string what;
    if (want_recv) absl::StrAppend(&what, "receiving from ", PeerName(in->peer));
    if (want_send) {
      absl::StrAppend(&what, want_recv ? " and " : "", "sending to ", PeerName(out->peer),
                      " (its ring is full)");
    }
    return what;
  };
  absl::Duration since_check = absl::ZeroDuration();
  while (true) {
    if (options_.abort != nullptr && options_.abort->aborted()) return options_.abort->status();
    absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("shm: no progress ", describe(),
                                                      " before the deadline (slept ",
                                                      absl::FormatDuration(*slept), ")"));
    }
    if (since_check >= options_.liveness_interval) {
      since_check = absl::ZeroDuration();
      for (ShmLink* link : {want_recv ? in : nullptr, want_send ? out : nullptr}) {
        if (link == nullptr) continue;
        if ((link->PeerClosed() || link->PeerExited()) && !can_progress()) {
          return absl::UnavailableError(absl::StrCat(
              "shm: ", PeerName(link->peer), " (pid ", link->peer_pid, ") ",
              link->PeerClosed() ? "closed its transport" : "exited", " while ", describe()));
        }
      }
    }
    uint32_t seq_a = bell_a->seq.load(std::memory_order_acquire);
    uint32_t seq_b = bell_b != nullptr ? bell_b->seq.load(std::memory_order_acquire) : 0;
    bell_a->waiting.store(1, std::memory_order_relaxed);
    if (bell_b != nullptr) bell_b->waiting.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (can_progress()) {
      bell_a->waiting.store(0, std::memory_order_relaxed);
      if (bell_b != nullptr) bell_b->waiting.store(0, std::memory_order_relaxed);
      return absl::OkStatus();
    }
    if (options_.abort != nullptr && options_.abort->aborted()) return options_.abort->status();
    absl::Duration timeout = std::min(deadline - now, options_.liveness_interval);
    absl::Time before = absl::Now();
    FutexWaitEither(&bell_a->seq, seq_a, bell_b != nullptr ? &bell_b->seq : nullptr, seq_b,
                    timeout);
    bell_a->waiting.store(0, std::memory_order_relaxed);
    if (bell_b != nullptr) bell_b->waiting.store(0, std::memory_order_relaxed);
    absl::Duration d = absl::Now() - before;
    *slept += d;
    since_check += d;
    if (can_progress()) return absl::OkStatus();
  }
}

}  // namespace meshtrain

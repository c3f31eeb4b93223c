#include "runtime/transport/shm_transport.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/status_macros.h"
#include "runtime/transport/futex.h"
#include "runtime/transport/reduce_kernel.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define MESHTRAIN_CPU_RELAX() _mm_pause()
#else
#define MESHTRAIN_CPU_RELAX() std::atomic_signal_fence(std::memory_order_seq_cst)
#endif

namespace meshtrain {
namespace {

constexpr uint32_t kSegmentMagic = 0x3168736d;  // "msh1"
constexpr uint32_t kSegmentVersion = 1;
constexpr uint32_t kMessageMagic = 0x67736d6d;  // "mmsg"
constexpr size_t kLine = 64;                    // ring positions are multiples of this
constexpr size_t kControlBytes = 4096;          // ring data starts page-aligned after it
// A creator that has not finished initialising after this long has died.
constexpr absl::Duration kCreatorGrace = absl::Seconds(1);

// The segment's control block. Side 0 is the lower rank of the pair. All
// cross-process fields are lock-free atomics, so they are address-free.
struct alignas(kLine) SegmentHeader {
  std::atomic<uint32_t> ready;        // 0 while the creator initialises, then 1
  uint32_t magic;
  uint32_t version;
  uint32_t reserved;
  uint64_t ring_bytes;
  std::atomic<int32_t> pid[2];        // each side's process
  std::atomic<uint32_t> attached[2];  // futex words: 0, then 1 once the side mapped it
  std::atomic<uint32_t> closed[2];    // 1 once the side destroyed its transport
};
// A doorbell: the side it belongs to sleeps on `seq`; the other side bumps it
// and wakes it, but only when `waiting` says someone may sleep.
struct alignas(kLine) Bell {
  std::atomic<uint32_t> seq;
  std::atomic<uint32_t> waiting;
};
struct alignas(kLine) Cursor {
  std::atomic<uint64_t> pos;  // bytes ever produced (head) or consumed (tail)
};
struct SegmentControl {
  SegmentHeader header;
  Bell bell[2];    // bell[s] wakes side s
  Cursor head[2];  // ring s carries side s's messages to the other side
  Cursor tail[2];
};
static_assert(sizeof(SegmentControl) <= kControlBytes);

struct MessageHeader {
  uint32_t magic;
  uint32_t seq;
  uint64_t bytes;
};
static_assert(sizeof(MessageHeader) <= kLine);

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

std::string Errno(absl::string_view what) { return absl::StrCat(what, ": ", strerror(errno)); }

// Removes the name only while it still refers to the object `fd` has open.
// Whoever unlinks holds the object's flock and sees it still linked, so two
// processes removing the same stale segment never unlink a fresh one made in
// between under the same name.
void UnlinkIfStillNamed(int fd, const char* name) {
  if (fd < 0) return;
  flock(fd, LOCK_EX);
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_nlink > 0) shm_unlink(name);
  flock(fd, LOCK_UN);
}

bool ProcessExited(pid_t pid, int pidfd) {
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    return poll(&p, 1, 0) > 0;  // a pidfd turns readable when its process exits
  }
  return kill(pid, 0) != 0 && errno == ESRCH;
}

// Progress of the message being sent in one SendRecv.
struct SendProgress {
  const std::byte* data = nullptr;
  size_t bytes = 0;
  size_t padded = 0;  // bytes rounded up to kLine: ring space the payload takes
  size_t done = 0;    // payload positions produced, <= padded
  bool header_done = false;
  bool finished() const { return header_done && done == padded; }
};

struct RecvProgress {
  std::byte* data = nullptr;
  size_t bytes = 0;
  size_t padded = 0;
  size_t done = 0;
  bool header_done = false;
  RecvAction action = RecvAction::kCopy;
  bool finished() const { return header_done && done == padded; }
};

}  // namespace

struct ShmTransport::Link {
  int peer = -1;
  int side = 0;  // this process's side of the segment
  bool creator = false;
  std::string name;
  int fd = -1;  // the segment's file, open until connected (for UnlinkIfStillNamed)
  void* base = nullptr;
  size_t size = 0;
  SegmentControl* ctl = nullptr;
  std::byte* out_ring = nullptr;  // this side -> peer
  std::byte* in_ring = nullptr;   // peer -> this side
  uint64_t ring_bytes = 0;
  pid_t peer_pid = 0;
  int pidfd = -1;
  uint32_t send_seq = 0;
  uint32_t recv_seq = 0;
  // Local copies: our own cursors (we are their only writer) and the last seen
  // value of the peer's, reloaded only when they would block us.
  uint64_t out_head = 0;
  uint64_t out_tail_seen = 0;
  uint64_t in_tail = 0;
  uint64_t in_head_seen = 0;

  ~Link() {
    if (ctl != nullptr) {
      ctl->header.closed[side].store(1, std::memory_order_release);
      RingPeer();
    }
    if (base != nullptr) munmap(base, size);
    if (pidfd >= 0) close(pidfd);
    if (fd >= 0) close(fd);
  }

  Bell& my_bell() { return ctl->bell[side]; }
  Bell& peer_bell() { return ctl->bell[1 - side]; }
  std::atomic<uint64_t>& out_head_atomic() { return ctl->head[side].pos; }
  std::atomic<uint64_t>& out_tail_atomic() { return ctl->tail[side].pos; }
  std::atomic<uint64_t>& in_head_atomic() { return ctl->head[1 - side].pos; }
  std::atomic<uint64_t>& in_tail_atomic() { return ctl->tail[1 - side].pos; }

  // Wakes the peer if it sleeps (or is about to) on its doorbell. The fence
  // orders our cursor store before reading `waiting`; the sleeper sets
  // `waiting` before re-reading our cursor, so one of us sees the other.
  void RingPeer() {
    Bell& bell = peer_bell();
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (bell.waiting.load(std::memory_order_relaxed) != 0 &&
        bell.waiting.exchange(0, std::memory_order_acq_rel) != 0) {
      bell.seq.fetch_add(1, std::memory_order_release);
      FutexWakeAll(&bell.seq);
    }
  }

  uint64_t SendSpace() {
    uint64_t space = ring_bytes - (out_head - out_tail_seen);
    if (space < kLine) {
      out_tail_seen = out_tail_atomic().load(std::memory_order_acquire);
      space = ring_bytes - (out_head - out_tail_seen);
    }
    return space;
  }
  uint64_t RecvAvailable() {
    uint64_t avail = in_head_seen - in_tail;
    if (avail < kLine) {
      in_head_seen = in_head_atomic().load(std::memory_order_acquire);
      avail = in_head_seen - in_tail;
    }
    return avail;
  }
  bool PeerClosed() const { return ctl->header.closed[1 - side].load(std::memory_order_acquire); }
  bool PeerExited() const { return ProcessExited(peer_pid, pidfd); }

  // Produces at most one piece of `s`; returns whether anything moved.
  bool StepSend(SendProgress& s, size_t piece_bytes) {
    uint64_t space = SendSpace();
    if (space < kLine) return false;
    const uint64_t mask = ring_bytes - 1;
    if (!s.header_done) {
      MessageHeader header{kMessageMagic, send_seq++, s.bytes};
      std::memcpy(out_ring + (out_head & mask), &header, sizeof(header));
      out_head += kLine;
      space -= kLine;
      s.header_done = true;
    }
    size_t step = std::min<size_t>({space, piece_bytes, s.padded - s.done});
    if (step > 0) {
      size_t copy = s.done < s.bytes ? std::min(step, s.bytes - s.done) : 0;
      size_t at = out_head & mask;
      size_t first = std::min<size_t>(copy, ring_bytes - at);
      if (first > 0) std::memcpy(out_ring + at, s.data + s.done, first);
      if (copy > first) std::memcpy(out_ring, s.data + s.done + first, copy - first);
      out_head += step;
      s.done += step;
    }
    out_head_atomic().store(out_head, std::memory_order_release);
    RingPeer();
    return true;
  }

  // Consumes at most one piece of `r`; sets *progressed when anything moved.
  // `transport` names the peer in errors.
  absl::Status StepRecv(RecvProgress& r, size_t piece_bytes, const ShmTransport& transport,
                        bool* progressed) {
    uint64_t avail = RecvAvailable();
    if (avail < kLine) return absl::OkStatus();
    const uint64_t mask = ring_bytes - 1;
    if (!r.header_done) {
      MessageHeader header;
      std::memcpy(&header, in_ring + (in_tail & mask), sizeof(header));
      if (header.magic != kMessageMagic || header.seq != recv_seq) {
        return absl::InternalError(absl::StrCat("shm recv from ", transport.PeerName(peer),
                                                ": corrupt message header (seq ", header.seq,
                                                ", expected ", recv_seq, ")"));
      }
      if (header.bytes != r.bytes) {
        return absl::InternalError(absl::StrCat(
            "shm recv from ", transport.PeerName(peer), ": message ", recv_seq, " has ", header.bytes,
            " bytes, expected ", r.bytes, "; the ranks issued different collectives"));
      }
      ++recv_seq;
      in_tail += kLine;
      avail -= kLine;
      r.header_done = true;
    }
    size_t step = std::min<size_t>({avail, piece_bytes, r.padded - r.done});
    if (step > 0) {
      size_t use = r.done < r.bytes ? std::min(step, r.bytes - r.done) : 0;
      size_t at = in_tail & mask;
      size_t first = std::min<size_t>(use, ring_bytes - at);
      Apply(r, r.data + r.done, in_ring + at, first);
      Apply(r, r.data + r.done + first, in_ring, use - first);
      in_tail += step;
      r.done += step;
    }
    in_tail_atomic().store(in_tail, std::memory_order_release);
    RingPeer();
    *progressed = true;
    return absl::OkStatus();
  }

  static void Apply(const RecvProgress& r, std::byte* dst, const std::byte* src, size_t n) {
    if (n == 0) return;
    if (r.action == RecvAction::kAddFloat32) {
      AddFloat32(reinterpret_cast<float*>(dst), reinterpret_cast<const float*>(src),
                 n / sizeof(float));
    } else {
      std::memcpy(dst, src, n);
    }
  }
};

namespace {

using Link = ShmTransport::Link;

// Step 1 of the protocol for one pair: create the segment or attach to it.
absl::StatusOr<std::unique_ptr<Link>> OpenSegment(const ShmTransportOptions& options, int peer,
                                                  const std::string& peer_name) {
  const int lo = std::min(options.rank, peer), hi = std::max(options.rank, peer);
  auto link = std::make_unique<Link>();
  link->peer = peer;
  link->side = options.rank == lo ? 0 : 1;
  link->name = absl::StrCat("/meshtrain-", options.job_prefix, "-", lo, "-", hi);
  link->ring_bytes = options.ring_bytes;
  link->size = kControlBytes + 2 * options.ring_bytes;
  const int side = link->side;
  const char* name = link->name.c_str();
  absl::Time unsized_since = absl::InfiniteFuture();
  auto fail = [&](absl::string_view what) {
    return absl::InternalError(absl::StrCat("shm connect to ", peer_name, ": ", Errno(what)));
  };
  while (true) {
    if (absl::Now() >= options.connect_deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "shm connect to ", peer_name, ": segment ", link->name, " not ready before the deadline"));
    }
    if (options.abort != nullptr && options.abort->aborted()) return options.abort->status();
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) {
      link->creator = true;
      link->fd = fd;
      if (ftruncate(fd, static_cast<off_t>(link->size)) != 0) {
        absl::Status status = fail(absl::StrCat("ftruncate ", link->name));
        UnlinkIfStillNamed(fd, name);
        return status;
      }
      void* base = mmap(nullptr, link->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                        fd, 0);
      if (base == MAP_FAILED) {
        absl::Status status = fail(absl::StrCat("mmap ", link->name));
        UnlinkIfStillNamed(fd, name);
        return status;
      }
      link->base = base;
      link->ctl = static_cast<SegmentControl*>(base);
      SegmentHeader& h = link->ctl->header;
      h.pid[side].store(getpid(), std::memory_order_relaxed);
      h.magic = kSegmentMagic;
      h.version = kSegmentVersion;
      h.ring_bytes = options.ring_bytes;
      h.attached[side].store(1, std::memory_order_relaxed);
      h.ready.store(1, std::memory_order_release);
      FutexWakeAll(&h.ready);
      break;
    }
    if (errno != EEXIST) return fail(absl::StrCat("shm_open ", link->name));
    fd = shm_open(name, O_RDWR, 0600);
    if (fd < 0) {
      if (errno == ENOENT) continue;  // unlinked in between (a stale one removed): retry
      return fail(absl::StrCat("shm_open ", link->name));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
      close(fd);
      return fail(absl::StrCat("fstat ", link->name));
    }
    if (static_cast<size_t>(st.st_size) < kControlBytes) {
      // The creator has not sized it yet; if that lasts, it died doing so.
      absl::Time now = absl::Now();
      if (unsized_since == absl::InfiniteFuture()) unsized_since = now;
      if (now - unsized_since > kCreatorGrace) {
        UnlinkIfStillNamed(fd, name);
        unsized_since = absl::InfiniteFuture();
      }
      close(fd);
      absl::SleepFor(absl::Microseconds(50));
      continue;
    }
    unsized_since = absl::InfiniteFuture();
    size_t map_bytes = std::min<size_t>(st.st_size, link->size);
    void* base = mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (base == MAP_FAILED) {
      absl::Status status = fail(absl::StrCat("mmap ", link->name));
      close(fd);
      return status;
    }
    auto* ctl = static_cast<SegmentControl*>(base);
    SegmentHeader& h = ctl->header;
    // The creator records its pid, then sets ready right after sizing: a short
    // wait, unless it died (a recorded pid that exited, or no ready in time).
    auto died = [&h](int s) {
      pid_t pid = h.pid[s].load(std::memory_order_relaxed);
      return pid != 0 && ProcessExited(pid, -1);
    };
    absl::Time ready_deadline = std::min(options.connect_deadline, absl::Now() + kCreatorGrace);
    while (h.ready.load(std::memory_order_acquire) == 0 && absl::Now() < ready_deadline &&
           !died(0) && !died(1)) {
      FutexWait(&h.ready, 0, absl::Milliseconds(1));
    }
    pid_t earlier_self = h.pid[side].load(std::memory_order_relaxed);
    bool ready = h.ready.load(std::memory_order_acquire) != 0;
    bool stale = !ready || died(0) || died(1);
    if (stale) {
      // Left by a killed run (or a creator that died initialising): remove, retry.
      munmap(base, map_bytes);
      UnlinkIfStillNamed(fd, name);
      close(fd);
      continue;
    }
    if (h.magic != kSegmentMagic || h.version != kSegmentVersion ||
        h.ring_bytes != options.ring_bytes || map_bytes != link->size) {
      const uint64_t theirs = h.ring_bytes;
      munmap(base, map_bytes);
      close(fd);
      return absl::InvalidArgumentError(absl::StrCat(
          "shm connect to ", peer_name, ": segment ", link->name, " has ring_bytes ",
          theirs, ", this rank uses ", options.ring_bytes,
          "; every rank must use the same ShmTransportOptions::ring_bytes"));
    }
    if (earlier_self != 0) {
      munmap(base, map_bytes);
      close(fd);
      return absl::InvalidArgumentError(absl::StrCat(
          "shm connect to ", peer_name, ": process ", earlier_self, " already attached to ",
          link->name, " as rank ", options.rank, "; is job_prefix unique per job and incarnation?"));
    }
    link->base = base;
    link->ctl = ctl;
    link->fd = fd;
    h.pid[side].store(getpid(), std::memory_order_relaxed);
    h.attached[side].store(1, std::memory_order_release);
    FutexWakeAll(&h.attached[side]);
    UnlinkIfStillNamed(fd, name);  // both sides attached: the name is no longer needed
    break;
  }
  link->out_ring = static_cast<std::byte*>(link->base) + kControlBytes + side * options.ring_bytes;
  link->in_ring =
      static_cast<std::byte*>(link->base) + kControlBytes + (1 - side) * options.ring_bytes;
  return link;
}

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
    if (link != nullptr && link->creator &&
        link->ctl->header.attached[1 - link->side].load(std::memory_order_acquire) == 0) {
      UnlinkIfStillNamed(link->fd, link->name.c_str());  // the peer never came
    }
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
    return absl::InvalidArgumentError(absl::StrCat("shm transport: rank ", options.rank,
                                                   " out of range for world size ", n));
  }
  if (!ValidPrefix(options.job_prefix)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shm transport: job_prefix '", options.job_prefix,
        "' must be 1 to 200 characters of [A-Za-z0-9_.-]"));
  }
  if (options.ring_bytes < 4096 || (options.ring_bytes & (options.ring_bytes - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shm transport: ring_bytes ", options.ring_bytes, " must be a power of two >= 4096"));
  }
  if (options.piece_bytes < kLine || options.piece_bytes % kLine != 0) {
    return absl::InvalidArgumentError(absl::StrCat("shm transport: piece_bytes ",
                                                   options.piece_bytes,
                                                   " must be a positive multiple of 64"));
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
        if (link == nullptr) continue;
        link->my_bell().seq.fetch_add(1, std::memory_order_release);
        FutexWakeAll(&link->my_bell().seq);
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
    MESHTRAIN_ASSIGN_OR_RETURN(links_[peer], OpenSegment(options_, peer, PeerName(peer)));
  }
  // Step 3: creators wait for the other side.
  for (int peer : peers) {
    Link& link = *links_[peer];
    SegmentHeader& h = link.ctl->header;
    std::atomic<uint32_t>& attached = h.attached[1 - link.side];
    while (attached.load(std::memory_order_acquire) == 0) {
      if (options_.abort != nullptr && options_.abort->aborted()) return options_.abort->status();
      absl::Duration left = options_.connect_deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError(absl::StrCat(
            "shm connect: ", PeerName(peer), " did not attach to ", link.name,
            " before the deadline; is it running on this host with the same job_prefix?"));
      }
      FutexWait(&attached, 0, std::min(left, absl::Milliseconds(10)));
    }
    close(link.fd);
    link.fd = -1;
    link.peer_pid = h.pid[1 - link.side].load(std::memory_order_relaxed);
    link.pidfd = static_cast<int>(syscall(SYS_pidfd_open, link.peer_pid, 0));
    if (link.PeerExited()) {
      return absl::UnavailableError(absl::StrCat("shm connect: ", PeerName(peer), " (pid ",
                                                 link.peer_pid, ") exited after attaching"));
    }
  }
  return absl::OkStatus();
}

absl::Status ShmTransport::CheckOp(const SendRecvOp& op, Link** out, Link** in) const {
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
  Link* out;
  Link* in;
  MESHTRAIN_RETURN_IF_ERROR(CheckOp(op, &out, &in));
  SendProgress s{op.send.data(), op.send.size(), RoundUp(op.send.size(), kLine)};
  RecvProgress r{op.recv.data(), op.recv.size(), RoundUp(op.recv.size(), kLine)};
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
      absl::Status status =
          in->StepRecv(r, options_.piece_bytes, *this, &progressed);
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

absl::Status ShmTransport::Wait(Link* out, bool want_send, Link* in, bool want_recv,
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
  Bell* bell_a = want_send ? &out->my_bell() : &in->my_bell();
  Bell* bell_b = (want_send && want_recv && in != out) ? &in->my_bell() : nullptr;
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
      for (Link* link : {want_recv ? in : nullptr, want_send ? out : nullptr}) {
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

#include "runtime/transport/shm_link.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/transport/reduce_kernel.h"

namespace meshtrain {
namespace {

constexpr uint32_t kSegmentMagic = 0x3168736d;  // "msh1"
constexpr uint32_t kSegmentVersion = 1;
constexpr uint32_t kMessageMagic = 0x67736d6d;  // "mmsg"
constexpr size_t kLine = ShmLink::kLine;
constexpr size_t kControlBytes = 4096;  // ring data starts page-aligned after it
// A creator that has not finished initialising after this long has died.
constexpr absl::Duration kCreatorGrace = absl::Seconds(1);

using SegmentControl = ShmLink::SegmentControl;
using SegmentHeader = ShmLink::SegmentHeader;
static_assert(sizeof(SegmentControl) <= kControlBytes);

struct MessageHeader {
  uint32_t magic;
  uint32_t seq;
  uint64_t bytes;
};
static_assert(sizeof(MessageHeader) <= kLine);

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

void ApplyPiece(const ShmLink::RecvProgress& r, std::byte* dst, const std::byte* src, size_t n) {
  if (n == 0) return;
  if (r.action == RecvAction::kAddFloat32) {
    AddFloat32(reinterpret_cast<float*>(dst), reinterpret_cast<const float*>(src),
               n / sizeof(float));
  } else {
    std::memcpy(dst, src, n);
  }
}

// Whether a process recorded in the header as side `s` has exited.
bool SideDied(const SegmentHeader& h, int s) {
  pid_t pid = h.pid[s].load(std::memory_order_relaxed);
  return pid != 0 && ProcessExited(pid, -1);
}

// The creator records its pid, then sets ready right after sizing: a short
// wait, unless it died (a recorded pid that exited, or no ready in time).
void WaitForCreator(SegmentHeader& h, absl::Time connect_deadline) {
  absl::Time ready_deadline = std::min(connect_deadline, absl::Now() + kCreatorGrace);
  while (h.ready.load(std::memory_order_acquire) == 0 && absl::Now() < ready_deadline &&
         !SideDied(h, 0) && !SideDied(h, 1)) {
    FutexWait(&h.ready, 0, absl::Milliseconds(1));
  }
}

}  // namespace

ShmLink::~ShmLink() {
  if (ctl != nullptr) {
    ctl->header.closed[side].store(1, std::memory_order_release);
    RingPeer();
  }
  if (base != nullptr) munmap(base, size);
  if (pidfd >= 0) close(pidfd);
  if (fd >= 0) close(fd);
}

bool ShmLink::PeerExited() const { return ProcessExited(peer_pid, pidfd); }

void ShmLink::UnlinkIfPeerNeverAttached() {
  if (creator && ctl->header.attached[1 - side].load(std::memory_order_acquire) == 0) {
    UnlinkIfStillNamed(fd, name.c_str());
  }
}

void ShmLink::WakeSelf() {
  my_bell().seq.fetch_add(1, std::memory_order_release);
  FutexWakeAll(&my_bell().seq);
}

bool ShmLink::StepSend(SendProgress& s, size_t piece_bytes) {
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

absl::Status ShmLink::StepRecv(RecvProgress& r, size_t piece_bytes, bool* progressed) {
  uint64_t avail = RecvAvailable();
  if (avail < kLine) return absl::OkStatus();
  const uint64_t mask = ring_bytes - 1;
  if (!r.header_done) {
    MessageHeader header;
    std::memcpy(&header, in_ring + (in_tail & mask), sizeof(header));
    if (header.magic != kMessageMagic || header.seq != recv_seq) {
      return absl::InternalError(absl::StrCat("shm recv from ", peer_name,
                                              ": corrupt message header (seq ", header.seq,
                                              ", expected ", recv_seq, ")"));
    }
    if (header.bytes != r.bytes) {
      return absl::InternalError(absl::StrCat("shm recv from ", peer_name, ": message ", recv_seq,
                                              " has ", header.bytes, " bytes, expected ", r.bytes,
                                              "; the ranks issued different collectives"));
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
    ApplyPiece(r, r.data + r.done, in_ring + at, first);
    ApplyPiece(r, r.data + r.done + first, in_ring, use - first);
    in_tail += step;
    r.done += step;
  }
  in_tail_atomic().store(in_tail, std::memory_order_release);
  RingPeer();
  *progressed = true;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ShmLink>> ShmLink::Open(const ShmLinkOptions& options) {
  const int lo = std::min(options.rank, options.peer), hi = std::max(options.rank, options.peer);
  auto link = std::make_unique<ShmLink>();
  link->peer = options.peer;
  link->peer_name = options.peer_name;
  link->side = options.rank == lo ? 0 : 1;
  link->name = absl::StrCat("/meshtrain-", options.job_prefix, "-", lo, "-", hi);
  link->ring_bytes = options.ring_bytes;
  link->size = kControlBytes + 2 * options.ring_bytes;
  absl::Time unsized_since = absl::InfiniteFuture();
  while (true) {
    if (absl::Now() >= options.connect_deadline) {
      return absl::DeadlineExceededError(absl::StrCat("shm connect to ", options.peer_name,
                                                      ": segment ", link->name,
                                                      " not ready before the deadline"));
    }
    if (options.abort != nullptr && options.abort->aborted()) return options.abort->status();
    int fd = shm_open(link->name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) {
      MESHTRAIN_RETURN_IF_ERROR(link->InitAsCreator(fd));
      break;
    }
    if (errno != EEXIST) return link->ErrnoError(absl::StrCat("shm_open ", link->name));
    MESHTRAIN_ASSIGN_OR_RETURN(bool attached, link->TryAttach(options, &unsized_since));
    if (attached) break;
  }
  const int side = link->side;
  link->out_ring = static_cast<std::byte*>(link->base) + kControlBytes + side * options.ring_bytes;
  link->in_ring =
      static_cast<std::byte*>(link->base) + kControlBytes + (1 - side) * options.ring_bytes;
  return link;
}

absl::Status ShmLink::InitAsCreator(int segment_fd) {
  creator = true;
  fd = segment_fd;
  fchmod(fd, 0600);  // exactly, whatever the umask
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    absl::Status status = ErrnoError(absl::StrCat("ftruncate ", name));
    UnlinkIfStillNamed(fd, name.c_str());
    return status;
  }
  void* mapped = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (mapped == MAP_FAILED) {
    absl::Status status = ErrnoError(absl::StrCat("mmap ", name));
    UnlinkIfStillNamed(fd, name.c_str());
    return status;
  }
  base = mapped;
  ctl = static_cast<SegmentControl*>(mapped);
  SegmentHeader& h = ctl->header;
  h.pid[side].store(getpid(), std::memory_order_relaxed);
  h.magic = kSegmentMagic;
  h.version = kSegmentVersion;
  h.ring_bytes = ring_bytes;
  h.attached[side].store(1, std::memory_order_relaxed);
  h.ready.store(1, std::memory_order_release);
  FutexWakeAll(&h.ready);
  return absl::OkStatus();
}

absl::StatusOr<bool> ShmLink::TryAttach(const ShmLinkOptions& options, absl::Time* unsized_since) {
  const char* name_c = name.c_str();
  int segment_fd = shm_open(name_c, O_RDWR, 0600);
  if (segment_fd < 0) {
    if (errno == ENOENT) return false;  // unlinked in between (a stale one removed): retry
    return ErrnoError(absl::StrCat("shm_open ", name));
  }
  struct stat st;
  if (fstat(segment_fd, &st) != 0) {
    close(segment_fd);
    return ErrnoError(absl::StrCat("fstat ", name));
  }
  // Ours makes every segment 0600; one another user made, or opened to others,
  // could be read or written by them.
  if (st.st_uid != geteuid() || (st.st_mode & 0077) != 0) {
    close(segment_fd);
    return absl::PermissionDeniedError(
        absl::StrCat("shm connect to ", options.peer_name, ": segment ", name, " belongs to uid ",
                     st.st_uid, " with mode ", absl::StrFormat("%04o", st.st_mode & 0777),
                     ", not this user's with mode 0600; refusing it"));
  }
  if (static_cast<size_t>(st.st_size) < kControlBytes) {
    // The creator has not sized it yet; if that lasts, it died doing so.
    absl::Time now = absl::Now();
    if (*unsized_since == absl::InfiniteFuture()) *unsized_since = now;
    if (now - *unsized_since > kCreatorGrace) {
      UnlinkIfStillNamed(segment_fd, name_c);
      *unsized_since = absl::InfiniteFuture();
    }
    close(segment_fd);
    absl::SleepFor(absl::Microseconds(50));
    return false;
  }
  *unsized_since = absl::InfiniteFuture();
  size_t map_bytes = std::min<size_t>(st.st_size, size);
  void* mapped =
      mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, segment_fd, 0);
  if (mapped == MAP_FAILED) {
    absl::Status status = ErrnoError(absl::StrCat("mmap ", name));
    close(segment_fd);
    return status;
  }
  SegmentHeader& h = static_cast<SegmentControl*>(mapped)->header;
  WaitForCreator(h, options.connect_deadline);
  pid_t earlier_self = h.pid[side].load(std::memory_order_relaxed);
  bool ready = h.ready.load(std::memory_order_acquire) != 0;
  if (!ready || SideDied(h, 0) || SideDied(h, 1)) {
    // Left by a killed run (or a creator that died initialising): remove, retry.
    munmap(mapped, map_bytes);
    UnlinkIfStillNamed(segment_fd, name_c);
    close(segment_fd);
    return false;
  }
  if (absl::Status status = CheckAttach(h, map_bytes, earlier_self, options.rank); !status.ok()) {
    munmap(mapped, map_bytes);
    close(segment_fd);
    return status;
  }
  base = mapped;
  ctl = static_cast<SegmentControl*>(mapped);
  fd = segment_fd;
  h.pid[side].store(getpid(), std::memory_order_relaxed);
  h.attached[side].store(1, std::memory_order_release);
  FutexWakeAll(&h.attached[side]);
  UnlinkIfStillNamed(segment_fd, name_c);  // both sides attached: the name is no longer needed
  return true;
}

absl::Status ShmLink::CheckAttach(const SegmentHeader& h, size_t map_bytes, pid_t earlier_self,
                                  int rank) const {
  if (h.magic != kSegmentMagic || h.version != kSegmentVersion || h.ring_bytes != ring_bytes ||
      map_bytes != size) {
    return absl::InvalidArgumentError(
        absl::StrCat("shm connect to ", peer_name, ": segment ", name, " has ring_bytes ",
                     h.ring_bytes, ", this rank uses ", ring_bytes,
                     "; every rank must use the same ShmTransportOptions::ring_bytes"));
  }
  if (earlier_self != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shm connect to ", peer_name, ": process ", earlier_self, " already attached to ", name,
        " as rank ", rank, "; is job_prefix unique per job and incarnation?"));
  }
  return absl::OkStatus();
}

absl::Status ShmLink::AwaitPeer(absl::Time deadline, AbortSignal* abort) {
  SegmentHeader& h = ctl->header;
  std::atomic<uint32_t>& attached = h.attached[1 - side];
  while (attached.load(std::memory_order_acquire) == 0) {
    if (abort != nullptr && abort->aborted()) return abort->status();
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(
          "shm connect: ", peer_name, " did not attach to ", name,
          " before the deadline; is it running on this host with the same job_prefix?"));
    }
    FutexWait(&attached, 0, std::min(left, absl::Milliseconds(10)));
  }
  close(fd);
  fd = -1;
  peer_pid = h.pid[1 - side].load(std::memory_order_relaxed);
  pidfd = static_cast<int>(syscall(SYS_pidfd_open, peer_pid, 0));
  if (PeerExited()) {
    return absl::UnavailableError(
        absl::StrCat("shm connect: ", peer_name, " (pid ", peer_pid, ") exited after attaching"));
  }
  return absl::OkStatus();
}

absl::Status ShmLink::ErrnoError(absl::string_view what) const {
  return absl::InternalError(
      absl::StrCat("shm connect to ", peer_name, ": ", what, ": ", strerror(errno)));
}

}  // namespace meshtrain

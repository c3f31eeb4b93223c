// ShmLink: one connected pair's POSIX shared-memory segment, as one side of the
// pair sees it. The segment holds a control block (the header, two doorbells,
// the ring cursors) and two single-producer/single-consumer byte rings, one per
// direction. A message is a 64-byte header (magic, sequence number, length)
// and its payload padded to 64 bytes; StepSend and StepRecv move at most one
// piece of it per call, so sender and receiver work at the same time.
// Invariant: ring positions are multiples of kLine, and a side writes only its
// own head (out ring), its own tail (in ring) and its own header slots.
//
// Opening (Open, then AwaitPeer; ranks lo < hi, either side may start first):
//   1. Both try shm_open("/meshtrain-<prefix>-<lo>-<hi>", O_CREAT | O_EXCL).
//      The winner sizes, maps and initialises it, records its pid and marks it
//      ready; the loser opens it, waits for ready, records its pid, marks
//      itself attached and unlinks the name.
//   2. A loser that finds a ready segment whose creator is dead treats it as
//      stale (a killed earlier run), unlinks it and starts again at 1.
//   3. The creator waits until the other side attached (AwaitPeer); if it never
//      does, UnlinkIfPeerNeverAttached removes the name. Once both are attached
//      the name is gone, so a killed process leaks nothing; the memory lives
//      while either maps it.
//
// Thread-safety: one thread drives a link; WakeSelf may be called from any
// thread (the abort callback). The peer process works on the same segment at
// the same time: every cross-process field is a lock-free atomic.
#ifndef MESHTRAIN_RUNTIME_TRANSPORT_SHM_LINK_H_
#define MESHTRAIN_RUNTIME_TRANSPORT_SHM_LINK_H_

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "runtime/base/abort_signal.h"
#include "runtime/transport/futex.h"
#include "runtime/transport/transport.h"

namespace meshtrain {

struct ShmLinkOptions {
  int rank = 0;  // this side's rank
  int peer = 0;
  // The segment is "/meshtrain-<job_prefix>-<lo>-<hi>".
  std::string job_prefix;
  std::string peer_name;  // for errors
  size_t ring_bytes = 0;  // a power of two, equal on both sides
  absl::Time connect_deadline = absl::InfiniteFuture();
  AbortSignal* abort = nullptr;  // nullable; must outlive Open and AwaitPeer
};

struct ShmLink {
  static constexpr size_t kLine = 64;  // ring positions are multiples of this

  // The segment's control block. Side 0 is the lower rank of the pair. All
  // cross-process fields are lock-free atomics, so they are address-free.
  struct alignas(kLine) SegmentHeader {
    std::atomic<uint32_t> ready;  // 0 while the creator initialises, then 1
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

  // Progress of the message being sent or received in one SendRecv.
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

  // Steps 1 and 2 of the protocol above: creates the segment or attaches to it.
  static absl::StatusOr<std::unique_ptr<ShmLink>> Open(const ShmLinkOptions& options);
  // Step 3: waits until the other side attached, then watches its process.
  absl::Status AwaitPeer(absl::Time deadline, AbortSignal* abort);
  // Marks this side closed and wakes the peer.
  ~ShmLink();

  // Removes the name of a segment this side created that the peer never
  // attached to (nothing else would).
  void UnlinkIfPeerNeverAttached();
  // Wakes this side's own sleep on its doorbell (it re-checks why it sleeps).
  void WakeSelf();

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
  bool PeerExited() const;

  // Produces at most one piece of `s`; returns whether anything moved.
  bool StepSend(SendProgress& s, size_t piece_bytes);
  // Consumes at most one piece of `r`; sets *progressed when anything moved.
  absl::Status StepRecv(RecvProgress& r, size_t piece_bytes, bool* progressed);

  int peer = -1;
  std::string peer_name;
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

 private:
  absl::Status InitAsCreator(int segment_fd);
  // The loser's side of step 1, and step 2: true once attached, false to start
  // again (the name vanished, or the segment is unsized or stale).
  absl::StatusOr<bool> TryAttach(const ShmLinkOptions& options, absl::Time* unsized_since);
  absl::Status CheckAttach(const SegmentHeader& h, size_t map_bytes, pid_t earlier_self,
                           int rank) const;
  absl::Status ErrnoError(absl::string_view what) const;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TRANSPORT_SHM_LINK_H_

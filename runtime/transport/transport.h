// Transport: one rank's byte channels to the other ranks of a group. Collective
// algorithms (runtime/collective) are written against this interface only, so
// they run unchanged on the in-process mesh used by unit tests, on gRPC, on raw
// TCP and on shared memory between processes of one host.
//
// Ordering: bytes from one rank to another arrive in the order they were sent.
// Every rank issues the same collectives in the same order (as with NCCL and
// Gloo), so messages need no tags; implementations still frame what they send
// and report a mismatch (a peer that sent more or less than expected) as an error.
//
// A zero-length send is still a message: it is framed, ordered and matched with
// a zero-length receive (collectives use it for barriers and empty chunks).
//
// Errors: kUnavailable names the peer that went away, kDeadlineExceeded the peer
// that was waited for, kAborted the reason recorded on the AbortSignal the
// transport polls, kInvalidArgument a malformed op (caught before any byte
// moves), kInternal a framing mismatch. No call blocks past its deadline. After
// any error other than kInvalidArgument the channels are in an unknown state
// (a message may be half sent): the caller tears the transport down and builds a
// new one (a new incarnation), as after a peer failure. The process-to-process
// transports answer later calls with kFailedPrecondition carrying that error.
//
// Thread-safety: one thread drives a Transport at a time; the abort signal may be
// raised from any thread and wakes every wait; stats() may be read from any
// thread at any time.
#ifndef MESHTRAIN_RUNTIME_TRANSPORT_TRANSPORT_H_
#define MESHTRAIN_RUNTIME_TRANSPORT_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace meshtrain {

// What happens to received bytes.
enum class RecvAction {
  kCopy,        // recv = incoming bytes
  kAddFloat32,  // recv += incoming, both read as float32 (reduce without a copy)
};

// One exchange: send `send` to `send_to` while receiving `recv.size()` bytes from
// `recv_from`. Either side may be absent (rank -1), which gives plain Send and
// Recv; send_to == recv_from is an exchange with one peer. Both sides progress
// together, so two ranks that send to each other at the same time never
// deadlock, whatever the size. `send` and `recv` must not overlap (the transport
// may read `send` after it has written parts of `recv`). The sender's byte count
// must equal the receiver's; a mismatch is an error on the receiving side.
// kAddFloat32 needs `recv.size()` to be a multiple of 4 and `recv` 4-byte
// aligned (as any span of floats is); else kInvalidArgument. Sending to or
// receiving from oneself is kInvalidArgument.
struct SendRecvOp {
  int send_to = -1;
  absl::Span<const std::byte> send;
  int recv_from = -1;
  absl::Span<std::byte> recv;
  RecvAction action = RecvAction::kCopy;
  absl::Time deadline = absl::InfiniteFuture();
};

// What a transport moved and how long it waited, since it was created. Callers
// take differences between two snapshots (a step's bytes, a step's waiting).
struct TransportStats {
  int64_t bytes_sent = 0;      // payload bytes of completed sends (framing excluded)
  int64_t bytes_received = 0;  // payload bytes of completed receives
  // Time SendRecv spent with nothing to move because a peer was not ready:
  // spinning or sleeping for its data, or for room in its ring or socket. On
  // gRPC, where the bytes move on gRPC's threads, all time spent waiting for a
  // chunk or an acknowledgement.
  absl::Duration blocked;
};

// Differences of two snapshots (later - earlier).
inline TransportStats operator-(const TransportStats& later, const TransportStats& earlier) {
  return {later.bytes_sent - earlier.bytes_sent, later.bytes_received - earlier.bytes_received,
          later.blocked - earlier.blocked};
}

class Transport {
 public:
  virtual ~Transport() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // A peer as errors name it: "worker:2 (127.0.0.1:2222)".
  virtual std::string PeerName(int rank) const = 0;
  // The data path: "shm", "tcp", "grpc", "in_process", or a composed one
  // ("shm+tcp", runtime/transport/routed_transport.h).
  virtual absl::string_view kind() const = 0;

  virtual absl::Status SendRecv(const SendRecvOp& op) = 0;

  // Counters since creation (TransportCounters keeps them); a transport that
  // does not count reports zeros.
  virtual TransportStats stats() const { return {}; }

  // Conveniences over SendRecv.
  absl::Status Send(int to, absl::Span<const std::byte> data, absl::Time deadline) {
    return SendRecv({.send_to = to, .send = data, .deadline = deadline});
  }
  absl::Status Recv(int from, absl::Span<std::byte> data, absl::Time deadline) {
    return SendRecv({.recv_from = from, .recv = data, .deadline = deadline});
  }
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TRANSPORT_TRANSPORT_H_

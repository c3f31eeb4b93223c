// RoutedTransport: one rank's channels made of several transports of the same
// rank and world size (its parts), each peer routed to one part by a table fixed
// at Create. The mixed data path "shm+tcp" uses it: ring neighbours on this host
// over shared memory, neighbours on other hosts over TCP. A peer with no route
// is kInvalidArgument, as an unconnected peer is on the other transports.
//
// SendRecv: when both sides route to one part (or one side is absent) the op is
// forwarded whole. When send_to and recv_from route to different parts, the two
// sides must progress together (a ring step sends right while receiving from
// the left; with bounded buffers, sending first and receiving after deadlocks
// the ring), so:
//   1. the calling thread posts the send to the helper thread and wakes it;
//   2. the helper drives the send part while the caller drives the receive part;
//   3. the caller waits for the send to finish, even after a failed receive,
//      because the send still reads the caller's buffer (bounded by op.deadline
//      and the abort signal the parts poll);
//   4. the result is the first error (the side that failed first), except that
//      a kAborted error gives way to the other side's (the root cause).
// A split op costs one wake-up of the helper thread; a forwarded op costs
// nothing extra.
//
// Invariant: each part is driven by one thread at a time (transport.h): the
// helper drives only the send part of a split op, the caller only the other
// part, and the op returns only after the helper is done with it.
//
// stats() sums the parts' stats; during a split op both sides may wait at once,
// so `blocked` may count the same interval twice.
//
// Thread-safety: as any Transport (one driving thread; stats() from any
// thread). The helper thread starts in Create (only with two parts or more) and
// is joined by the destructor; idle, it sleeps on a mutex condition (never
// spins).
#ifndef MESHTRAIN_RUNTIME_TRANSPORT_ROUTED_TRANSPORT_H_
#define MESHTRAIN_RUNTIME_TRANSPORT_ROUTED_TRANSPORT_H_

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "runtime/transport/transport.h"

namespace meshtrain {

inline constexpr int kNoRoute = -1;

struct RoutedTransportOptions {
  // What kind() answers, e.g. "shm+tcp".
  std::string kind;
  // At least one; all of the same rank and world size.
  std::vector<std::unique_ptr<Transport>> parts;
  // world_size entries: route[peer] is an index into `parts`, or kNoRoute (this
  // rank's own entry must be kNoRoute).
  std::vector<int> route;
  // Empty, or world_size names for errors; empty asks the routed part.
  std::vector<std::string> peer_names;
};

// The ring neighbours of `rank` (RingNeighbours) split by host: those whose
// host identity equals this rank's, and the others. `host_identities` has one
// entry per rank.
struct RingNeighboursByHost {
  std::vector<int> same_host;
  std::vector<int> other_hosts;
};
RingNeighboursByHost SplitRingNeighboursByHost(int rank,
                                               const std::vector<std::string>& host_identities);

class RoutedTransport : public Transport {
 public:
  // kInvalidArgument for an empty or null part, parts of different rank or
  // world size, or a malformed route table.
  static absl::StatusOr<std::unique_ptr<RoutedTransport>> Create(RoutedTransportOptions options);
  ~RoutedTransport() override;

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  std::string PeerName(int rank) const override;
  absl::string_view kind() const override { return kind_; }
  absl::Status SendRecv(const SendRecvOp& op) override;
  TransportStats stats() const override;

 private:
  struct SendJob {
    Transport* part = nullptr;
    SendRecvOp op;
  };

  explicit RoutedTransport(RoutedTransportOptions options);

  absl::Status CheckOp(const SendRecvOp& op) const;
  std::string Describe() const;  // "routed transport (shm+tcp) on rank 2"
  // Steps 1-4 above, for an op whose sides route to different parts.
  absl::Status SplitSendRecv(const SendRecvOp& op);
  void HelperLoop();
  bool HelperHasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return job_.has_value() || stopping_;
  }

  const std::string kind_;
  const int rank_;
  const int world_size_;
  const std::vector<std::unique_ptr<Transport>> parts_;
  const std::vector<int> route_;
  const std::vector<std::string> peer_names_;

  absl::Mutex mu_;
  std::optional<SendJob> job_ ABSL_GUARDED_BY(mu_);  // posted, not yet finished
  bool send_done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status send_status_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread helper_;  // not started with a single part
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TRANSPORT_ROUTED_TRANSPORT_H_

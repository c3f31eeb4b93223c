// ShmTransport: the data path between processes of one host. Each connected
// pair of ranks shares one POSIX shared-memory segment holding two
// single-producer/single-consumer byte rings (one per direction) and two
// doorbells (futex words, one per side). A message is a 64-byte header (magic,
// sequence number, length) and its payload, padded to 64 bytes, streamed
// through the ring in pieces: the receiver copies or adds (kAddFloat32, straight
// out of the ring, no extra copy) each piece as soon as it is published, so
// sender and receiver work at the same time.
//
// Waiting: spin briefly (options.spin), then sleep on the doorbells (futex,
// shared), waking every options.liveness_interval to check the peer's process
// (pidfd) so a killed peer is reported as kUnavailable within milliseconds.
// Deadlines and the AbortSignal (whose callback rings the doorbells) bound
// every wait.
//
// Connecting: each connected pair opens a ShmLink (shm_link.h: the segment,
// its rings and the protocol that creates or attaches it, either side first),
// then waits until the peer attached; a killed process leaks no segment.
//
// Thread-safety: one thread drives SendRecv; the abort signal may fire from any
// thread. options.abort (nullable) must outlive the transport.
#ifndef MESHTRAIN_RUNTIME_TRANSPORT_SHM_TRANSPORT_H_
#define MESHTRAIN_RUNTIME_TRANSPORT_SHM_TRANSPORT_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/base/abort_signal.h"
#include "runtime/transport/shm_link.h"
#include "runtime/transport/transport.h"
#include "runtime/transport/transport_counters.h"

namespace meshtrain {

struct ShmTransportOptions {
  int rank = 0;
  int world_size = 1;
  // Unique per job and incarnation, [A-Za-z0-9_.-], at most 200 characters:
  // segment names are "/meshtrain-<job_prefix>-<lo>-<hi>".
  std::string job_prefix;
  // Empty, or world_size names for errors ("worker:1 (127.0.0.1:2223)").
  std::vector<std::string> peer_names;
  // Ranks to connect (see RingNeighbours and AllPeers); each pair must list
  // each other. SendRecv with an unconnected rank is kInvalidArgument.
  std::vector<int> peers;
  // Bytes of one ring (one direction of one pair): a power of two >= 4096.
  size_t ring_bytes = size_t{1} << 20;
  // Bytes copied between two publications of the ring position (multiple of 64).
  size_t piece_bytes = size_t{64} << 10;
  // Busy-wait this long before sleeping on a futex (waking a sleeper costs
  // ~60 us on this VM, a spin hand-off ~1 us). Ignored (no spinning) when
  // world_size exceeds this host's cores: the peers would wait for the core
  // the spinner holds.
  absl::Duration spin = absl::Microseconds(50);
  // While sleeping, check the peer's process this often.
  absl::Duration liveness_interval = absl::Milliseconds(2);
  // Connecting gives up (kDeadlineExceeded naming the missing peers) here.
  absl::Time connect_deadline = absl::InfiniteFuture();
  AbortSignal* abort = nullptr;
};

// The left and right neighbours of `rank` on the ring (one peer for 2 ranks,
// none for 1).
std::vector<int> RingNeighbours(int rank, int world_size);
// Every rank but `rank`.
std::vector<int> AllPeers(int rank, int world_size);

class ShmTransport : public Transport {
 public:
  // Connects to options.peers by the protocol above; blocks until every pair is
  // attached or options.connect_deadline.
  static absl::StatusOr<std::unique_ptr<ShmTransport>> Create(const ShmTransportOptions& options);
  ~ShmTransport() override;

  int rank() const override { return options_.rank; }
  int world_size() const override { return options_.world_size; }
  std::string PeerName(int rank) const override;
  absl::string_view kind() const override { return "shm"; }
  absl::Status SendRecv(const SendRecvOp& op) override;
  TransportStats stats() const override { return counters_.Snapshot(); }

 private:
  explicit ShmTransport(ShmTransportOptions options);

  absl::Status ConnectAll();
  absl::Status CheckOp(const SendRecvOp& op, ShmLink** out, ShmLink** in) const;
  absl::Status Wait(ShmLink* out, bool want_send, ShmLink* in, bool want_recv, absl::Time deadline,
                    absl::Duration* slept);

  ShmTransportOptions options_;
  std::vector<std::unique_ptr<ShmLink>> links_;  // by peer rank; null if not connected
  int abort_callback_ = -1;
  absl::Status broken_;  // the first error; later calls fail with it
  TransportCounters counters_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TRANSPORT_SHM_TRANSPORT_H_

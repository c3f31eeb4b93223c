// TcpTransport: raw TCP between processes, the cross-host data path. Each
// connected pair of ranks holds `streams` sockets; a message is a 16-byte frame
// header (magic, sequence number, length) and its payload, and a message of at
// least `split_min_bytes` is cut into one part per socket so several streams
// move it at once. Sockets are nonblocking with TCP_NODELAY and driven by one
// poll() loop, so a SendRecv moves both directions together. Waiting spins on
// the sockets for options.spin, then sleeps in poll() together with an eventfd
// the AbortSignal rings. kAddFloat32 receives into a per-socket staging buffer
// (allocated once) and adds from there.
//
// With options.tls set, every socket runs a TLS 1.3 handshake right after
// connect (the dialler is the client) or accept (the server), proving that
// both sides hold a certificate of this cluster, and the hello and its answer
// travel inside TLS. Then, with options.encrypt, every frame goes through
// SSL_write/SSL_read in the same poll pump (kAddFloat32 decrypts into the
// staging buffer); without it the socket goes back to plain send/recv (no
// session tickets, so no TLS record follows the handshake).
//
// Connecting (TcpTransport::Create):
//   1. Every rank listens (TcpListener) before the ports are exchanged, so a
//      dial never races the peer's bind.
//   2. A rank dials each connected peer of lower rank, once per stream,
//      retrying refused connections with backoff until the deadline, (TLS:
//      completes the client handshake) and sends a hello (rank, world size,
//      job id, incarnation, stream index).
//   3. It accepts from each connected peer of higher rank, (TLS: completes the
//      server handshake, within 2 s) checks the hello and answers accept, or
//      reject with the reason (a failed handshake, a wrong job or a stale
//      incarnation is refused, logged with the peer's address, and the wait
//      goes on for the right peer).
//   4. It reads the answers to its own hellos. (TLS without encryption: checks
//      that OpenSSL holds no byte of the stream, then drops TLS.)
// Without TLS, dialling never waits on a peer's progress (the kernel completes
// connections in the listen backlog). With TLS, step 2 waits for the lower
// rank to reach step 3, which waits only on ranks lower still, so no order of
// start-up deadlocks either.
//
// Errors: EOF or a reset is kUnavailable naming the peer; deadlines and the
// abort signal as in transport.h. Thread-safety: one thread drives SendRecv;
// the abort signal may fire from any thread; options.abort must outlive this.
#ifndef MESHTRAIN_RUNTIME_TRANSPORT_TCP_TRANSPORT_H_
#define MESHTRAIN_RUNTIME_TRANSPORT_TCP_TRANSPORT_H_

#include <poll.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "runtime/base/abort_signal.h"
#include "runtime/security/tls_context.h"
#include "runtime/transport/tcp_listener.h"
#include "runtime/transport/transport.h"
#include "runtime/transport/transport_counters.h"

namespace meshtrain {

struct TcpPeerAddress {
  int rank = -1;
  std::string host;  // name or numeric address
  int port = 0;
};

struct TcpTransportOptions {
  int rank = 0;
  int world_size = 1;
  // Both must match the peer's, else the hello is rejected.
  std::string job_id;
  uint64_t incarnation = 0;
  // Empty, or world_size names for errors ("worker:1 (10.0.0.2:2222)").
  std::vector<std::string> peer_names;
  // The peers to connect (each pair must list each other); addresses of higher
  // ranks are not dialled and may leave host and port empty.
  std::vector<TcpPeerAddress> peers;
  // Sockets per pair, 1 to 16.
  int streams = 1;
  // Messages of at least this many bytes are split over the streams.
  size_t split_min_bytes = size_t{256} << 10;
  // SO_SNDBUF/SO_RCVBUF (the kernel caps them at net.core.wmem_max/rmem_max);
  // 0 keeps the kernel's autotuning, which starts small (16 KiB) and on this
  // machine made 64 KiB - 1 MiB exchanges 1.5 to 3 times slower.
  int socket_buffer_bytes = 4 << 20;
  // Staging buffer per socket for kAddFloat32.
  size_t staging_bytes = size_t{256} << 10;
  // Retry nonblocking socket calls this long before sleeping in poll() (a
  // wake-up from poll costs ~60 us on this VM). Set it to zero when this host
  // runs more ranks than it has cores: a spinner holds a core a peer needs.
  absl::Duration spin = absl::Microseconds(50);
  absl::Time connect_deadline = absl::InfiniteFuture();
  AbortSignal* abort = nullptr;
  // The cluster's TLS context (MeshSecurity::data_path_tls); null: plain TCP,
  // no handshake.
  std::shared_ptr<const TlsContext> tls;
  // With `tls`: encrypt every frame (true), or authenticate only and move the
  // frames in the clear (a trusted fabric).
  bool encrypt = true;
  // With `tls` and `encrypt`: records (16 KiB at most) gather in a buffer of
  // this size before a send; 0 sends each record on its own. On a quiet
  // machine 128 KiB made a 1 MiB allreduce on loopback 1.3x faster and left
  // emulated 1 Gbit/s hosts at the line rate (docs/benchmarks.md, "TLS on the
  // data path").
  size_t tls_write_buffer_bytes = size_t{128} << 10;
};

class TcpTransport : public Transport {
 public:
  // Runs the connection protocol above. `listener` may be null when the rank
  // has no connected peer of higher rank.
  static absl::StatusOr<std::unique_ptr<TcpTransport>> Create(std::unique_ptr<TcpListener> listener,
                                                              const TcpTransportOptions& options);
  ~TcpTransport() override;

  int rank() const override { return options_.rank; }
  int world_size() const override { return options_.world_size; }
  std::string PeerName(int rank) const override;
  absl::string_view kind() const override { return "tcp"; }
  absl::Status SendRecv(const SendRecvOp& op) override;
  TransportStats stats() const override { return counters_.Snapshot(); }

  struct Stream;  // one socket (defined in the .cc)

 private:
  struct Exchange;  // the parts of one SendRecv, on its stack (defined in the .cc)

  explicit TcpTransport(TcpTransportOptions options);
  // Connection protocol steps 2 to 4.
  absl::Status Connect(TcpListener* listener);
  absl::Status DialLowerRanks();
  absl::Status AcceptHigherRanks(TcpListener& listener, int expected_accepts);
  // Accepts one connection and answers its hello; true when it is a stream this
  // rank waits for, else `*rejection` says why (or stays empty on an I/O error).
  bool AcceptOne(TcpListener& listener, std::string* rejection);
  // Steps 2 and 3 with TLS: the handshake on a new socket.
  absl::Status HandshakeTls(Stream& stream, bool server, absl::Time deadline,
                            absl::string_view what);
  std::string PeersNotConnected() const;
  absl::Status ReadHelloReplies();
  // Step 4 without encryption: back to plain sockets.
  absl::Status DropTls();

  absl::Status CheckOp(const SendRecvOp& op) const;
  void PlanExchange(const SendRecvOp& op, Exchange& x);
  // One nonblocking pass over every unfinished part.
  absl::Status PumpOnce(const SendRecvOp& op, Exchange& x, bool* progressed, bool* pending);
  absl::Status PumpOnceTls(const SendRecvOp& op, Exchange& x, bool* progressed, bool* pending);
  // Waits in ppoll() for a socket or the abort eventfd, after checking the
  // abort signal and the deadline.
  absl::Status SleepOnSockets(const SendRecvOp& op, const Exchange& x);
  // Records the first error: later calls answer kFailedPrecondition with it.
  absl::Status Fail(absl::Status status) {
    broken_ = status;
    return status;
  }

  TcpTransportOptions options_;
  std::vector<std::vector<std::unique_ptr<Stream>>> streams_;  // [peer][stream]
  int wake_fd_ = -1;                                           // eventfd the abort callback writes
  int abort_callback_ = -1;
  absl::Status broken_;
  std::vector<struct pollfd> pollfds_;  // reused by SendRecv (reserved in Create)
  TransportCounters counters_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TRANSPORT_TCP_TRANSPORT_H_

#include "runtime/transport/tcp_transport.h"

#include <netdb.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/tcp_socket.h"
#include "runtime/transport/pacer.h"
#include "runtime/transport/reduce_kernel.h"
#include "runtime/transport/tcp_wire.h"
#include "runtime/transport/tls_stream.h"

namespace meshtrain {
namespace {

constexpr int kMaxStreams = 16;
constexpr size_t kPartAlign = 64;
constexpr size_t kTlsReadBufferBytes = size_t{256} << 10;

std::string ErrnoText(int err) { return strerror(err); }

// "10.0.0.3:41234", for the log line of a refused connection.
std::string AddressText(const sockaddr_storage& address, socklen_t length) {
  char host[NI_MAXHOST], port[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&address), length, host, sizeof(host), port,
                  sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return "an unknown address";
  }
  return address.ss_family == AF_INET6 ? absl::StrCat("[", host, "]:", port)
                                       : absl::StrCat(host, ":", port);
}

void CopyString(absl::string_view s, char* out, size_t cap) {
  size_t n = std::min(s.size(), cap - 1);
  std::memcpy(out, s.data(), n);
  out[n] = '\0';
}

// Splits `bytes` over the streams: parts of equal size rounded to 64 bytes
// (so a float never straddles two parts), the last one shorter.
int NumParts(size_t bytes, const TcpTransportOptions& options) {
  return (options.streams > 1 && bytes >= options.split_min_bytes) ? options.streams : 1;
}
std::pair<size_t, size_t> PartRange(size_t bytes, int parts, int i) {
  size_t part = (bytes + parts - 1) / parts;
  part = (part + kPartAlign - 1) / kPartAlign * kPartAlign;
  size_t begin = std::min(bytes, part * i);
  return {begin, std::min(bytes, begin + part)};
}

}  // namespace

struct TcpTransport::Stream {
  int fd = -1;
  uint32_t send_seq = 0;
  uint32_t recv_seq = 0;
  std::vector<std::byte> staging;  // kAddFloat32 receive buffer, sized once
  SSL* ssl = nullptr;              // with options.tls (and encrypt, after Create)
  ~Stream() {
    SSL_free(ssl);
    if (fd >= 0) close(fd);
  }
};

namespace {

struct SendPart {
  TcpTransport::Stream* stream;
  TcpFrameHeader header;
  const std::byte* data;
  size_t bytes;
  size_t sent;   // header then payload bytes written
  short wait;    // what poll() waits for: POLLOUT, or POLLIN when TLS must read
  bool flushed;  // TLS: no record of it waits in the stream's write buffer
  bool done() const { return sent == sizeof(TcpFrameHeader) + bytes && flushed; }
};

struct RecvPart {
  TcpTransport::Stream* stream;
  TcpFrameHeader header;
  size_t header_got;
  std::byte* data;
  size_t bytes;
  size_t done;   // payload bytes copied or added into `data`
  size_t carry;  // kAddFloat32: bytes of a partial float at the front of staging
  short wait;    // what poll() waits for: POLLIN, or POLLOUT when TLS must write
  bool done_all() const { return header_got == sizeof(TcpFrameHeader) && done == bytes; }
};

// One sendmsg for a part: the rest of its header and its payload. Returns 0, or
// the errno of a failure other than a full socket.
int PumpSend(SendPart& p, bool* progressed) {
  iovec iov[2];
  int iovcnt = 0;
  if (p.sent < sizeof(TcpFrameHeader)) {
    iov[iovcnt++] = {reinterpret_cast<char*>(&p.header) + p.sent, sizeof(TcpFrameHeader) - p.sent};
    if (p.bytes > 0) iov[iovcnt++] = {const_cast<std::byte*>(p.data), p.bytes};
  } else {
    size_t off = p.sent - sizeof(TcpFrameHeader);
    iov[iovcnt++] = {const_cast<std::byte*>(p.data) + off, p.bytes - off};
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = iovcnt;
  ssize_t rc = sendmsg(p.stream->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (rc > 0) {
    p.sent += rc;
    *progressed = true;
  } else if (rc < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    return errno;
  }
  return 0;
}

// Checks a completed frame header against the stream's sequence and the size
// the receiver expects.
absl::Status AcceptFrameHeader(RecvPart& p, const SendRecvOp& op, const TcpTransport& t) {
  MESHTRAIN_RETURN_IF_ERROR(
      CheckTcpFrameHeader(p.header, p.stream->recv_seq, op.recv.size(), t.PeerName(op.recv_from)));
  ++p.stream->recv_seq;
  return absl::OkStatus();
}

// `got` payload bytes just read: already in place (kCopy), or in staging to be
// added, keeping a partial float at the front of staging for the next read.
void AcceptPayload(RecvPart& p, size_t got, bool add) {
  if (!add) {
    p.done += got;
    return;
  }
  size_t have = p.carry + got;
  size_t whole = have / sizeof(float) * sizeof(float);
  AddFloat32(reinterpret_cast<float*>(p.data + p.done),
             reinterpret_cast<const float*>(p.stream->staging.data()), whole / sizeof(float));
  p.done += whole;
  p.carry = have - whole;
  if (p.carry > 0)
    std::memmove(p.stream->staging.data(), p.stream->staging.data() + whole, p.carry);
}

// One readv for a part: the rest of its header, then payload into the
// destination (kCopy) or the stream's staging buffer (kAddFloat32).
absl::Status PumpRecv(RecvPart& p, const SendRecvOp& op, bool add, const TcpTransport& t,
                      bool* progressed) {
  iovec iov[2];
  int iovcnt = 0;
  if (p.header_got < sizeof(TcpFrameHeader)) {
    iov[iovcnt++] = {reinterpret_cast<char*>(&p.header) + p.header_got,
                     sizeof(TcpFrameHeader) - p.header_got};
  }
  size_t want = p.bytes - p.done - p.carry;
  if (want > 0) {
    std::byte* into;
    if (add) {
      into = p.stream->staging.data() + p.carry;
      want = std::min(want, p.stream->staging.size() - p.carry);
    } else {
      into = p.data + p.done;
    }
    iov[iovcnt++] = {into, want};
  }
  ssize_t rc = readv(p.stream->fd, iov, iovcnt);
  if (rc == 0) {
    return absl::UnavailableError(absl::StrCat("tcp recv from ", t.PeerName(op.recv_from),
                                               ": connection closed by the peer"));
  }
  if (rc < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return absl::OkStatus();
    return absl::UnavailableError(
        absl::StrCat("tcp recv from ", t.PeerName(op.recv_from), ": ", ErrnoText(errno)));
  }
  *progressed = true;
  size_t got = rc;
  if (p.header_got < sizeof(TcpFrameHeader)) {
    size_t h = std::min(got, sizeof(TcpFrameHeader) - p.header_got);
    p.header_got += h;
    got -= h;
    if (p.header_got == sizeof(TcpFrameHeader))
      MESHTRAIN_RETURN_IF_ERROR(AcceptFrameHeader(p, op, t));
  }
  if (got > 0) AcceptPayload(p, got, add);
  return absl::OkStatus();
}

// PumpSend inside TLS: SSL_write the rest of the header, then the payload,
// until the socket is full (one record per call with partial writes).
absl::Status PumpSendTls(SendPart& p, const SendRecvOp& op, const TcpTransport& t,
                         bool* progressed) {
  while (p.sent < sizeof(TcpFrameHeader) + p.bytes) {
    const std::byte* from;
    size_t n;
    if (p.sent < sizeof(TcpFrameHeader)) {
      from = reinterpret_cast<const std::byte*>(&p.header) + p.sent;
      n = sizeof(TcpFrameHeader) - p.sent;
    } else {
      from = p.data + (p.sent - sizeof(TcpFrameHeader));
      n = p.bytes - (p.sent - sizeof(TcpFrameHeader));
    }
    std::string error;
    const ssize_t rc = TlsWriteSome(p.stream->ssl, from, n, &p.wait, &error);
    if (rc < 0) {
      return absl::UnavailableError(
          absl::StrCat("tcp send to ", t.PeerName(op.send_to), ": ", error));
    }
    if (rc == 0) break;
    p.sent += rc;
    *progressed = true;
  }
  std::string error;
  const int flushed = FlushTlsWrites(p.stream->ssl, &p.wait, &error);
  if (flushed < 0) {
    return absl::UnavailableError(
        absl::StrCat("tcp send to ", t.PeerName(op.send_to), ": ", error));
  }
  p.flushed = flushed == 1;
  return absl::OkStatus();
}

// PumpRecv inside TLS: SSL_read the rest of the header, then the payload into
// the destination or staging, until OpenSSL has no more of this part. It never
// reads past the part, so the next frame's bytes stay buffered in OpenSSL.
absl::Status PumpRecvTls(RecvPart& p, const SendRecvOp& op, bool add, const TcpTransport& t,
                         bool* progressed) {
  while (!p.done_all()) {
    std::byte* into;
    size_t want;
    const bool header = p.header_got < sizeof(TcpFrameHeader);
    if (header) {
      into = reinterpret_cast<std::byte*>(&p.header) + p.header_got;
      want = sizeof(TcpFrameHeader) - p.header_got;
    } else if (add) {
      into = p.stream->staging.data() + p.carry;
      want = std::min(p.bytes - p.done - p.carry, p.stream->staging.size() - p.carry);
    } else {
      into = p.data + p.done;
      want = p.bytes - p.done;
    }
    std::string error;
    const ssize_t rc = TlsReadSome(p.stream->ssl, into, want, &p.wait, &error);
    if (rc < 0) {
      return absl::UnavailableError(
          absl::StrCat("tcp recv from ", t.PeerName(op.recv_from), ": ", error));
    }
    if (rc == 0) break;
    *progressed = true;
    if (header) {
      p.header_got += rc;
      if (p.header_got == sizeof(TcpFrameHeader))
        MESHTRAIN_RETURN_IF_ERROR(AcceptFrameHeader(p, op, t));
    } else {
      AcceptPayload(p, rc, add);
    }
  }
  return absl::OkStatus();
}

}  // namespace

struct TcpTransport::Exchange {
  SendPart sends[kMaxStreams];
  RecvPart recvs[kMaxStreams];
  int num_sends = 0;
  int num_recvs = 0;
  bool add = false;
  bool tls = false;  // frames through SSL_write/SSL_read
};

TcpTransport::TcpTransport(TcpTransportOptions options) : options_(std::move(options)) {}

TcpTransport::~TcpTransport() {
  if (options_.abort != nullptr && abort_callback_ >= 0) {
    options_.abort->RemoveCallback(abort_callback_);
  }
  if (wake_fd_ >= 0) close(wake_fd_);
}

std::string TcpTransport::PeerName(int rank) const {
  if (rank >= 0 && rank < static_cast<int>(options_.peer_names.size())) {
    return options_.peer_names[rank];
  }
  return absl::StrCat("rank ", rank);
}

absl::StatusOr<std::unique_ptr<TcpTransport>> TcpTransport::Create(
    std::unique_ptr<TcpListener> listener, const TcpTransportOptions& options) {
  const int n = options.world_size;
  if (n < 1 || options.rank < 0 || options.rank >= n) {
    return absl::InvalidArgumentError(
        absl::StrCat("tcp transport: rank ", options.rank, " out of range for world size ", n));
  }
  if (options.streams < 1 || options.streams > kMaxStreams) {
    return absl::InvalidArgumentError(
        absl::StrCat("tcp transport: streams ", options.streams, " must be 1 to ", kMaxStreams));
  }
  if (options.job_id.size() >= sizeof(TcpHello::job_id)) {
    return absl::InvalidArgumentError(absl::StrCat("tcp transport: job_id longer than ",
                                                   sizeof(TcpHello::job_id) - 1, " characters"));
  }
  if (options.staging_bytes < 4096 || options.staging_bytes % kPartAlign != 0) {
    return absl::InvalidArgumentError(
        "tcp transport: staging_bytes must be a multiple of 64, >= 4096");
  }
  if (!options.peer_names.empty() && static_cast<int>(options.peer_names.size()) != n) {
    return absl::InvalidArgumentError(absl::StrCat("tcp transport: ", options.peer_names.size(),
                                                   " peer names for world size ", n));
  }
  bool needs_listener = false;
  std::set<int> seen;
  for (const TcpPeerAddress& peer : options.peers) {
    if (peer.rank < 0 || peer.rank >= n || peer.rank == options.rank ||
        !seen.insert(peer.rank).second) {
      return absl::InvalidArgumentError(absl::StrCat("tcp transport on rank ", options.rank,
                                                     ": bad or repeated peer rank ", peer.rank));
    }
    needs_listener |= peer.rank > options.rank;
  }
  if (needs_listener && listener == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("tcp transport on rank ", options.rank,
                     ": higher-ranked peers dial this rank, so it needs a TcpListener"));
  }
  auto transport = absl::WrapUnique(new TcpTransport(options));
  transport->pollfds_.reserve(2 * kMaxStreams + 1);
  transport->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (transport->wake_fd_ < 0)
    return absl::InternalError(absl::StrCat("eventfd: ", ErrnoText(errno)));
  MESHTRAIN_RETURN_IF_ERROR(transport->Connect(listener.get()));
  if (options.abort != nullptr) {
    int fd = transport->wake_fd_;
    transport->abort_callback_ = options.abort->AddCallback([fd] {
      uint64_t one = 1;
      (void)!write(fd, &one, sizeof(one));
    });
  }
  return transport;
}

absl::Status TcpTransport::Connect(TcpListener* listener) {
  const TcpTransportOptions& o = options_;
  streams_.resize(o.world_size);
  int expected_accepts = 0;
  for (const TcpPeerAddress& peer : o.peers) {
    streams_[peer.rank].resize(o.streams);
    if (peer.rank > o.rank) expected_accepts += o.streams;
  }
  MESHTRAIN_RETURN_IF_ERROR(DialLowerRanks());
  if (expected_accepts > 0) {
    MESHTRAIN_RETURN_IF_ERROR(AcceptHigherRanks(*listener, expected_accepts));
  }
  MESHTRAIN_RETURN_IF_ERROR(ReadHelloReplies());
  if (o.tls == nullptr) return absl::OkStatus();
  if (!o.encrypt) return DropTls();
  // Only TLS records follow, so OpenSSL may read ahead of the record it
  // decrypts (one recv for many records instead of two per record), and
  // records leave in sends of many.
  for (const TcpPeerAddress& peer : o.peers) {
    for (std::unique_ptr<Stream>& stream : streams_[peer.rank]) {
      SSL_set_read_ahead(stream->ssl, 1);
      if (o.tls_write_buffer_bytes > 0 && !BufferTlsWrites(stream->ssl, o.tls_write_buffer_bytes)) {
        return absl::ResourceExhaustedError("tcp connect: no memory for a TLS write buffer");
      }
    }
  }
  return absl::OkStatus();
}

// Step 4 without encryption. The peer sent its last TLS record (hello or
// answer) before this rank read it, and both read exactly their records, so a
// byte still inside OpenSSL would be a frame lost to the plain reads.
absl::Status TcpTransport::DropTls() {
  for (const TcpPeerAddress& peer : options_.peers) {
    for (std::unique_ptr<Stream>& stream : streams_[peer.rank]) {
      if (TlsHasBuffered(stream->ssl)) {
        return absl::InternalError(absl::StrCat("tcp connect to ", PeerName(peer.rank),
                                                ": TLS bytes after the hello on a stream "
                                                "without encryption (a confused peer)"));
      }
      SSL_free(stream->ssl);
      stream->ssl = nullptr;
    }
  }
  return absl::OkStatus();
}

// Step 2: dial the lower ranks and send hellos.
absl::Status TcpTransport::DialLowerRanks() {
  const TcpTransportOptions& o = options_;
  const absl::Time deadline = o.connect_deadline;
  for (const TcpPeerAddress& peer : o.peers) {
    if (peer.rank > o.rank) continue;
    for (int s = 0; s < o.streams; ++s) {
      MESHTRAIN_ASSIGN_OR_RETURN(
          int fd, Dial(peer.host, peer.port, PeerName(peer.rank), deadline, o.abort));
      auto stream = std::make_unique<Stream>();
      stream->fd = fd;
      TuneSocket(fd, o.socket_buffer_bytes);
      const std::string what = absl::StrCat("tcp hello to ", PeerName(peer.rank));
      if (o.tls != nullptr) {
        MESHTRAIN_RETURN_IF_ERROR(HandshakeTls(*stream, /*server=*/false, deadline, what));
      }
      TcpHello hello{kTcpHelloMagic,
                     kTcpWireVersion,
                     o.rank,
                     o.world_size,
                     static_cast<uint32_t>(s),
                     static_cast<uint32_t>(o.streams),
                     TcpHelloFlags(o),
                     o.incarnation,
                     {}};
      CopyString(o.job_id, hello.job_id, sizeof(hello.job_id));
      MESHTRAIN_RETURN_IF_ERROR(
          stream->ssl != nullptr
              ? TlsWriteAll(stream->ssl, fd, &hello, sizeof(hello), deadline, what)
              : WriteAll(fd, &hello, sizeof(hello), deadline, what));
      streams_[peer.rank][s] = std::move(stream);
    }
  }
  return absl::OkStatus();
}

// Step 3: accept the higher ranks.
absl::Status TcpTransport::AcceptHigherRanks(TcpListener& listener, int expected_accepts) {
  const TcpTransportOptions& o = options_;
  const absl::Time deadline = o.connect_deadline;
  std::string last_rejection;
  while (expected_accepts > 0) {
    if (o.abort != nullptr && o.abort->aborted()) return o.abort->status();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "tcp connect on rank ", o.rank, ": ", PeersNotConnected(),
          " did not connect before the deadline",
          last_rejection.empty() ? "" : absl::StrCat(" (last rejected: ", last_rejection, ")")));
    }
    if (!PollUntil(listener.fd(), POLLIN,
                   std::min(deadline, absl::Now() + absl::Milliseconds(50)))) {
      continue;
    }
    std::string rejection;
    if (AcceptOne(listener, &rejection)) {
      --expected_accepts;
    } else if (!rejection.empty()) {
      last_rejection = std::move(rejection);
    }
  }
  return absl::OkStatus();
}

absl::Status TcpTransport::HandshakeTls(Stream& stream, bool server, absl::Time deadline,
                                        absl::string_view what) {
  stream.ssl = options_.tls->NewConnection(stream.fd);
  // Room for many records per read once reading ahead (set before the
  // handshake allocates the buffer).
  if (stream.ssl != nullptr && options_.encrypt) {
    SSL_set_default_read_buffer_len(stream.ssl, kTlsReadBufferBytes);
  }
  if (stream.ssl == nullptr)
    return absl::ResourceExhaustedError(absl::StrCat(what, ": SSL_new failed"));
  return TlsHandshake(stream.ssl, stream.fd, server ? TlsRole::kServer : TlsRole::kClient, deadline,
                      options_.abort, what);
}

bool TcpTransport::AcceptOne(TcpListener& listener, std::string* rejection) {
  const TcpTransportOptions& o = options_;
  sockaddr_storage address{};
  socklen_t address_length = sizeof(address);
  int fd = accept4(listener.fd(), reinterpret_cast<sockaddr*>(&address), &address_length,
                   SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return false;
  auto stream = std::make_unique<Stream>();
  stream->fd = fd;
  TcpHello hello;
  absl::Time hello_deadline = std::min(o.connect_deadline, absl::Now() + absl::Seconds(2));
  if (o.tls != nullptr) {
    // An outsider (no certificate of this cluster, random bytes, a stalled
    // handshake) is refused like a wrong hello: the wait goes on.
    absl::Status shook = HandshakeTls(*stream, /*server=*/true, hello_deadline, "tcp accept");
    if (!shook.ok()) {
      if (o.abort != nullptr && o.abort->aborted()) return false;
      *rejection = absl::StrCat(AddressText(address, address_length), ": ", shook.message());
      MESHTRAIN_LOG(WARNING) << "tcp transport rank " << o.rank << ": rejected a connection from "
                             << *rejection;
      return false;
    }
  }
  SSL* ssl = stream->ssl;
  if (!(ssl != nullptr ? TlsReadAll(ssl, fd, &hello, sizeof(hello), hello_deadline, "tcp hello")
                       : ReadAll(fd, &hello, sizeof(hello), hello_deadline, "tcp hello"))
           .ok()) {
    return false;
  }
  const int from = hello.rank;
  const std::string reason = TcpHelloRejection(hello, o, [&](int rank, uint32_t s) {
    return !streams_[rank].empty() && streams_[rank][s] == nullptr;
  });
  TcpHelloReply reply{kTcpHelloMagic,
                      kTcpWireVersion,
                      reason.empty() ? 1u : 0u,
                      o.rank,
                      reason.empty() ? o.incarnation : 0,
                      {}};
  CopyString(reason, reply.reason, sizeof(reply.reason));
  absl::Status sent =
      ssl != nullptr
          ? TlsWriteAll(ssl, fd, &reply, sizeof(reply), hello_deadline, "tcp hello reply")
          : WriteAll(fd, &reply, sizeof(reply), hello_deadline, "tcp hello reply");
  if (!reason.empty()) {
    *rejection =
        absl::StrCat("rank ", from, " (", AddressText(address, address_length), "): ", reason);
    MESHTRAIN_LOG(WARNING) << "tcp transport rank " << o.rank << ": rejected a connection from "
                           << *rejection;
    return false;
  }
  if (!sent.ok()) return false;
  TuneSocket(fd, o.socket_buffer_bytes);
  streams_[from][hello.stream] = std::move(stream);
  return true;
}

std::string TcpTransport::PeersNotConnected() const {
  std::string missing;
  for (const TcpPeerAddress& peer : options_.peers) {
    const auto& streams = streams_[peer.rank];
    if (peer.rank > options_.rank &&
        std::find(streams.begin(), streams.end(), nullptr) != streams.end()) {
      absl::StrAppend(&missing, missing.empty() ? "" : ", ", PeerName(peer.rank));
    }
  }
  return missing;
}

// Step 4: the lower ranks' answers.
absl::Status TcpTransport::ReadHelloReplies() {
  const TcpTransportOptions& o = options_;
  for (const TcpPeerAddress& peer : o.peers) {
    if (peer.rank > o.rank) continue;
    for (int s = 0; s < o.streams; ++s) {
      TcpHelloReply reply;
      std::string what = absl::StrCat("tcp hello reply from ", PeerName(peer.rank));
      const Stream& stream = *streams_[peer.rank][s];
      MESHTRAIN_RETURN_IF_ERROR(
          stream.ssl != nullptr
              ? TlsReadAll(stream.ssl, stream.fd, &reply, sizeof(reply), o.connect_deadline, what)
              : ReadAll(stream.fd, &reply, sizeof(reply), o.connect_deadline, what));
      MESHTRAIN_RETURN_IF_ERROR(CheckTcpHelloReply(reply, peer.rank, o.rank, PeerName(peer.rank)));
    }
  }
  return absl::OkStatus();
}

absl::Status TcpTransport::CheckOp(const SendRecvOp& op) const {
  const int n = options_.world_size;
  auto bad_peer = [&](int peer) {
    return peer < -1 || peer >= n || peer == options_.rank || (peer >= 0 && streams_[peer].empty());
  };
  if (bad_peer(op.send_to) || bad_peer(op.recv_from)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tcp SendRecv on rank ", options_.rank, ": send_to ", op.send_to, ", recv_from ",
        op.recv_from, " not among the connected peers; list them in TcpTransportOptions::peers"));
  }
  if (op.action == RecvAction::kAddFloat32 &&
      (op.recv.size() % sizeof(float) != 0 ||
       reinterpret_cast<uintptr_t>(op.recv.data()) % alignof(float) != 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tcp SendRecv: kAddFloat32 needs an aligned float buffer, got ", op.recv.size(), " bytes"));
  }
  return absl::OkStatus();
}

absl::Status TcpTransport::SendRecv(const SendRecvOp& op) {
  if (!broken_.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("tcp transport unusable after an earlier error: ", broken_.message()));
  }
  MESHTRAIN_RETURN_IF_ERROR(CheckOp(op));
  Exchange x;
  PlanExchange(op, x);
  Pacer pacer(options_.spin);
  while (true) {
    bool progressed = false, pending = false;
    if (absl::Status status = PumpOnce(op, x, &progressed, &pending); !status.ok()) {
      return Fail(std::move(status));
    }
    if (!pending) {
      pacer.EndStall(counters_);
      counters_.CountCompleted(op);
      return absl::OkStatus();
    }
    if (progressed) {
      pacer.Progressed(counters_);
      continue;
    }
    // Nothing moved: retry for `spin`, then sleep in poll().
    if (!pacer.SpunOut()) continue;
    if (absl::Status status = SleepOnSockets(op, x); !status.ok()) return Fail(std::move(status));
    pacer.Slept();
  }
}

void TcpTransport::PlanExchange(const SendRecvOp& op, Exchange& x) {
  if (op.send_to >= 0) {
    x.num_sends = NumParts(op.send.size(), options_);
    for (int i = 0; i < x.num_sends; ++i) {
      auto [begin, end] = PartRange(op.send.size(), x.num_sends, i);
      Stream* stream = streams_[op.send_to][i].get();
      x.sends[i] = SendPart{stream,
                            {kTcpFrameMagic, stream->send_seq++, op.send.size()},
                            op.send.data() + begin,
                            end - begin,
                            0,
                            POLLOUT,
                            true};
    }
  }
  x.add = op.action == RecvAction::kAddFloat32;
  x.tls = options_.tls != nullptr && options_.encrypt;
  if (op.recv_from >= 0) {
    x.num_recvs = NumParts(op.recv.size(), options_);
    for (int i = 0; i < x.num_recvs; ++i) {
      auto [begin, end] = PartRange(op.recv.size(), x.num_recvs, i);
      Stream* stream = streams_[op.recv_from][i].get();
      if (x.add && stream->staging.empty()) stream->staging.resize(options_.staging_bytes);
      x.recvs[i] = RecvPart{stream, {}, 0, op.recv.data() + begin, end - begin, 0, 0, POLLIN};
    }
  }
}

absl::Status TcpTransport::PumpOnce(const SendRecvOp& op, Exchange& x, bool* progressed,
                                    bool* pending) {
  if (x.tls) return PumpOnceTls(op, x, progressed, pending);
  for (int i = 0; i < x.num_sends; ++i) {
    SendPart& p = x.sends[i];
    if (p.done()) continue;
    if (int err = PumpSend(p, progressed); err != 0) {
      return absl::UnavailableError(
          absl::StrCat("tcp send to ", PeerName(op.send_to), ": ", ErrnoText(err)));
    }
    *pending |= !p.done();
  }
  for (int i = 0; i < x.num_recvs; ++i) {
    RecvPart& p = x.recvs[i];
    if (p.done_all()) continue;
    MESHTRAIN_RETURN_IF_ERROR(PumpRecv(p, op, x.add, *this, progressed));
    *pending |= !p.done_all();
  }
  return absl::OkStatus();
}

absl::Status TcpTransport::PumpOnceTls(const SendRecvOp& op, Exchange& x, bool* progressed,
                                       bool* pending) {
  ClearTlsErrors();
  for (int i = 0; i < x.num_sends; ++i) {
    SendPart& p = x.sends[i];
    if (p.done()) continue;
    MESHTRAIN_RETURN_IF_ERROR(PumpSendTls(p, op, *this, progressed));
    *pending |= !p.done();
  }
  for (int i = 0; i < x.num_recvs; ++i) {
    RecvPart& p = x.recvs[i];
    if (p.done_all()) continue;
    MESHTRAIN_RETURN_IF_ERROR(PumpRecvTls(p, op, x.add, *this, progressed));
    *pending |= !p.done_all();
  }
  return absl::OkStatus();
}

absl::Status TcpTransport::SleepOnSockets(const SendRecvOp& op, const Exchange& x) {
  if (options_.abort != nullptr && options_.abort->aborted()) return options_.abort->status();
  absl::Duration left = op.deadline - absl::Now();
  if (left <= absl::ZeroDuration()) {
    std::string what;
    if (std::any_of(x.recvs, x.recvs + x.num_recvs, [](auto& p) { return !p.done_all(); })) {
      absl::StrAppend(&what, "receiving from ", PeerName(op.recv_from));
    }
    if (std::any_of(x.sends, x.sends + x.num_sends, [](auto& p) { return !p.done(); })) {
      absl::StrAppend(&what, what.empty() ? "" : " and ", "sending to ", PeerName(op.send_to));
    }
    return absl::DeadlineExceededError(
        absl::StrCat("tcp: no progress ", what, " before the deadline"));
  }
  // Bytes OpenSSL already decrypted do not make a socket readable.
  if (x.tls && std::any_of(x.recvs, x.recvs + x.num_recvs, [](const RecvPart& p) {
        return !p.done_all() && TlsHasBuffered(p.stream->ssl);
      })) {
    return absl::OkStatus();
  }
  pollfds_.clear();
  for (int i = 0; i < x.num_sends; ++i) {
    if (!x.sends[i].done()) pollfds_.push_back({x.sends[i].stream->fd, x.sends[i].wait, 0});
  }
  for (int i = 0; i < x.num_recvs; ++i) {
    if (!x.recvs[i].done_all()) pollfds_.push_back({x.recvs[i].stream->fd, x.recvs[i].wait, 0});
  }
  pollfds_.push_back({wake_fd_, POLLIN, 0});
  timespec timeout = absl::ToTimespec(std::min(left, absl::Seconds(1)));
  ppoll(pollfds_.data(), pollfds_.size(), &timeout, nullptr);
  return absl::OkStatus();
}

}  // namespace meshtrain

// TcpTransport with TLS: the same bytes as plain TCP (encrypting or
// authenticating only), outsiders refused while the real peers connect, and
// handshakes bounded by the connect deadline. The Transport contract over TLS
// is in tests/unit/rpc/transport_conformance_test.cc.
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "runtime/security/certificates.h"
#include "runtime/transport/tcp_transport.h"
#include "tests/unit/transport/run_on_ranks.h"
#include "tests/unit/transport/transport_meshes.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::AsBytes;
using ::meshtrain::testing::RankData;
using ::meshtrain::testing::RunOnRanks;

absl::Time Soon() { return absl::Now() + absl::Seconds(20); }

// Every rank sends to the next and receives from the previous, `length`
// floats, copying or adding; returns what each rank holds after.
std::vector<std::vector<float>> RingShift(testing::TcpMesh& mesh, size_t length,
                                          RecvAction action) {
  const int n = static_cast<int>(mesh.transports.size());
  std::vector<std::vector<float>> got(n);
  auto statuses = RunOnRanks(n, [&](int r) -> absl::Status {
    std::vector<float> send = RankData(r, length);
    got[r].assign(length, 1.0f);
    return mesh.transports[r]->SendRecv({.send_to = (r + 1) % n,
                                         .send = AsBytes(send),
                                         .recv_from = (r + n - 1) % n,
                                         .recv = AsBytes(got[r]),
                                         .action = action,
                                         .deadline = Soon()});
  });
  for (const absl::Status& s : statuses) EXPECT_TRUE(s.ok()) << s;
  return got;
}

struct TlsCase {
  bool encrypt;
  int streams;
};

class TcpTlsBytesTest : public ::testing::TestWithParam<TlsCase> {};

// Messages from 0 bytes to several staging buffers and socket buffers, split
// over the streams from 1000 bytes: what arrives is what plain TCP delivers.
TEST_P(TcpTlsBytesTest, MovesTheSameBytesAsPlain) {
  const TlsCase c = GetParam();
  auto tune = [&](std::shared_ptr<const TlsContext> tls) {
    return [c, tls](TcpTransportOptions& o) {
      o.streams = c.streams;
      o.split_min_bytes = 1000;
      o.staging_bytes = 4096;
      o.socket_buffer_bytes = 65536;
      o.tls = tls;
      o.encrypt = c.encrypt;
    };
  };
  testing::TcpMesh plain = testing::ConnectTcp(3, tune(nullptr));
  testing::TcpMesh secure = testing::ConnectTcp(3, tune(testing::TestTlsContext()));
  for (const absl::Status& s : plain.statuses) ASSERT_TRUE(s.ok()) << s;
  for (const absl::Status& s : secure.statuses) ASSERT_TRUE(s.ok()) << s;
  for (size_t length : {size_t{0}, size_t{1}, size_t{251}, size_t{1001}, size_t{300007}}) {
    for (RecvAction action : {RecvAction::kCopy, RecvAction::kAddFloat32}) {
      EXPECT_EQ(RingShift(secure, length, action), RingShift(plain, length, action))
          << length << " floats, action " << static_cast<int>(action);
    }
  }
  EXPECT_EQ(secure.transports[0]->stats().bytes_sent, plain.transports[0]->stats().bytes_sent);
}

INSTANTIATE_TEST_SUITE_P(EncryptAndStreams, TcpTlsBytesTest,
                         ::testing::Values(TlsCase{true, 1}, TlsCase{true, 3}, TlsCase{false, 1},
                                           TlsCase{false, 3}),
                         [](const ::testing::TestParamInfo<TlsCase>& info) {
                           return absl::StrCat(info.param.encrypt ? "encrypt" : "auth_only", "_",
                                               info.param.streams, "_streams");
                         });

// Two ranks; rank 0 accepts while `outsider` dials its listener first, then
// rank 1 connects; both must connect and exchange. Returns what the outsider
// saw (its own status).
absl::Status OutsiderThenPeer(const std::function<absl::Status(int port)>& outsider,
                              bool encrypt = true) {
  std::shared_ptr<const TlsContext> tls = testing::TestTlsContext();
  auto l0 = TcpListener::Create("127.0.0.1", 0);
  EXPECT_TRUE(l0.ok()) << l0.status();
  if (!l0.ok()) return l0.status();
  std::vector<int> ports{(*l0)->port(), 0};
  auto options = [&](int rank) {
    TcpTransportOptions o = testing::TcpTestOptions(rank, 2, ports);
    o.tls = tls;
    o.encrypt = encrypt;
    return o;
  };
  absl::StatusOr<std::unique_ptr<TcpTransport>> t0;
  std::thread rank0([&] { t0 = TcpTransport::Create(*std::move(l0), options(0)); });
  absl::Status seen = outsider(ports[0]);
  auto t1 = TcpTransport::Create(nullptr, options(1));
  rank0.join();
  EXPECT_TRUE(t0.ok()) << t0.status();
  EXPECT_TRUE(t1.ok()) << t1.status();
  if (t0.ok() && t1.ok()) {
    std::vector<float> sent = RankData(1, 5000), got(5000);
    absl::Status s = (*t1)->Send(0, AsBytes(sent), Soon());
    EXPECT_TRUE(s.ok()) << s;
    s = (*t0)->Recv(1, AsBytes(got), Soon());
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_EQ(got, sent);
  }
  return seen;
}

// A socket connected to 127.0.0.1:port (blocking), or -1.
int ConnectTo(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends `bytes` and waits until rank 0 closes the connection; OK if it did.
absl::Status SendAndExpectClose(int port, const std::string& bytes) {
  int fd = ConnectTo(port);
  if (fd < 0) return absl::UnavailableError("connect failed");
  (void)!send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  char sink[4096];
  absl::Status closed = absl::DeadlineExceededError("rank 0 kept the connection open");
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  while (true) {
    ssize_t rc = recv(fd, sink, sizeof(sink), 0);
    if (rc == 0 || (rc < 0 && errno == ECONNRESET)) {
      closed = absl::OkStatus();
      break;
    }
    if (rc < 0) break;
  }
  close(fd);
  return closed;
}

// A TLS client of the test's own making over a blocking socket: made from
// `context` (another cluster's), or with no certificate when it is null; it
// does not check the server, so that the refusal is the server's. Handshakes,
// sends a hello-sized message and reads the answer; returns the first error
// (the refusal), OK if rank 0 answered.
absl::Status TlsOutsiderOnThisThread(int port, const TlsContext* context) {
  int fd = ConnectTo(port);
  if (fd < 0) return absl::InternalError("connect failed");
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  SSL_CTX* bare = nullptr;
  SSL* ssl;
  if (context != nullptr) {
    ssl = context->NewConnection(fd);
  } else {
    bare = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(bare, TLS1_3_VERSION);
    ssl = SSL_new(bare);
    SSL_set_fd(ssl, fd);
  }
  SSL_set_verify(ssl, SSL_VERIFY_NONE, nullptr);
  absl::Status status;
  char hello[176] = {'h', 'e', 'l', 'l'};
  char answer[1];
  if (SSL_connect(ssl) != 1) {
    status = absl::UnavailableError("handshake refused");
  } else if (SSL_write(ssl, hello, sizeof(hello)) <= 0) {
    status = absl::UnavailableError("hello refused");
  } else if (SSL_read(ssl, answer, sizeof(answer)) <= 0) {
    status = absl::UnavailableError("no answer");
  }
  SSL_free(ssl);
  SSL_CTX_free(bare);
  close(fd);
  return status;
}

// On a thread of its own that blocks SIGPIPE: the bare client writes with
// write(2), and rank 0 closes on it (a thread's pending signal ends with it).
absl::Status TlsOutsider(int port, const TlsContext* context) {
  absl::Status status;
  std::thread outsider([&] {
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    status = TlsOutsiderOnThisThread(port, context);
  });
  outsider.join();
  return status;
}

TEST(TcpTlsOutsiderTest, NoCertificateIsRefused) {
  absl::Status outsider = OutsiderThenPeer([](int port) { return TlsOutsider(port, nullptr); });
  EXPECT_FALSE(outsider.ok());
}

TEST(TcpTlsOutsiderTest, CertificateOfAnotherCaIsRefused) {
  std::shared_ptr<const TlsContext> other = testing::TestTlsContext();
  ASSERT_NE(other, nullptr);
  for (bool encrypt : {true, false}) {
    absl::Status outsider =
        OutsiderThenPeer([&](int port) { return TlsOutsider(port, other.get()); }, encrypt);
    EXPECT_FALSE(outsider.ok()) << "encrypt " << encrypt;
  }
}

TEST(TcpTlsOutsiderTest, RandomBytesAreRefused) {
  std::string noise(3000, '\0');
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<char>((i * 2654435761u) >> 13);
  EXPECT_TRUE(OutsiderThenPeer([&](int port) { return SendAndExpectClose(port, noise); }).ok());
}

TEST(TcpTlsOutsiderTest, PlainHelloIsRefused) {
  // What a plain-TCP rank of this job would send: magic "hell", then zeros.
  std::string hello(176, '\0');
  std::memcpy(hello.data(), "hell", 4);
  EXPECT_TRUE(OutsiderThenPeer([&](int port) { return SendAndExpectClose(port, hello); }).ok());
}

TEST(TcpTlsOutsiderTest, SilentOutsiderOnlyDelaysThePeer) {
  int silent = -1;
  absl::Status outsider = OutsiderThenPeer([&](int port) {
    silent = ConnectTo(port);
    return silent >= 0 ? absl::OkStatus() : absl::InternalError("connect failed");
  });
  EXPECT_TRUE(outsider.ok()) << outsider;
  if (silent >= 0) close(silent);
}

TEST(TcpTlsDeadlineTest, DiallerHandshakeEndsByTheDeadline) {
  // Rank 0's listener exists but nobody accepts: the kernel completes the
  // connection, the ClientHello waits in its queue, no ServerHello comes.
  auto l0 = TcpListener::Create("127.0.0.1", 0);
  ASSERT_TRUE(l0.ok()) << l0.status();
  TcpTransportOptions o = testing::TcpTestOptions(1, 2, {(*l0)->port(), 0});
  o.tls = testing::TestTlsContext();
  o.connect_deadline = absl::Now() + absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  auto t1 = TcpTransport::Create(nullptr, o);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  ASSERT_FALSE(t1.ok());
  EXPECT_EQ(t1.status().code(), absl::StatusCode::kDeadlineExceeded) << t1.status();
  EXPECT_TRUE(absl::StrContains(t1.status().message(), "TLS handshake")) << t1.status();
  EXPECT_TRUE(absl::StrContains(t1.status().message(), "worker:0")) << t1.status();
}

TEST(TcpTlsDeadlineTest, AcceptorWithASilentOutsiderEndsByTheDeadline) {
  auto l0 = TcpListener::Create("127.0.0.1", 0);
  ASSERT_TRUE(l0.ok()) << l0.status();
  TcpTransportOptions o = testing::TcpTestOptions(0, 2, {(*l0)->port(), 0});
  o.tls = testing::TestTlsContext();
  int silent = ConnectTo((*l0)->port());
  ASSERT_GE(silent, 0);
  o.connect_deadline = absl::Now() + absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  auto t0 = TcpTransport::Create(*std::move(l0), o);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  close(silent);
  ASSERT_FALSE(t0.ok());
  EXPECT_EQ(t0.status().code(), absl::StatusCode::kDeadlineExceeded) << t0.status();
  EXPECT_TRUE(absl::StrContains(t0.status().message(), "worker:1")) << t0.status();
}

TEST(TcpTlsDeadlineTest, AbortEndsAHandshake) {
  auto l0 = TcpListener::Create("127.0.0.1", 0);
  ASSERT_TRUE(l0.ok()) << l0.status();
  AbortSignal abort;
  TcpTransportOptions o = testing::TcpTestOptions(1, 2, {(*l0)->port(), 0});
  o.tls = testing::TestTlsContext();
  o.abort = &abort;
  std::thread aborter([&] { abort.Abort(absl::AbortedError("worker:2 failed")); });
  auto t1 = TcpTransport::Create(nullptr, o);
  aborter.join();
  ASSERT_FALSE(t1.ok());
  EXPECT_EQ(t1.status(), absl::AbortedError("worker:2 failed"));
}

TEST(TcpTlsTest, EncryptionMustMatch) {
  std::shared_ptr<const TlsContext> tls = testing::TestTlsContext();
  testing::TcpMesh mesh = testing::ConnectTcp(2, [&](TcpTransportOptions& o) {
    o.tls = tls;
    o.encrypt = o.rank == 0;
    if (o.rank == 0) o.connect_deadline = absl::Now() + absl::Milliseconds(500);
  });
  EXPECT_EQ(mesh.statuses[1].code(), absl::StatusCode::kUnavailable) << mesh.statuses[1];
  EXPECT_TRUE(absl::StrContains(mesh.statuses[1].message(), "encryption")) << mesh.statuses[1];
}

TEST(TcpTlsTest, PlainDiallerIsRefusedByATlsRank) {
  std::shared_ptr<const TlsContext> tls = testing::TestTlsContext();
  testing::TcpMesh mesh = testing::ConnectTcp(2, [&](TcpTransportOptions& o) {
    if (o.rank == 0) o.tls = tls;
    o.connect_deadline = absl::Now() + absl::Milliseconds(500);
  });
  EXPECT_FALSE(mesh.statuses[0].ok());
  EXPECT_FALSE(mesh.statuses[1].ok());
}

}  // namespace
}  // namespace meshtrain

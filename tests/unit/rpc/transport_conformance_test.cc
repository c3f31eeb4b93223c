// The Transport contract (runtime/transport/transport.h), run over every
// transport: in-process, shared memory, TCP (one stream, and three streams with
// small buffers; and both with TLS, encrypting or authenticating only), gRPC,
// and shared memory with TCP routed by host (shm+tcp).
// Sizes include 0 bytes and messages larger than every internal chunk (the shm
// ring, the TCP staging buffer, the gRPC piece). It lives with the rpc tests
// because the gRPC transport needs runtime/rpc.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "runtime/base/status_macros.h"
#include "runtime/rpc/mesh.h"
#include "runtime/transport/in_process_transport.h"
#include "runtime/transport/routed_transport.h"
#include "runtime/transport/transport.h"
#include "tests/unit/rpc/test_cluster.h"
#include "tests/unit/transport/run_on_ranks.h"
#include "tests/unit/transport/transport_meshes.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::AsBytes;
using ::meshtrain::testing::RankData;
using ::meshtrain::testing::RunOnRanks;

// `world_size` connected transports of one kind, each driven by its own thread.
class TransportGroup {
 public:
  virtual ~TransportGroup() = default;
  virtual Transport* transport(int rank) = 0;  // null if connecting failed
  // The signal rank `rank`'s transport polls.
  virtual AbortSignal& abort(int rank) = 0;
};

class InProcessGroup : public TransportGroup {
 public:
  explicit InProcessGroup(int world_size) : transports_(CreateInProcessMesh(world_size, &abort_)) {}
  Transport* transport(int rank) override { return transports_[rank].get(); }
  AbortSignal& abort(int rank) override { return abort_; }

 private:
  AbortSignal abort_;
  std::vector<std::unique_ptr<Transport>> transports_;
};

// Rings of 4 KiB and pieces of 2 KiB: larger messages lap the ring many times.
class ShmGroup : public TransportGroup {
 public:
  explicit ShmGroup(int world_size)
      : transports_(testing::ConnectShm(testing::UniqueShmPrefix(), world_size,
                                        [&](ShmTransportOptions& o) {
                                          o.ring_bytes = 4096;
                                          o.piece_bytes = 2048;
                                          o.abort = &abort_;
                                        })) {}
  Transport* transport(int rank) override { return transports_[rank].get(); }
  AbortSignal& abort(int rank) override { return abort_; }

 private:
  AbortSignal abort_;
  std::vector<std::unique_ptr<ShmTransport>> transports_;
};

enum class Tls { kOff, kEncrypt, kAuthenticateOnly };

// With `streams` > 1: messages of 1000 bytes or more split over the streams,
// 4 KiB staging buffers and small socket buffers, so that parts, partial reads
// and partial floats all happen (and, with TLS, partial records).
class TcpGroup : public TransportGroup {
 public:
  TcpGroup(int world_size, int streams, Tls tls = Tls::kOff)
      : mesh_(testing::ConnectTcp(
            world_size, [&, context = tls == Tls::kOff ? nullptr : testing::TestTlsContext()](
                            TcpTransportOptions& o) {
              o.abort = &abort_;
              o.tls = context;
              o.encrypt = tls == Tls::kEncrypt;
              if (streams == 1) return;
              o.streams = streams;
              o.tls_write_buffer_bytes = 8192;  // records gather; flushes meet full sockets
              o.split_min_bytes = 1000;
              o.staging_bytes = 4096;
              o.socket_buffer_bytes = 65536;  // smaller stalls in loopback silly-window avoidance
            })) {
    for (const absl::Status& s : mesh_.statuses) EXPECT_TRUE(s.ok()) << s;
  }
  Transport* transport(int rank) override { return mesh_.transports[rank].get(); }
  AbortSignal& abort(int rank) override { return abort_; }

 private:
  AbortSignal abort_;
  testing::TcpMesh mesh_;
};

// Shared memory and TCP behind a RoutedTransport, as "shm+tcp" builds them:
// rank r plays host r / 2, so with 3 and 4 ranks a ring step sends over one
// while receiving over the other (with 2, one host: shm only).
class RoutedGroup : public TransportGroup {
 public:
  explicit RoutedGroup(int world_size) {
    std::vector<std::string> hosts;
    for (int r = 0; r < world_size; ++r) hosts.push_back(absl::StrCat("host-", r / 2));
    auto split = [&](int rank) { return SplitRingNeighboursByHost(rank, hosts); };
    auto shm =
        testing::ConnectShm(testing::UniqueShmPrefix(), world_size, [&](ShmTransportOptions& o) {
          o.peers = split(o.rank).same_host;
          o.ring_bytes = 4096;
          o.piece_bytes = 2048;
          o.abort = &abort_;
        });
    testing::TcpMesh tcp = testing::ConnectTcp(world_size, [&](TcpTransportOptions& o) {
      std::vector<TcpPeerAddress> peers;
      for (int r : split(o.rank).other_hosts) peers.push_back(o.peers[r < o.rank ? r : r - 1]);
      o.peers = std::move(peers);
      o.abort = &abort_;
    });
    for (const absl::Status& s : tcp.statuses) EXPECT_TRUE(s.ok()) << s;
    for (int r = 0; r < world_size; ++r) {
      RoutedTransportOptions o;
      o.kind = "shm+tcp";
      o.route.assign(world_size, kNoRoute);
      for (int peer : split(r).same_host) o.route[peer] = 0;
      for (int peer : split(r).other_hosts) o.route[peer] = 1;
      o.parts.push_back(std::move(shm[r]));
      o.parts.push_back(std::move(tcp.transports[r]));
      auto t = RoutedTransport::Create(std::move(o));
      EXPECT_TRUE(t.ok()) << t.status();
      transports_.push_back(t.ok() ? *std::move(t) : nullptr);
    }
  }
  Transport* transport(int rank) override { return transports_[rank].get(); }
  AbortSignal& abort(int rank) override { return abort_; }

 private:
  AbortSignal abort_;
  std::vector<std::unique_ptr<RoutedTransport>> transports_;
};

// Workers of a TestCluster, each with a gRPC transport "t" over all of them;
// 64 KiB pieces, so that large messages travel as many chunks.
class GrpcGroup : public TransportGroup {
 public:
  explicit GrpcGroup(int world_size) : cluster_({{"worker", world_size}}) {
    testing::TestSettings settings;
    settings.grpc_max_piece_bytes = 64 << 10;
    std::vector<Mesh*> raw;
    for (int r = 0; r < world_size; ++r) {
      meshes_.push_back(cluster_.MakeMesh(testing::Task("worker", r), settings));
      raw.push_back(meshes_.back().get());
    }
    for (const absl::Status& s : testing::StartAll(raw)) EXPECT_TRUE(s.ok()) << s;
    for (int r = 0; r < world_size; ++r) {
      auto t = meshes_[r]->CreateTransport(cluster_.spec().TrainingWorkers(), "grpc", "t");
      EXPECT_TRUE(t.ok()) << t.status();
      transports_.push_back(t.ok() ? *std::move(t) : nullptr);
    }
  }
  Transport* transport(int rank) override { return transports_[rank].get(); }
  AbortSignal& abort(int rank) override { return meshes_[rank]->abort_signal(); }

 private:
  testing::TestCluster cluster_;
  std::vector<std::unique_ptr<Mesh>> meshes_;
  std::vector<std::unique_ptr<Transport>> transports_;
};

struct Kind {
  std::string name;
  std::function<std::unique_ptr<TransportGroup>(int world_size)> make;
};

std::vector<std::byte> Pattern(size_t n, int seed) {
  std::vector<std::byte> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<std::byte>((i * 31 + seed * 7 + 1) & 0xff);
  return bytes;
}

absl::Time Soon() { return absl::Now() + absl::Seconds(30); }

class TransportConformanceTest : public ::testing::TestWithParam<Kind> {
 protected:
  // A group whose every transport connected (the test stops otherwise).
  std::unique_ptr<TransportGroup> Connect(int world_size) {
    auto group = GetParam().make(world_size);
    for (int r = 0; r < world_size; ++r) {
      if (group->transport(r) == nullptr) {
        ADD_FAILURE() << GetParam().name << " rank " << r << " did not connect";
        return nullptr;
      }
    }
    return group;
  }
};

// Both directions at once, for sizes up to several times every internal chunk.
TEST_P(TransportConformanceTest, ExchangeCopiesEverySize) {
  auto group = Connect(2);
  ASSERT_NE(group, nullptr);
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{4096}, size_t{4004}, size_t{262148},
                   size_t{(3 << 20) + 12}, size_t{4 << 20}}) {
    std::vector<std::vector<std::byte>> received(2);
    auto statuses = RunOnRanks(2, [&](int r) {
      std::vector<std::byte> send = Pattern(n, r);
      received[r].assign(n, std::byte{0});
      return group->transport(r)->SendRecv({.send_to = 1 - r,
                                            .send = send,
                                            .recv_from = 1 - r,
                                            .recv = absl::MakeSpan(received[r]),
                                            .deadline = Soon()});
    });
    for (int r = 0; r < 2; ++r) {
      ASSERT_TRUE(statuses[r].ok()) << "n=" << n << " rank " << r << ": " << statuses[r];
      EXPECT_TRUE(received[r] == Pattern(n, 1 - r)) << "n=" << n << " rank " << r;
    }
  }
}

TEST_P(TransportConformanceTest, ExchangeAddsEverySize) {
  auto group = Connect(2);
  ASSERT_NE(group, nullptr);
  for (size_t n : {size_t{0}, size_t{1}, size_t{5}, size_t{1001}, size_t{65537}, size_t{300000},
                   size_t{300001}, size_t{1} << 20}) {
    auto statuses = RunOnRanks(2, [&](int r) -> absl::Status {
      std::vector<float> mine = RankData(r, n), got = RankData(r + 5, n);
      std::vector<float> theirs = RankData(1 - r, n), expect = got;
      for (size_t i = 0; i < n; ++i) expect[i] += theirs[i];
      MESHTRAIN_RETURN_IF_ERROR(group->transport(r)->SendRecv({.send_to = 1 - r,
                                                               .send = AsBytes(mine),
                                                               .recv_from = 1 - r,
                                                               .recv = AsBytes(got),
                                                               .action = RecvAction::kAddFloat32,
                                                               .deadline = Soon()}));
      return got == expect ? absl::OkStatus() : absl::InternalError(absl::StrCat("bad sum, n=", n));
    });
    for (const absl::Status& s : statuses) EXPECT_TRUE(s.ok()) << s;
  }
}

// Messages from one peer arrive in the order sent; zero-length ones included.
TEST_P(TransportConformanceTest, MessagesFromOnePeerKeepTheirOrder) {
  auto group = Connect(2);
  ASSERT_NE(group, nullptr);
  const std::vector<size_t> sizes = {100, 0, 101, 0, 102, 4, 300001, 103};
  auto statuses = RunOnRanks(2, [&](int r) -> absl::Status {
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (r == 0) {
        std::vector<std::byte> send = Pattern(sizes[i], static_cast<int>(i));
        MESHTRAIN_RETURN_IF_ERROR(group->transport(0)->Send(1, send, Soon()));
      } else {
        std::vector<std::byte> got(sizes[i]);
        MESHTRAIN_RETURN_IF_ERROR(group->transport(1)->Recv(0, absl::MakeSpan(got), Soon()));
        if (got != Pattern(sizes[i], static_cast<int>(i))) {
          return absl::InternalError(absl::StrCat("message ", i));
        }
      }
    }
    return absl::OkStatus();
  });
  for (const absl::Status& s : statuses) EXPECT_TRUE(s.ok()) << s;
}

// Every rank sends right while receiving from the left, several rounds: each
// link is blocked in both directions in turn.
TEST_P(TransportConformanceTest, RingShift) {
  for (int world_size : {3, 4}) {
    auto group = Connect(world_size);
    ASSERT_NE(group, nullptr);
    for (size_t n : {size_t{0}, size_t{13}, size_t{200000}, size_t{200003}, size_t{400000}}) {
      auto statuses = RunOnRanks(world_size, [&](int r) -> absl::Status {
        const int right = (r + 1) % world_size, left = (r + world_size - 1) % world_size;
        std::vector<std::byte> send = Pattern(n, r), got(n);
        for (int round = 0; round < 3; ++round) {
          MESHTRAIN_RETURN_IF_ERROR(group->transport(r)->SendRecv({.send_to = right,
                                                                   .send = send,
                                                                   .recv_from = left,
                                                                   .recv = absl::MakeSpan(got),
                                                                   .deadline = Soon()}));
          if (got != Pattern(n, left)) {
            return absl::InternalError(absl::StrCat("round ", round, " n=", n, " rank ", r));
          }
        }
        return absl::OkStatus();
      });
      for (const absl::Status& s : statuses)
        EXPECT_TRUE(s.ok()) << "world " << world_size << ": " << s;
    }
  }
}

TEST_P(TransportConformanceTest, RecvWithNoSenderEndsAtItsDeadlineNamingThePeer) {
  auto group = Connect(2);
  ASSERT_NE(group, nullptr);
  std::vector<std::byte> got(40);
  const absl::Time start = absl::Now();
  absl::Status s =
      group->transport(0)->Recv(1, absl::MakeSpan(got), start + absl::Milliseconds(100));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), group->transport(0)->PeerName(1))) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_P(TransportConformanceTest, AbortEndsAWaitingRecv) {
  auto group = Connect(2);
  ASSERT_NE(group, nullptr);
  std::vector<std::byte> got(40);
  absl::Notification receiving;
  std::thread aborter([&] {
    receiving.WaitForNotification();
    group->abort(0).Abort(absl::AbortedError("worker:1 failed at step 7"));
  });
  receiving.Notify();
  absl::Status s =
      group->transport(0)->Recv(1, absl::MakeSpan(got), absl::Now() + absl::Seconds(60));
  aborter.join();
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "worker:1 failed at step 7")) << s;
}

// The sender's byte count must equal the receiver's; else the receiver fails.
TEST_P(TransportConformanceTest, SizeMismatchFailsTheReceiver) {
  auto group = Connect(2);
  ASSERT_NE(group, nullptr);
  auto statuses = RunOnRanks(2, [&](int r) -> absl::Status {
    std::vector<float> buf(r == 0 ? 4 : 5);
    if (r == 0) return group->transport(0)->Send(1, AsBytes(buf), absl::Now() + absl::Seconds(10));
    return group->transport(1)->Recv(0, AsBytes(buf), absl::Now() + absl::Seconds(10));
  });
  EXPECT_FALSE(statuses[1].ok());
  EXPECT_TRUE(absl::StrContains(statuses[1].message(), "16")) << statuses[1];
}

TEST_P(TransportConformanceTest, RejectsBadOps) {
  auto group = Connect(2);
  ASSERT_NE(group, nullptr);
  std::vector<float> buf(2);
  EXPECT_EQ(group->transport(0)->Send(2, AsBytes(buf), Soon()).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<std::byte> odd(7);
  EXPECT_EQ(group->transport(0)
                ->SendRecv({.recv_from = 1,
                            .recv = absl::MakeSpan(odd),
                            .action = RecvAction::kAddFloat32,
                            .deadline = Soon()})
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(TransportConformanceTest, StatsCountPayloadBytesOfCompletedOps) {
  auto group = Connect(2);
  ASSERT_NE(group, nullptr);
  auto statuses = RunOnRanks(2, [&](int r) -> absl::Status {
    Transport& t = *group->transport(r);
    std::vector<float> mine(1000 + 3 * r, 1.0f), got(1000 + 3 * (1 - r));
    // An exchange of different sizes, then a one-way message 0 -> 1.
    MESHTRAIN_RETURN_IF_ERROR(t.SendRecv({.send_to = 1 - r,
                                          .send = AsBytes(mine),
                                          .recv_from = 1 - r,
                                          .recv = AsBytes(got),
                                          .deadline = Soon()}));
    std::vector<float> one(7);
    return r == 0 ? t.Send(1, AsBytes(one), Soon()) : t.Recv(0, AsBytes(one), Soon());
  });
  for (const absl::Status& s : statuses) ASSERT_TRUE(s.ok()) << s;
  const TransportStats s0 = group->transport(0)->stats(), s1 = group->transport(1)->stats();
  EXPECT_EQ(s0.bytes_sent, 1000 * 4 + 7 * 4);
  EXPECT_EQ(s0.bytes_received, 1003 * 4);
  EXPECT_EQ(s1.bytes_sent, 1003 * 4);
  EXPECT_EQ(s1.bytes_received, 1000 * 4 + 7 * 4);
}

TEST_P(TransportConformanceTest, StatsCountTimeBlockedOnALatePeer) {
  constexpr absl::Duration kLate = absl::Milliseconds(40);
  auto group = Connect(2);
  ASSERT_NE(group, nullptr);
  const size_t n = (1 << 20) + 5;  // several gRPC pieces, many shm ring laps
  absl::Notification receiving;
  absl::Time started, received_at;
  auto statuses = RunOnRanks(2, [&](int r) -> absl::Status {
    std::vector<std::byte> data = Pattern(n, r);
    if (r == 0) {
      started = absl::Now();
      receiving.Notify();
      absl::Status s = group->transport(0)->Recv(1, absl::MakeSpan(data), Soon());
      received_at = absl::Now();
      return s;
    }
    receiving.WaitForNotification();
    absl::SleepFor(kLate);  // the straggler being measured, not synchronisation
    return group->transport(1)->Send(0, data, Soon());
  });
  for (const absl::Status& s : statuses) ASSERT_TRUE(s.ok()) << s;
  const TransportStats receiver = group->transport(0)->stats();
  const TransportStats sender = group->transport(1)->stats();
  EXPECT_EQ(receiver.bytes_received, static_cast<int64_t>(n));
  EXPECT_EQ(receiver.bytes_sent, 0);
  EXPECT_EQ(sender.bytes_sent, static_cast<int64_t>(n));
  EXPECT_GE(receiver.blocked, kLate * 0.75) << absl::FormatDuration(receiver.blocked);
  EXPECT_LE(receiver.blocked, received_at - started);
}

INSTANTIATE_TEST_SUITE_P(
    AllTransports, TransportConformanceTest,
    ::testing::Values(
        Kind{"in_process", [](int n) { return std::make_unique<InProcessGroup>(n); }},
        Kind{"shm", [](int n) { return std::make_unique<ShmGroup>(n); }},
        Kind{"tcp", [](int n) { return std::make_unique<TcpGroup>(n, 1); }},
        Kind{"tcp_3_streams", [](int n) { return std::make_unique<TcpGroup>(n, 3); }},
        Kind{"tcp_tls", [](int n) { return std::make_unique<TcpGroup>(n, 1, Tls::kEncrypt); }},
        Kind{"tcp_tls_3_streams",
             [](int n) { return std::make_unique<TcpGroup>(n, 3, Tls::kEncrypt); }},
        Kind{"tcp_tls_auth_3_streams",
             [](int n) { return std::make_unique<TcpGroup>(n, 3, Tls::kAuthenticateOnly); }},
        Kind{"grpc", [](int n) { return std::make_unique<GrpcGroup>(n); }},
        Kind{"shm_tcp", [](int n) { return std::make_unique<RoutedGroup>(n); }}),
    [](const ::testing::TestParamInfo<Kind>& info) { return info.param.name; });

}  // namespace
}  // namespace meshtrain

// RoutedTransport over two in-process meshes, with ring neighbours alternating
// between them, so that most ring steps send on one mesh while receiving on the
// other. The in-process mesh is a rendezvous (a send returns only once the peer
// consumed it), so a routed transport that sent before receiving would
// deadlock every ring step here, whatever the size.
#include "runtime/transport/routed_transport.h"

#include <array>
#include <memory>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/base/status_macros.h"
#include "runtime/transport/fault_injection_transport.h"
#include "runtime/transport/in_process_transport.h"
#include "tests/unit/transport/run_on_ranks.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::AsBytes;
using ::meshtrain::testing::RankData;
using ::meshtrain::testing::RunOnRanks;

absl::Time Soon() { return absl::Now() + absl::Seconds(30); }

// Symmetric, and along the ring edge (r, r+1) uses mesh r % 2: neighbours alternate.
int MeshOf(int a, int b) { return ((a + b) / 2) % 2; }

struct RoutedMesh {
  std::vector<std::unique_ptr<RoutedTransport>> transports;
  std::vector<std::array<Transport*, 2>> parts;  // [rank][mesh], owned by transports
};

// `world_size` routed transports over two in-process meshes; `unrouted` (if
// >= 0) is a peer that rank 0 has no route to.
RoutedMesh CreateRoutedMesh(int world_size, int unrouted = -1) {
  std::array<std::vector<std::unique_ptr<Transport>>, 2> meshes = {CreateInProcessMesh(world_size),
                                                                   CreateInProcessMesh(world_size)};
  RoutedMesh mesh;
  for (int r = 0; r < world_size; ++r) {
    RoutedTransportOptions options;
    options.kind = "in_process+in_process";
    mesh.parts.push_back({meshes[0][r].get(), meshes[1][r].get()});
    options.parts.push_back(std::move(meshes[0][r]));
    options.parts.push_back(std::move(meshes[1][r]));
    for (int peer = 0; peer < world_size; ++peer) {
      const bool routed = peer != r && !(r == 0 && peer == unrouted);
      options.route.push_back(routed ? MeshOf(r, peer) : kNoRoute);
    }
    auto transport = RoutedTransport::Create(std::move(options));
    EXPECT_TRUE(transport.ok()) << transport.status();
    mesh.transports.push_back(transport.ok() ? *std::move(transport) : nullptr);
  }
  return mesh;
}

absl::Span<std::byte> Chunk(std::vector<float>& data, int chunk, int chunks) {
  const size_t begin = data.size() * chunk / chunks, end = data.size() * (chunk + 1) / chunks;
  return {reinterpret_cast<std::byte*>(data.data() + begin), (end - begin) * sizeof(float)};
}

// A ring allreduce in plain SendRecv steps: n-1 reduce-scatter steps (rank r
// sends chunk r-s and adds chunk r-s-1 from its left), then n-1 all-gather
// steps (sends chunk r+1-s, copies chunk r-s).
absl::Status RingAllReduce(Transport& t, std::vector<float>& data) {
  const int n = t.world_size(), r = t.rank();
  const int right = (r + 1) % n, left = (r + n - 1) % n;
  for (int s = 0; s < n - 1; ++s) {
    MESHTRAIN_RETURN_IF_ERROR(t.SendRecv({.send_to = right,
                                          .send = Chunk(data, (r - s + n) % n, n),
                                          .recv_from = left,
                                          .recv = Chunk(data, (r - s - 1 + n) % n, n),
                                          .action = RecvAction::kAddFloat32,
                                          .deadline = Soon()}));
  }
  for (int s = 0; s < n - 1; ++s) {
    MESHTRAIN_RETURN_IF_ERROR(t.SendRecv({.send_to = right,
                                          .send = Chunk(data, (r + 1 - s + n) % n, n),
                                          .recv_from = left,
                                          .recv = Chunk(data, (r - s + n) % n, n),
                                          .deadline = Soon()}));
  }
  return absl::OkStatus();
}

class RoutedRingAllReduceTest : public ::testing::TestWithParam<std::tuple<int, size_t>> {};

TEST_P(RoutedRingAllReduceTest, MatchesReferenceAndIsIdenticalOnAllRanks) {
  auto [n, length] = GetParam();
  RoutedMesh mesh = CreateRoutedMesh(n);
  std::vector<std::vector<float>> results(n);
  auto statuses = RunOnRanks(n, [&](int r) {
    results[r] = RankData(r, length);
    return RingAllReduce(*mesh.transports[r], results[r]);
  });
  for (const absl::Status& s : statuses) ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(testing::IsSumOnEveryRank(results, length));
}

INSTANTIATE_TEST_SUITE_P(WorldSizesAndLengths, RoutedRingAllReduceTest,
                         ::testing::Combine(::testing::Values(1, 2, 3, 4, 8),
                                            ::testing::Values(size_t{0}, size_t{1}, size_t{7},
                                                              size_t{1001},
                                                              (size_t{3} << 20) / 4 + 3)));

// Whole 4 MiB messages around the ring, three rounds.
TEST(RoutedTransportTest, RingShiftOfLargeMessages) {
  for (int n : {3, 4}) {
    RoutedMesh mesh = CreateRoutedMesh(n);
    const size_t length = (size_t{4} << 20) / 4;
    auto statuses = RunOnRanks(n, [&](int r) -> absl::Status {
      const int right = (r + 1) % n, left = (r + n - 1) % n;
      std::vector<float> mine = RankData(r, length), got(length);
      for (int round = 0; round < 3; ++round) {
        MESHTRAIN_RETURN_IF_ERROR(mesh.transports[r]->SendRecv({.send_to = right,
                                                                .send = AsBytes(mine),
                                                                .recv_from = left,
                                                                .recv = AsBytes(got),
                                                                .deadline = Soon()}));
        if (got != RankData(left, length))
          return absl::InternalError(absl::StrCat("round ", round));
      }
      return absl::OkStatus();
    });
    for (const absl::Status& s : statuses) EXPECT_TRUE(s.ok()) << "world " << n << ": " << s;
  }
}

TEST(RoutedTransportTest, StatsSumTheParts) {
  RoutedMesh mesh = CreateRoutedMesh(3);
  auto statuses = RunOnRanks(3, [&](int r) -> absl::Status {
    std::vector<float> mine(1000, 1.0f), got(1000);
    return mesh.transports[r]->SendRecv({.send_to = (r + 1) % 3,
                                         .send = AsBytes(mine),
                                         .recv_from = (r + 2) % 3,
                                         .recv = AsBytes(got),
                                         .deadline = Soon()});
  });
  for (const absl::Status& s : statuses) ASSERT_TRUE(s.ok()) << s;
  // Rank 0 sends to rank 1 on mesh 0 and receives from rank 2 on mesh 1.
  EXPECT_EQ(mesh.parts[0][0]->stats().bytes_sent, 4000);
  EXPECT_EQ(mesh.parts[0][1]->stats().bytes_received, 4000);
  for (int r = 0; r < 3; ++r) {
    const TransportStats s = mesh.transports[r]->stats();
    EXPECT_EQ(s.bytes_sent, 4000) << "rank " << r;
    EXPECT_EQ(s.bytes_received, 4000) << "rank " << r;
  }
}

TEST(RoutedTransportTest, UnroutedPeerIsInvalidArgument) {
  RoutedMesh mesh = CreateRoutedMesh(3, /*unrouted=*/2);
  std::vector<float> buf(2);
  absl::Status s = mesh.transports[0]->Send(2, AsBytes(buf), Soon());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "no route to peer 2")) << s;
  s = mesh.transports[0]->SendRecv(
      {.send_to = 1, .send = AsBytes(buf), .recv_from = 2, .recv = AsBytes(buf)});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(mesh.transports[0]->Send(0, AsBytes(buf), Soon()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mesh.transports[0]->Send(3, AsBytes(buf), Soon()).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RoutedTransportTest, CreateRejectsMalformedOptions) {
  auto make = [](int world_size, std::vector<int> route) {
    RoutedTransportOptions o;
    o.kind = "a+b";
    o.parts.push_back(std::move(CreateInProcessMesh(world_size)[0]));
    o.route = std::move(route);
    return RoutedTransport::Create(std::move(o)).status();
  };
  EXPECT_TRUE(make(2, {kNoRoute, 0}).ok());
  EXPECT_EQ(make(2, {kNoRoute}).code(), absl::StatusCode::kInvalidArgument);     // size
  EXPECT_EQ(make(2, {0, 0}).code(), absl::StatusCode::kInvalidArgument);         // self
  EXPECT_EQ(make(2, {kNoRoute, 1}).code(), absl::StatusCode::kInvalidArgument);  // no part 1
  EXPECT_EQ(RoutedTransport::Create({}).status().code(), absl::StatusCode::kInvalidArgument);
  RoutedTransportOptions mixed_sizes;
  mixed_sizes.parts.push_back(std::move(CreateInProcessMesh(2)[0]));
  mixed_sizes.parts.push_back(std::move(CreateInProcessMesh(3)[0]));
  mixed_sizes.route = {kNoRoute, 0};
  EXPECT_EQ(RoutedTransport::Create(std::move(mixed_sizes)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RoutedTransportTest, SplitOpCompletesAtItsDeadlineWhenNoPeerMoves) {
  RoutedMesh mesh = CreateRoutedMesh(3);
  std::vector<float> mine(8), got(8);
  absl::Status s = mesh.transports[0]->SendRecv({.send_to = 1,
                                                 .send = AsBytes(mine),
                                                 .recv_from = 2,
                                                 .recv = AsBytes(got),
                                                 .deadline = absl::Now() + absl::Milliseconds(50)});
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
}

// Rank 0 of three with one part (to rank 1) wrapped in a FaultInjectionTransport.
struct FaultyRank0 {
  std::array<std::vector<std::unique_ptr<Transport>>, 2> meshes = {CreateInProcessMesh(3),
                                                                   CreateInProcessMesh(3)};
  FaultInjectionTransport* to_right = nullptr;   // rank 0 -> rank 1, mesh 0
  FaultInjectionTransport* from_left = nullptr;  // rank 2 -> rank 0, mesh 1
  std::unique_ptr<RoutedTransport> rank0;

  FaultyRank0() {
    RoutedTransportOptions o;
    o.kind = "faulty";
    auto right = std::make_unique<FaultInjectionTransport>(meshes[0][0].get());
    auto left = std::make_unique<FaultInjectionTransport>(meshes[1][0].get());
    to_right = right.get();
    from_left = left.get();
    o.parts.push_back(std::move(right));
    o.parts.push_back(std::move(left));
    o.route = {kNoRoute, 0, 1};
    rank0 = *RoutedTransport::Create(std::move(o));
  }

  // Rank 0 sends to 1 while receiving from 2; ranks 1 and 2 do their side
  // unless told not to. Returns the three statuses.
  std::vector<absl::Status> RingStep(bool rank1_receives, bool rank2_sends) {
    return RunOnRanks(3, [&](int r) -> absl::Status {
      std::vector<float> buf(16, 1.0f), got(16);
      if (r == 0) {
        return rank0->SendRecv({.send_to = 1,
                                .send = AsBytes(buf),
                                .recv_from = 2,
                                .recv = AsBytes(got),
                                .deadline = Soon()});
      }
      if (r == 1 && rank1_receives) return meshes[0][1]->Recv(0, AsBytes(got), Soon());
      if (r == 2 && rank2_sends) return meshes[1][2]->Send(0, AsBytes(buf), Soon());
      return absl::OkStatus();
    });
  }
};

TEST(RoutedTransportTest, AFailedSendIsTheOpsError) {
  FaultyRank0 f;
  f.to_right->Inject(0, Fault{Fault::Kind::kFail, absl::UnavailableError("cable cut")});
  auto statuses = f.RingStep(/*rank1_receives=*/false, /*rank2_sends=*/true);
  EXPECT_EQ(statuses[0], absl::UnavailableError("cable cut"));
  EXPECT_TRUE(statuses[2].ok()) << statuses[2];
}

TEST(RoutedTransportTest, AFailedReceiveIsTheOpsErrorOnceTheSendIsDone) {
  FaultyRank0 f;
  f.from_left->Inject(0, Fault{Fault::Kind::kFail, absl::UnavailableError("peer gone")});
  auto statuses = f.RingStep(/*rank1_receives=*/true, /*rank2_sends=*/false);
  EXPECT_EQ(statuses[0], absl::UnavailableError("peer gone"));
  EXPECT_TRUE(statuses[1].ok()) << statuses[1];
}

TEST(RoutedTransportTest, WhenBothSidesFailTheNonAbortedErrorWins) {
  for (bool send_aborted : {true, false}) {
    FaultyRank0 f;
    const absl::Status aborted = absl::AbortedError("worker:5 failed");
    const absl::Status cause = absl::UnavailableError("cable cut");
    f.to_right->Inject(0, Fault{Fault::Kind::kFail, send_aborted ? aborted : cause});
    f.from_left->Inject(0, Fault{Fault::Kind::kFail, send_aborted ? cause : aborted});
    auto statuses = f.RingStep(/*rank1_receives=*/false, /*rank2_sends=*/false);
    EXPECT_EQ(statuses[0], cause) << "send_aborted=" << send_aborted;
  }
}

TEST(RoutedTransportTest, KindAndPeerNames) {
  RoutedMesh mesh = CreateRoutedMesh(3);
  EXPECT_EQ(mesh.transports[1]->kind(), "in_process+in_process");
  EXPECT_EQ(mesh.transports[1]->PeerName(2), "rank 2");
  EXPECT_EQ(mesh.transports[1]->rank(), 1);
  EXPECT_EQ(mesh.transports[1]->world_size(), 3);
}

TEST(RoutedTransportTest, SplitRingNeighboursByHost) {
  const std::vector<std::string> two_by_two = {"a", "a", "b", "b"};
  RingNeighboursByHost split = SplitRingNeighboursByHost(0, two_by_two);
  EXPECT_EQ(split.same_host, std::vector<int>{1});
  EXPECT_EQ(split.other_hosts, std::vector<int>{3});
  split = SplitRingNeighboursByHost(1, two_by_two);
  EXPECT_EQ(split.same_host, std::vector<int>{0});
  EXPECT_EQ(split.other_hosts, std::vector<int>{2});
  split = SplitRingNeighboursByHost(2, {"a", "a", "b"});
  EXPECT_TRUE(split.same_host.empty());
  EXPECT_EQ(split.other_hosts, (std::vector<int>{0, 1}));
  split = SplitRingNeighboursByHost(0, {"a"});
  EXPECT_TRUE(split.same_host.empty() && split.other_hosts.empty());
}

}  // namespace
}  // namespace meshtrain

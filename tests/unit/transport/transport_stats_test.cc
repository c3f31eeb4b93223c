// Transport::stats() on every transport of this folder: completed payload bytes
// in both directions, and time blocked on a late peer.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "runtime/transport/in_process_transport.h"
#include "runtime/transport/transport.h"
#include "tests/unit/transport/run_on_ranks.h"
#include "tests/unit/transport/transport_meshes.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::AsBytes;
using ::meshtrain::testing::RunOnRanks;

constexpr absl::Duration kLate = absl::Milliseconds(40);

// Two ranks, each transport driven by its own thread, however made.
struct Pair {
  std::string name;
  std::vector<Transport*> transports;
  std::vector<std::unique_ptr<Transport>> owned;
};

std::vector<Pair> AllPairs() {
  std::vector<Pair> pairs;
  {
    Pair p{"in_process", {}, CreateInProcessMesh(2)};
    for (auto& t : p.owned) p.transports.push_back(t.get());
    pairs.push_back(std::move(p));
  }
  {
    Pair p{"shm", {}, {}};
    for (auto& t : testing::ConnectShm(testing::UniqueShmPrefix(), 2)) p.owned.push_back(std::move(t));
    for (auto& t : p.owned) p.transports.push_back(t.get());
    pairs.push_back(std::move(p));
  }
  {
    Pair p{"tcp", {}, {}};
    testing::TcpMesh mesh = testing::ConnectTcp(2);
    for (auto& t : mesh.transports) p.owned.push_back(std::move(t));
    for (auto& t : p.owned) p.transports.push_back(t.get());
    pairs.push_back(std::move(p));
  }
  return pairs;
}

TEST(TransportStatsTest, CountsPayloadBytesOfCompletedOps) {
  for (Pair& pair : AllPairs()) {
    SCOPED_TRACE(pair.name);
    ASSERT_EQ(pair.transports.size(), 2u);
    for (Transport* t : pair.transports) ASSERT_NE(t, nullptr);
    auto statuses = RunOnRanks(2, [&](int r) -> absl::Status {
      Transport& t = *pair.transports[r];
      std::vector<float> mine(1000 + 3 * r, 1.0f), got(1000 + 3 * (1 - r));
      // An exchange of different sizes, then a one-way message 0 -> 1.
      if (auto s = t.SendRecv({.send_to = 1 - r, .send = AsBytes(mine), .recv_from = 1 - r,
                               .recv = AsBytes(got), .deadline = absl::Now() + absl::Seconds(20)});
          !s.ok()) {
        return s;
      }
      std::vector<float> one(7);
      return r == 0 ? t.Send(1, AsBytes(one), absl::Now() + absl::Seconds(20))
                    : t.Recv(0, AsBytes(one), absl::Now() + absl::Seconds(20));
    });
    for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
    const TransportStats s0 = pair.transports[0]->stats(), s1 = pair.transports[1]->stats();
    EXPECT_EQ(s0.bytes_sent, 1000 * 4 + 7 * 4);
    EXPECT_EQ(s0.bytes_received, 1003 * 4);
    EXPECT_EQ(s1.bytes_sent, 1003 * 4);
    EXPECT_EQ(s1.bytes_received, 1000 * 4 + 7 * 4);
  }
}

TEST(TransportStatsTest, CountsTimeBlockedOnALatePeer) {
  for (Pair& pair : AllPairs()) {
    SCOPED_TRACE(pair.name);
    for (Transport* t : pair.transports) ASSERT_NE(t, nullptr);
    const TransportStats before = pair.transports[0]->stats();
    absl::Notification receiving;
    absl::Time received_at;
    absl::Time started;
    auto statuses = RunOnRanks(2, [&](int r) -> absl::Status {
      std::vector<float> data(256, 2.0f);
      if (r == 0) {
        started = absl::Now();
        receiving.Notify();
        absl::Status s = pair.transports[0]->Recv(1, AsBytes(data), absl::Now() + absl::Seconds(20));
        received_at = absl::Now();
        return s;
      }
      receiving.WaitForNotification();
      absl::SleepFor(kLate);  // the straggler being measured, not synchronisation
      return pair.transports[1]->Send(0, AsBytes(data), absl::Now() + absl::Seconds(20));
    });
    for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
    const TransportStats waited = pair.transports[0]->stats() - before;
    EXPECT_GE(waited.blocked, kLate * 0.75) << absl::FormatDuration(waited.blocked);
    EXPECT_LE(waited.blocked, received_at - started);
    EXPECT_EQ(waited.bytes_received, 256 * 4);
  }
}

TEST(TransportStatsTest, DifferenceOfSnapshots) {
  TransportStats a{10, 20, absl::Milliseconds(5)}, b{3, 4, absl::Milliseconds(2)};
  TransportStats d = a - b;
  EXPECT_EQ(d.bytes_sent, 7);
  EXPECT_EQ(d.bytes_received, 16);
  EXPECT_EQ(d.blocked, absl::Milliseconds(3));
}

}  // namespace
}  // namespace meshtrain

#include "runtime/collective/hierarchical_communicator.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/collective/ring_communicator.h"
#include "runtime/transport/in_process_transport.h"
#include "tests/unit/transport/run_on_ranks.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::IsSumOnEveryRank;
using ::meshtrain::testing::RankData;
using ::meshtrain::testing::RunOnRanks;

const CollectiveContext kCtx{7, "gradients", absl::InfiniteFuture()};

TEST(HostLayoutTest, GroupsRanksByHostAndLeadsWithTheFirst) {
  const std::vector<std::string> hosts = {"a", "b", "a", "c", "b", "a"};
  const HostLayout of2 = LayOutHosts(hosts, 2);
  EXPECT_EQ(of2.local_ranks, (std::vector<int>{0, 2, 5}));
  EXPECT_EQ(of2.leaders, (std::vector<int>{0, 1, 3}));
  EXPECT_FALSE(of2.leader);
  EXPECT_EQ(of2.num_hosts(), 3);
  const HostLayout of1 = LayOutHosts(hosts, 1);
  EXPECT_EQ(of1.local_ranks, (std::vector<int>{1, 4}));
  EXPECT_TRUE(of1.leader);
  EXPECT_TRUE(LayOutHosts(hosts, 3).leader);  // alone on c
}

TEST(HostLayoutTest, HierarchyPaysOnlyAcrossHostsWithSharedHosts) {
  EXPECT_FALSE(HierarchyPays({"a", "a", "a"}));      // one host: shared memory only
  EXPECT_FALSE(HierarchyPays({"a", "b", "c"}));      // one rank per host: the flat ring
  EXPECT_TRUE(HierarchyPays({"a", "a", "b", "b"}));  // 2 hosts x 2
  EXPECT_TRUE(HierarchyPays({"a", "b", "a"}));       // uneven
  EXPECT_FALSE(HierarchyPays({}));
}

// A cluster of threads laid out on hosts: each rank gets its flat, local and
// (leaders only) leaders' in-process transports.
class FakeHosts {
 public:
  explicit FakeHosts(std::vector<std::string> hosts) : hosts_(std::move(hosts)) {
    const int n = static_cast<int>(hosts_.size());
    flat_ = CreateInProcessMesh(n);
    local_.resize(n);
    leader_transport_.resize(n);
    const HostLayout any = LayOutHosts(hosts_, 0);
    std::vector<std::unique_ptr<Transport>> leaders = CreateInProcessMesh(any.num_hosts());
    for (int r = 0; r < n; ++r) {
      const HostLayout layout = LayOutHosts(hosts_, r);
      if (!layout.leader) continue;
      std::vector<std::unique_ptr<Transport>> local =
          CreateInProcessMesh(static_cast<int>(layout.local_ranks.size()));
      for (size_t i = 0; i < layout.local_ranks.size(); ++i) {
        local_[layout.local_ranks[i]] = std::move(local[i]);
      }
      const int host = static_cast<int>(std::find(layout.leaders.begin(), layout.leaders.end(), r) -
                                        layout.leaders.begin());
      leader_transport_[r] = std::move(leaders[host]);
    }
  }

  int size() const { return static_cast<int>(hosts_.size()); }

  // `leaders_wire`: how the leaders' ring moves its chunks (cross_worker.cc
  // applies --wire-dtype there only).
  std::unique_ptr<HierarchicalCommunicator> Communicator(
      int r, WireDtype leaders_wire = WireDtype::kFloat32) {
    auto comm = HierarchicalCommunicator::Create(
        std::make_unique<RingCommunicator>(flat_[r].get()),
        std::make_unique<RingCommunicator>(local_[r].get()),
        leader_transport_[r]
            ? std::make_unique<RingCommunicator>(
                  leader_transport_[r].get(), RingCommunicatorOptions{.wire_dtype = leaders_wire})
            : nullptr);
    EXPECT_TRUE(comm.ok()) << comm.status();
    return comm.ok() ? *std::move(comm) : nullptr;
  }

 private:
  std::vector<std::string> hosts_;
  std::vector<std::unique_ptr<Transport>> flat_, local_, leader_transport_;
};

class HierarchicalAllReduceTest
    : public ::testing::TestWithParam<std::tuple<std::vector<std::string>, size_t>> {};

TEST_P(HierarchicalAllReduceTest, SumsOverEveryRankIdenticallyOnAll) {
  const auto& [hosts, length] = GetParam();
  FakeHosts cluster(hosts);
  std::vector<std::vector<float>> results(cluster.size());
  auto statuses = RunOnRanks(cluster.size(), [&](int r) -> absl::Status {
    auto comm = cluster.Communicator(r);
    EXPECT_EQ(comm->rank(), r);
    EXPECT_EQ(comm->world_size(), cluster.size());
    results[r] = RankData(r, length);
    return comm->AllReduceSum(absl::MakeSpan(results[r]), kCtx);
  });
  for (const absl::Status& s : statuses) ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(IsSumOnEveryRank(results, length));
}

INSTANTIATE_TEST_SUITE_P(
    HostsAndLengths, HierarchicalAllReduceTest,
    ::testing::Combine(::testing::Values(std::vector<std::string>{"a"},
                                         std::vector<std::string>{"a", "a", "b", "b"},
                                         std::vector<std::string>{"a", "b", "a"},
                                         std::vector<std::string>{"a", "a", "a", "b", "b", "b", "c",
                                                                  "c"}),
                       ::testing::Values(size_t{0}, size_t{1}, size_t{1001}, size_t{1} << 18)));

// bfloat16 between the leaders: every rank still ends with the same bits,
// within the ring's bound (runtime/collective/ring_communicator.h) of the sum.
TEST(HierarchicalAllReduceTest, Bfloat16BetweenLeadersIsIdenticalOnEveryRank) {
  FakeHosts cluster({"a", "a", "a", "b", "b", "b", "c", "c"});
  const int n = cluster.size();
  for (size_t length : {size_t{1}, size_t{1001}, size_t{1} << 18}) {
    std::vector<std::vector<float>> results(n);
    auto statuses = RunOnRanks(n, [&](int r) -> absl::Status {
      auto comm = cluster.Communicator(r, WireDtype::kBFloat16);
      results[r] = RankData(r, length);
      return comm->AllReduceSum(absl::MakeSpan(results[r]), kCtx);
    });
    for (const absl::Status& s : statuses) ASSERT_TRUE(s.ok()) << s;
    for (int r = 1; r < n; ++r) ASSERT_EQ(results[r], results[0]) << "rank " << r;
    size_t rounded = 0;
    for (size_t i = 0; i < length; ++i) {
      const testing::ExactSum exact = testing::ExactSumAt(n, i);
      ASSERT_LE(std::fabs(results[0][i] - exact.sum),
                testing::SixteenBitSumBound(std::ldexp(1.0, -8), n, exact.magnitudes))
          << i;
      const uint32_t bits = std::bit_cast<uint32_t>(results[0][i]);
      if ((bits & 0xffffu) == 0) ++rounded;
    }
    // The leaders' ring delivers bfloat16 values: their low 16 bits are zero.
    EXPECT_EQ(rounded, length);
  }
}

// Where every partial sum is exact (small integers), any order of the same
// additions gives the same bits: the hierarchy equals the flat ring exactly.
TEST(HierarchicalAllReduceTest, EqualsTheFlatRingBitForBitWhereSumsAreExact) {
  const std::vector<std::string> hosts = {"a", "a", "b", "b", "c", "c", "c", "d"};
  const size_t length = 4099;
  auto values = [](int r) {
    std::vector<float> v(length);
    for (size_t i = 0; i < length; ++i) v[i] = static_cast<float>((i * 31 + r * 17) % 2001) - 1000;
    return v;
  };
  FakeHosts cluster(hosts);
  auto flat_mesh = CreateInProcessMesh(cluster.size());
  std::vector<std::vector<float>> hierarchical(cluster.size()), flat(cluster.size());
  auto statuses = RunOnRanks(cluster.size(), [&](int r) -> absl::Status {
    hierarchical[r] = values(r);
    flat[r] = values(r);
    RingCommunicator ring(flat_mesh[r].get());
    if (auto s = ring.AllReduceSum(absl::MakeSpan(flat[r]), kCtx); !s.ok()) return s;
    return cluster.Communicator(r)->AllReduceSum(absl::MakeSpan(hierarchical[r]), kCtx);
  });
  for (const absl::Status& s : statuses) ASSERT_TRUE(s.ok()) << s;
  for (int r = 0; r < cluster.size(); ++r) {
    EXPECT_EQ(0, std::memcmp(hierarchical[r].data(), flat[0].data(), length * sizeof(float)))
        << "rank " << r;
  }
}

TEST(HierarchicalCommunicatorTest, RefusesLeadersOnANonLeader) {
  auto mesh = CreateInProcessMesh(2);
  auto leaders = CreateInProcessMesh(1);
  auto local = CreateInProcessMesh(2);
  auto comm =
      HierarchicalCommunicator::Create(std::make_unique<RingCommunicator>(mesh[1].get()),
                                       std::make_unique<RingCommunicator>(local[1].get()),
                                       std::make_unique<RingCommunicator>(leaders[0].get()));
  ASSERT_FALSE(comm.ok());
  EXPECT_THAT(comm.status().message(), ::testing::HasSubstr("is not its host's leader"));
}

}  // namespace
}  // namespace meshtrain

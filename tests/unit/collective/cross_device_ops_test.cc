#include "runtime/collective/cross_device_ops.h"

#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "runtime/collective/ring_communicator.h"
#include "runtime/transport/in_process_transport.h"
#include "tests/unit/transport/run_on_ranks.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::RankData;
using ::meshtrain::testing::RunOnRanks;

CollectiveContext Ctx() { return {9, "gradients", absl::Now() + absl::Seconds(30)}; }

class CrossDeviceOpsTest : public ::testing::TestWithParam<std::tuple<std::string, int, size_t>> {};

TEST_P(CrossDeviceOpsTest, SumsIdenticallyInEveryReplica) {
  auto [name, replicas, length] = GetParam();
  auto ops = CreateCrossDeviceOps(name, replicas);
  ASSERT_TRUE(ops.ok()) << ops.status();
  EXPECT_EQ((*ops)->name(), name);
  std::vector<std::vector<float>> bufs(replicas);
  for (int round = 0; round < 3; ++round) {  // reuse across steps
    auto statuses = RunOnRanks(replicas, [&](int r) {
      bufs[r] = RankData(r, length);
      return (*ops)->AllReduce(r, absl::MakeSpan(bufs[r]), Ctx());
    });
    for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
  }
  EXPECT_TRUE(testing::IsSumOnEveryRank(bufs, length));
}

INSTANTIATE_TEST_SUITE_P(
    NamesReplicasLengths, CrossDeviceOpsTest,
    ::testing::Combine(::testing::Values("reduce_to_one_device", "hierarchical_copy", "ring"),
                       ::testing::Values(1, 2, 3, 8),
                       ::testing::Values(size_t{0}, size_t{1}, size_t{1001}, size_t{16 * 8 * 3 + 7},
                                         size_t{1} << 20)));

TEST(CrossDeviceOpsFactoryTest, UnknownNameListsTheValidOnes) {
  auto ops = CreateCrossDeviceOps("nccl_all_reduce", 2);
  EXPECT_EQ(ops.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(ops.status().message(),
                                "valid: reduce_to_one_device, hierarchical_copy, ring"))
      << ops.status();
  EXPECT_EQ(CreateCrossDeviceOps("ring", 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CrossDeviceOpsFactoryTest, MismatchedLengthsFailOnEveryReplica) {
  auto ops = CreateCrossDeviceOps("ring", 3);
  ASSERT_TRUE(ops.ok());
  std::vector<std::vector<float>> bufs{std::vector<float>(10), std::vector<float>(10),
                                       std::vector<float>(11)};
  auto statuses =
      RunOnRanks(3, [&](int r) { return (*ops)->AllReduce(r, absl::MakeSpan(bufs[r]), Ctx()); });
  for (const auto& s : statuses) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "replica 2 has 11 elements")) << s;
  }
}

TEST(CrossDeviceOpsFactoryTest, MissingReplicaIsADeadlineNamingIt) {
  for (absl::string_view name : CrossDeviceOpsNames()) {
    auto ops = CreateCrossDeviceOps(name, 3);
    ASSERT_TRUE(ops.ok());
    std::vector<std::vector<float>> bufs(3, std::vector<float>(8));
    auto statuses = RunOnRanks(2, [&](int r) {  // replica 2 never comes
      CollectiveContext ctx{9, "gradients", absl::Now() + absl::Milliseconds(50)};
      return (*ops)->AllReduce(r, absl::MakeSpan(bufs[r]), ctx);
    });
    for (const auto& s : statuses) {
      EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
      EXPECT_TRUE(absl::StrContains(s.message(), "replicas [2] of 3")) << s;
      EXPECT_TRUE(absl::StrContains(s.message(), "'gradients' step 9")) << s;
    }
  }
}

TEST(CrossDeviceOpsFactoryTest, AbortStopsWaitingReplicas) {
  AbortSignal abort;
  auto ops = CreateCrossDeviceOps("hierarchical_copy", 2, nullptr, &abort);
  ASSERT_TRUE(ops.ok());
  std::vector<float> buf(8);
  std::thread aborter([&] { abort.Abort(absl::AbortedError("worker:1 failed")); });
  absl::Status s =
      (*ops)->AllReduce(0, absl::MakeSpan(buf), {1, "gradients", absl::InfiniteFuture()});
  aborter.join();
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
}

// GPU replicas: the host algorithms are refused before any device is touched
// (so this runs without a GPU), and "nccl" needs GPUs.
TEST(CrossDeviceOpsFactoryTest, GpuReplicasTakeNcclOnly) {
  const std::vector<Device> gpus = {Device::Gpu(0), Device::Gpu(1)};
  auto ring = CreateCrossDeviceOps("ring", 2, nullptr, nullptr, gpus);
  EXPECT_EQ(ring.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(ring.status().message(), "'ring' sums host memory"))
      << ring.status();
  EXPECT_TRUE(absl::StrContains(ring.status().message(), "gpu:0,gpu:1")) << ring.status();
  auto mixed = CreateCrossDeviceOps("nccl", 2, nullptr, nullptr, {Device::Cpu(0), Device::Gpu(0)});
  EXPECT_EQ(mixed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(mixed.status().message(), "all of one kind")) << mixed.status();
  auto cpus = CreateCrossDeviceOps("nccl", 2, nullptr, nullptr, {Device::Cpu(0), Device::Cpu(1)});
  EXPECT_EQ(cpus.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(cpus.status().message(), "needs GPU replicas")) << cpus.status();
  auto count = CreateCrossDeviceOps("nccl", 3, nullptr, nullptr, gpus);
  EXPECT_EQ(count.status().code(), absl::StatusCode::kInvalidArgument);
#if !MESHTRAIN_HAVE_CUDA
  auto nccl = CreateCrossDeviceOps("nccl", 2, nullptr, nullptr, gpus);
  EXPECT_EQ(nccl.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(nccl.status().message(), "built without CUDA")) << nccl.status();
#endif
}

// MultiWorkerMirrored: 2 workers x 3 replicas; every replica of every worker
// ends with the sum over all 6, bitwise identical.
TEST(CrossDeviceOpsFactoryTest, HierarchicalAcrossWorkers) {
  const int workers = 2, replicas = 3;
  const size_t length = 40009;
  for (absl::string_view name : CrossDeviceOpsNames()) {
    auto mesh = CreateInProcessMesh(workers);
    std::vector<std::unique_ptr<RingCommunicator>> comms;
    std::vector<std::unique_ptr<CrossDeviceOps>> ops;
    for (int w = 0; w < workers; ++w) {
      comms.push_back(std::make_unique<RingCommunicator>(mesh[w].get()));
      auto o = CreateCrossDeviceOps(name, replicas, comms[w].get());
      ASSERT_TRUE(o.ok());
      ops.push_back(*std::move(o));
    }
    std::vector<std::vector<float>> bufs(workers * replicas);
    auto statuses = RunOnRanks(workers * replicas, [&](int g) {
      int w = g / replicas, r = g % replicas;
      bufs[g] = RankData(g, length);
      return ops[w]->AllReduce(r, absl::MakeSpan(bufs[g]), Ctx());
    });
    for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
    std::vector<double> reference = testing::ReferenceSum(workers * replicas, length);
    for (size_t i = 0; i < length; ++i) {
      ASSERT_NEAR(bufs[0][i], reference[i], testing::SumTolerance(workers * replicas)) << name;
    }
    for (size_t g = 1; g < bufs.size(); ++g) {
      ASSERT_EQ(std::memcmp(bufs[g].data(), bufs[0].data(), length * sizeof(float)), 0)
          << name << " replica " << g;
    }
  }
}

// A cross-worker failure reaches every local replica.
TEST(CrossDeviceOpsFactoryTest, CrossWorkerErrorReachesEveryReplica) {
  auto mesh = CreateInProcessMesh(2);
  RingCommunicator comm(mesh[0].get());  // worker 1 never joins
  auto ops = CreateCrossDeviceOps("ring", 2, &comm);
  ASSERT_TRUE(ops.ok());
  std::vector<std::vector<float>> bufs(2, std::vector<float>(100, 1.0f));
  auto statuses = RunOnRanks(2, [&](int r) {
    CollectiveContext ctx{5, "gradients", absl::Now() + absl::Milliseconds(50)};
    return (*ops)->AllReduce(r, absl::MakeSpan(bufs[r]), ctx);
  });
  for (const auto& s : statuses) {
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "allreduce 'gradients' step 5")) << s;
  }
}

// One replica per worker (multi_worker_mirrored's usual shape): the error is
// the cross-worker step's, not named after a local reduction that never ran.
TEST(CrossDeviceOpsFactoryTest, OneReplicaNamesTheCrossWorkerStepAlone) {
  auto mesh = CreateInProcessMesh(2);
  RingCommunicator comm(mesh[0].get());  // worker 1 never joins
  auto ops = CreateCrossDeviceOps("reduce_to_one_device", 1, &comm);
  ASSERT_TRUE(ops.ok());
  std::vector<float> data(100, 1.0f);
  CollectiveContext ctx{5, "gradients", absl::Now() + absl::Milliseconds(50)};
  const absl::Status s = (*ops)->AllReduce(0, absl::MakeSpan(data), ctx);
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_TRUE(absl::StartsWith(s.message(), "across workers: allreduce 'gradients' step 5")) << s;
  EXPECT_FALSE(absl::StrContains(s.message(), "reduce_to_one_device")) << s;
}

TEST(CrossDeviceOpsFactoryTest, CountsTimeWaitingForALateReplica) {
  for (const std::string name : {"reduce_to_one_device", "hierarchical_copy", "ring"}) {
    auto ops = CreateCrossDeviceOps(name, 2);
    ASSERT_TRUE(ops.ok()) << ops.status();
    // Long enough that scheduling noise on a loaded 2-core machine (tens of
    // milliseconds) cannot blur the two bounds below.
    const absl::Duration late = absl::Milliseconds(200);
    absl::Notification first_arrives;
    auto statuses = RunOnRanks(2, [&](int r) -> absl::Status {
      std::vector<float> data(64, 1.0f);
      if (r == 0) {
        first_arrives.Notify();
      } else {
        first_arrives.WaitForNotification();
        absl::SleepFor(late);  // the late replica being measured
      }
      return (*ops)->AllReduce(r, absl::MakeSpan(data), Ctx());
    });
    for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
    EXPECT_GE((*ops)->blocked(0), late * 0.75)
        << name << ": " << absl::FormatDuration((*ops)->blocked(0));
    EXPECT_LT((*ops)->blocked(1), late * 0.5) << name;
  }
}

}  // namespace
}  // namespace meshtrain

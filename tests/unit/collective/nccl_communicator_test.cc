// NcclCommunicator on real GPUs (label `gpu`): ranks are threads, each on its
// own physical GPU (NCCL refuses two ranks on one). A world of one runs on a
// single GPU and exercises the host-staging paths; a missing peer must end by
// the deadline, never hang.
#include "runtime/collective/nccl/nccl_communicator.h"

#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/base/status_macros.h"
#include "runtime/tensor/cuda/cuda_kernels.h"
#include "tests/unit/tensor/gpu_test_support.h"
#include "tests/unit/transport/run_on_ranks.h"

namespace meshtrain {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

CollectiveContext Ctx(absl::Duration timeout = absl::Seconds(60)) {
  return {3, "gradients", absl::Now() + timeout};
}

class NcclCommunicatorTest : public LogicalGpuTest {
 protected:
  static absl::StatusOr<std::unique_ptr<NcclCommunicator>> Make(
      int rank, int world, const std::string& id, AbortSignal* abort = nullptr,
      absl::Duration init = absl::Minutes(1)) {
    NcclCommunicatorOptions o;
    o.rank = rank;
    o.world_size = world;
    o.unique_id = id;
    o.device = PhysicalGpu(rank);
    o.abort = abort;
    o.init_timeout = init;
    o.description = absl::StrCat("worker:", rank);
    return NcclCommunicator::Create(std::move(o));
  }

  // One communicator per physical GPU, created by a thread each (init waits
  // for every rank).
  static std::vector<std::unique_ptr<NcclCommunicator>> MakeWorld(int world) {
    auto id = NewNcclUniqueId();
    EXPECT_TRUE(id.ok()) << id.status();
    std::vector<std::unique_ptr<NcclCommunicator>> comms(world);
    if (!id.ok()) return comms;
    auto made = testing::RunOnRanks(world, [&](int r) -> absl::Status {
      auto c = Make(r, world, *id);
      if (!c.ok()) return c.status();
      comms[r] = std::move(*c);
      return absl::OkStatus();
    });
    for (const auto& s : made) EXPECT_TRUE(s.ok()) << s;
    return comms;
  }
};

TEST_F(NcclCommunicatorTest, WorldOfOneStagesHostMemoryAndUsesDeviceMemoryInPlace) {
  auto id = NewNcclUniqueId();
  ASSERT_TRUE(id.ok()) << id.status();
  auto comm = Make(0, 1, *id);
  ASSERT_TRUE(comm.ok()) << comm.status();
  EXPECT_TRUE((*comm)->takes_device_memory());
  std::vector<float> host = testing::RankData(0, 1001);
  std::vector<float> before = host;
  ASSERT_TRUE((*comm)->AllReduceSum(absl::MakeSpan(host), Ctx()).ok());
  EXPECT_EQ(host, before);
  auto kernels = CreateCudaKernels(PhysicalGpu(0));
  ASSERT_TRUE(kernels.ok());
  Tensor values(DType::kFloat32, Shape{1001});
  std::memcpy(values.raw_data(), before.data(), values.bytes());
  Tensor device = ToDevice(**kernels, values);
  ASSERT_TRUE((*comm)->AllReduceSum(device.flat<float>(), Ctx()).ok());
  EXPECT_EQ(RelativeError(ToHost(**kernels, device), values), 0.0);
  std::vector<std::byte> bytes(13, std::byte{7});
  ASSERT_TRUE((*comm)->Broadcast(absl::MakeSpan(bytes), 0, Ctx()).ok());
  EXPECT_EQ((*comm)->Broadcast(absl::MakeSpan(bytes), 1, Ctx()).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<std::byte> all;
  std::vector<size_t> sizes;
  ASSERT_TRUE((*comm)->AllGather(bytes, &all, &sizes, Ctx()).ok());
  EXPECT_EQ(all, bytes);
  EXPECT_EQ(sizes, std::vector<size_t>{13});
  EXPECT_TRUE((*comm)->Barrier(Ctx()).ok());
}

TEST_F(NcclCommunicatorTest, TwoGpusSumBroadcastGatherAndMeet) {
  MESHTRAIN_SKIP_WITHOUT_GPU(2);
  std::vector<std::unique_ptr<NcclCommunicator>> comms = MakeWorld(2);
  ASSERT_TRUE(comms[0] != nullptr && comms[1] != nullptr);
  for (size_t length : {size_t{0}, size_t{1}, size_t{1001}, size_t{1} << 20}) {
    std::vector<std::vector<float>> host(2);
    auto statuses = testing::RunOnRanks(2, [&](int r) -> absl::Status {
      auto kernels = CreateCudaKernels(PhysicalGpu(r));
      if (!kernels.ok()) return kernels.status();
      Tensor values(DType::kFloat32, Shape{static_cast<int64_t>(length)});
      std::vector<float> data = testing::RankData(r, length);
      if (length > 0) std::memcpy(values.raw_data(), data.data(), values.bytes());
      Tensor device = ToDevice(**kernels, values);
      absl::Status s = comms[r]->AllReduceSum(device.flat<float>(), Ctx());
      if (!s.ok()) return s;
      Tensor back = ToHost(**kernels, device);
      host[r].assign(back.data<float>(), back.data<float>() + length);
      return absl::OkStatus();
    });
    for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
    const std::vector<double> reference = testing::ReferenceSum(2, length);
    for (size_t i = 0; i < length; ++i)
      ASSERT_NEAR(host[0][i], reference[i], testing::SumTolerance(2));
    EXPECT_EQ(host[0], host[1]) << "bitwise identical on every rank";
  }
  std::vector<std::vector<std::byte>> payload = {std::vector<std::byte>(5, std::byte{1}), {}};
  std::vector<std::vector<std::byte>> all(2);
  std::vector<std::vector<size_t>> sizes(2);
  auto statuses = testing::RunOnRanks(2, [&](int r) -> absl::Status {
    std::vector<std::byte> b(100, std::byte(r == 1 ? 9 : 0));
    MESHTRAIN_RETURN_IF_ERROR(comms[r]->Broadcast(absl::MakeSpan(b), 1, Ctx()));
    if (b != std::vector<std::byte>(100, std::byte{9})) return absl::InternalError("broadcast");
    MESHTRAIN_RETURN_IF_ERROR(comms[r]->AllGather(payload[r], &all[r], &sizes[r], Ctx()));
    return comms[r]->Barrier(Ctx());
  });
  for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(sizes[0], (std::vector<size_t>{5, 0}));
  EXPECT_EQ(all[1], payload[0]);
}

TEST_F(NcclCommunicatorTest, MissingPeerEndsInitByTheDeadline) {
  auto id = NewNcclUniqueId();
  ASSERT_TRUE(id.ok());
  const absl::Time start = absl::Now();
  auto comm = Make(0, 2, *id, nullptr, absl::Seconds(3));  // rank 1 never comes
  EXPECT_FALSE(comm.ok());
  EXPECT_EQ(comm.status().code(), absl::StatusCode::kDeadlineExceeded) << comm.status();
  EXPECT_THAT(comm.status().message(), HasSubstr("nccl init of worker:0 (rank 0 of 2"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
}

TEST_F(NcclCommunicatorTest, AbortStopsAWaitingInit) {
  auto id = NewNcclUniqueId();
  ASSERT_TRUE(id.ok());
  AbortSignal abort;
  // Before or during the wait for rank 1: either way the init ends aborted.
  std::thread aborter([&] { abort.Abort(absl::AbortedError("worker:1 failed")); });
  auto comm = Make(0, 2, *id, &abort, absl::Minutes(5));
  aborter.join();
  EXPECT_EQ(comm.status().code(), absl::StatusCode::kAborted) << comm.status();
  EXPECT_THAT(comm.status().message(), HasSubstr("worker:1 failed"));
}

TEST_F(NcclCommunicatorTest, DeadPeerFailsTheCollectiveAndBreaksTheCommunicator) {
  MESHTRAIN_SKIP_WITHOUT_GPU(2);
  std::vector<std::unique_ptr<NcclCommunicator>> comms = MakeWorld(2);
  ASSERT_TRUE(comms[0] != nullptr && comms[1] != nullptr);
  // Rank 1 stops taking part (as a dead process would); rank 0 must not hang.
  std::vector<float> data(1 << 16, 1.0f);
  const absl::Time start = absl::Now();
  absl::Status s = comms[0]->AllReduceSum(absl::MakeSpan(data), Ctx(absl::Seconds(3)));
  EXPECT_THAT(s.code(), AnyOf(absl::StatusCode::kDeadlineExceeded, absl::StatusCode::kUnavailable))
      << s;
  EXPECT_THAT(s.message(), HasSubstr("nccl allreduce 'gradients' step 3 (worker:0, rank 0 of 2"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  EXPECT_EQ(comms[0]->Barrier(Ctx()).code(), s.code()) << "broken for good";
}

}  // namespace
}  // namespace meshtrain

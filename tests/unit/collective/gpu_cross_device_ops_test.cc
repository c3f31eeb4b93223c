// GPU cross-device ops on real GPUs (label `gpu`). Logical GPUs of one physical
// GPU take the on-device reduce; replicas on distinct physical GPUs take NCCL;
// with a ring across workers the sums are staged through the host. Every
// replica ends with the same bits.
#include "runtime/collective/nccl/gpu_cross_device_ops.h"

#include <cstring>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/collective/ring_communicator.h"
#include "runtime/tensor/cuda/cuda_kernels.h"
#include "runtime/transport/in_process_transport.h"
#include "tests/unit/tensor/gpu_test_support.h"
#include "tests/unit/transport/run_on_ranks.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

CollectiveContext Ctx(absl::Duration timeout = absl::Seconds(60)) {
  return {7, "gradients", absl::Now() + timeout};
}

class GpuCrossDeviceOpsTest : public LogicalGpuTest {
 protected:
  // Runs one AllReduce per replica (a thread each) on device copies of
  // RankData(global rank), and returns every replica's result on the host.
  static std::vector<std::vector<float>> Run(const std::vector<CrossDeviceOps*>& ops,
                                             const std::vector<Device>& devices, size_t length,
                                             std::vector<absl::Status>* statuses,
                                             absl::Duration timeout = absl::Seconds(60)) {
    const int total = static_cast<int>(devices.size());
    const int per_worker = total / static_cast<int>(ops.size());
    std::vector<std::vector<float>> out(total);
    *statuses = testing::RunOnRanks(total, [&](int g) -> absl::Status {
      auto kernels = CreateCudaKernels(devices[g]);
      if (!kernels.ok()) return kernels.status();
      Tensor values(DType::kFloat32, Shape{static_cast<int64_t>(length)});
      std::vector<float> data = testing::RankData(g, length);
      if (length > 0) std::memcpy(values.raw_data(), data.data(), values.bytes());
      Tensor device = ToDevice(**kernels, values);
      absl::Status s =
          ops[g / per_worker]->AllReduce(g % per_worker, device.flat<float>(), Ctx(timeout));
      if (!s.ok()) return s;
      Tensor back = ToHost(**kernels, device);
      out[g].assign(back.data<float>(), back.data<float>() + length);
      return (*kernels)->Synchronize();
    });
    return out;
  }

  static void ExpectSums(const std::vector<std::vector<float>>& out, size_t length) {
    const int n = static_cast<int>(out.size());
    const std::vector<double> reference = testing::ReferenceSum(n, length);
    for (size_t i = 0; i < length; ++i) {
      ASSERT_NEAR(out[0][i], reference[i], testing::SumTolerance(n)) << i;
    }
    for (int r = 1; r < n; ++r) EXPECT_EQ(out[r], out[0]) << "replica " << r << " differs";
  }
};

TEST_F(GpuCrossDeviceOpsTest, LogicalGpusSumOnTheDevice) {
  for (int n : {1, 2, 3, 4}) {
    std::vector<Device> devices;
    for (int r = 0; r < n; ++r) devices.push_back(Device::Gpu(r));
    auto ops = CreateGpuCrossDeviceOps(devices, nullptr, nullptr);
    ASSERT_TRUE(ops.ok()) << ops.status();
    if (n > 1) {
      EXPECT_EQ((*ops)->name(), kOnDeviceReduceName);
    }
    for (size_t length : {size_t{0}, size_t{1}, size_t{1001}, size_t{1} << 20}) {
      for (int round = 0; round < 2; ++round) {  // reuse across steps
        std::vector<absl::Status> statuses;
        auto out = Run({ops->get()}, devices, length, &statuses);
        for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
        ExpectSums(out, length);
      }
    }
  }
}

TEST_F(GpuCrossDeviceOpsTest, PhysicalGpusUseNccl) {
  MESHTRAIN_SKIP_WITHOUT_GPU(2);
  const std::vector<Device> devices = {PhysicalGpu(0), PhysicalGpu(1)};
  auto ops = CreateGpuCrossDeviceOps(devices, nullptr, nullptr);
  ASSERT_TRUE(ops.ok()) << ops.status();
  EXPECT_EQ((*ops)->name(), "nccl");
  for (size_t length : {size_t{0}, size_t{1}, size_t{1001}, size_t{1} << 20}) {
    std::vector<absl::Status> statuses;
    auto out = Run({ops->get()}, devices, length, &statuses);
    for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
    ExpectSums(out, length);
  }
}

// MultiWorkerMirrored on one GPU: 2 workers x 2 logical GPUs, the ring across
// workers over host memory (staged through pinned buffers).
TEST_F(GpuCrossDeviceOpsTest, RingAcrossWorkersStagesThroughTheHost) {
  auto mesh = CreateInProcessMesh(2);
  std::vector<std::unique_ptr<RingCommunicator>> comms;
  std::vector<std::unique_ptr<CrossDeviceOps>> ops;
  const std::vector<Device> devices = {Device::Gpu(0), Device::Gpu(1), Device::Gpu(2),
                                       Device::Gpu(3)};
  for (int w = 0; w < 2; ++w) {
    comms.push_back(std::make_unique<RingCommunicator>(mesh[w].get()));
    auto o = CreateGpuCrossDeviceOps({devices[2 * w], devices[2 * w + 1]}, comms[w].get(), nullptr);
    ASSERT_TRUE(o.ok()) << o.status();
    ops.push_back(*std::move(o));
  }
  for (size_t length : {size_t{1}, size_t{40009}}) {
    std::vector<absl::Status> statuses;
    auto out = Run({ops[0].get(), ops[1].get()}, devices, length, &statuses);
    for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
    ExpectSums(out, length);
  }
}

TEST_F(GpuCrossDeviceOpsTest, MissingReplicaBreaksItByTheDeadline) {
  auto ops = CreateGpuCrossDeviceOps({Device::Gpu(0), Device::Gpu(1)}, nullptr, nullptr);
  ASSERT_TRUE(ops.ok());
  auto kernels = CreateCudaKernels(Device::Gpu(0));
  ASSERT_TRUE(kernels.ok());
  auto buffer = (*kernels)->Allocate(DType::kFloat32, Shape{100});
  ASSERT_TRUE(buffer.ok());
  absl::Status s = (*ops)->AllReduce(0, buffer->flat<float>(), Ctx(absl::Milliseconds(200)));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_THAT(s.message(), HasSubstr("on_device_reduce allreduce 'gradients' step 7"));
  EXPECT_EQ((*ops)->AllReduce(0, buffer->flat<float>(), Ctx()).code(),
            absl::StatusCode::kDeadlineExceeded)
      << "broken for good";
}

// Refused before any device is touched: runs without a GPU.
TEST(GpuCrossDeviceOpsFactoryTest, TooManyReplicasAreRefused) {
  std::vector<Device> devices;
  for (int r = 0; r < 17; ++r) devices.push_back(Device::Gpu(r));
  EXPECT_EQ(CreateGpuCrossDeviceOps(devices, nullptr, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace meshtrain

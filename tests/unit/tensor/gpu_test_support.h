// Helpers for GPU tests (label `gpu`): skip with CUDA's reason where no device
// is visible, move tensors between host and device, compare with the CPU.
#ifndef MESHTRAIN_TESTS_UNIT_TENSOR_GPU_TEST_SUPPORT_H_
#define MESHTRAIN_TESTS_UNIT_TENSOR_GPU_TEST_SUPPORT_H_

#include <cmath>
#include <memory>

#include "gtest/gtest.h"
#include "runtime/tensor/cuda/cuda_device.h"
#include "runtime/tensor/cuda/cuda_kernels.h"
#include "runtime/tensor/gpu_config.h"
#include "runtime/tensor/kernels.h"

// Skips the current test (from the test body or SetUp) where no GPU is visible.
#define MESHTRAIN_SKIP_WITHOUT_GPU(min_devices)                                                \
  do {                                                                                         \
    const absl::StatusOr<int> meshtrain_gpus_ = ::meshtrain::VisibleCudaDevices();             \
    if (!meshtrain_gpus_.ok()) {                                                               \
      GTEST_SKIP() << "no CUDA device visible (" << meshtrain_gpus_.status().message() << ")"; \
    }                                                                                          \
    if (*meshtrain_gpus_ < (min_devices)) {                                                    \
      GTEST_SKIP() << "needs " << (min_devices) << " GPUs, " << *meshtrain_gpus_               \
                   << " visible (NCCL refuses two ranks on one GPU)";                          \
    }                                                                                          \
  } while (0)

namespace meshtrain {

// Tests of several GPUs on any machine: gpu:0..3 are logical slices of
// physical GPU 0, gpu:4..7 of physical GPU 1 (the process's GpuConfig, the
// same for every test of the binary). Skips where no GPU is visible.
class LogicalGpuTest : public ::testing::Test {
 protected:
  static constexpr int kSlices = 4;
  // The first logical device of physical GPU k.
  static Device PhysicalGpu(int k) { return Device::Gpu(kSlices * k); }

  void SetUp() override {
    GpuConfig config;
    config.logical_per_physical = kSlices;
    ASSERT_TRUE(SetGpuConfig(config).ok());
    MESHTRAIN_SKIP_WITHOUT_GPU(1);
  }
};

// Tests of the CUDA kernels of gpu:0 (`gpu_`); each skips where no GPU is
// visible.
class CudaKernelsTestBase : public ::testing::Test {
 protected:
  void SetUp() override {
    MESHTRAIN_SKIP_WITHOUT_GPU(1);
    auto gpu = CreateCudaKernels(Device::Gpu(0));
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    gpu_ = std::move(*gpu);
  }

  std::unique_ptr<Kernels> gpu_;
};

// A device copy of host tensor `host`.
inline Tensor ToDevice(Kernels& k, const Tensor& host) {
  absl::StatusOr<Tensor> d = k.Allocate(host.dtype(), host.shape());
  EXPECT_TRUE(d.ok()) << d.status();
  if (!d.ok()) return Tensor();
  k.Copy(host, *d);
  return *d;
}

// A host copy of `device`.
inline Tensor ToHost(Kernels& k, const Tensor& device) {
  Tensor host(device.dtype(), device.shape());
  k.Copy(device, host);
  EXPECT_TRUE(k.Synchronize().ok());
  return host;
}

// ||a - b|| / ||b|| over float32 tensors on the host (0 when both are zero).
inline double RelativeError(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.num_elements(), b.num_elements());
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    const double d = static_cast<double>(a.data<float>()[i]) - b.data<float>()[i];
    diff += d * d;
    norm += static_cast<double>(b.data<float>()[i]) * b.data<float>()[i];
  }
  if (norm == 0) return std::sqrt(diff);
  return std::sqrt(diff / norm);
}

}  // namespace meshtrain

#endif  // MESHTRAIN_TESTS_UNIT_TENSOR_GPU_TEST_SUPPORT_H_

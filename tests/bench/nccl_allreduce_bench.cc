// Development benchmark (not a test): NCCL AllReduce bus bandwidth over the
// GPUs of this machine, one rank per GPU (threads in one process, each with its
// own NcclCommunicator and device buffers), with the method and the sizes of
// RunAllReduceBenchmark, so rows compare with allreduce_bench and the peers.
//
//   nccl_allreduce_bench [--gpus N (default: all visible)] [--min-time 2]
//                        [--sizes 4096,65536,...]
//
// NCCL refuses two ranks on one GPU: with one GPU the world is one rank, whose
// busbw is 0 by definition (2(n-1)/n); the script says so.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "runtime/collective/allreduce_benchmark.h"
#include "runtime/collective/nccl/nccl_communicator.h"
#include "runtime/tensor/cuda/cuda_device.h"
#include "runtime/tensor/cuda/cuda_kernels.h"

namespace meshtrain {
namespace {

int Main(int argc, char** argv) {
  int gpus = 0;
  double min_time = 2.0;
  AllReduceBenchmarkOptions options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    bool ok = true;
    if (flag == "--gpus") {
      ok = absl::SimpleAtoi(value, &gpus);
    } else if (flag == "--min-time") {
      ok = absl::SimpleAtod(value, &min_time);
    } else if (flag == "--sizes") {
      options.sizes_bytes.clear();
      for (absl::string_view s : absl::StrSplit(value, ',')) {
        size_t b = 0;
        ok &= absl::SimpleAtoi(s, &b);
        options.sizes_bytes.push_back(b);
      }
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "bad flag %s %s\n", flag.c_str(), value.c_str());
      return 2;
    }
  }
  options.min_time = absl::Seconds(min_time);
  absl::StatusOr<int> visible = VisibleCudaDevices();
  if (!visible.ok()) {
    std::fprintf(stderr, "nccl_allreduce_bench: %s\n", visible.status().ToString().c_str());
    return 1;
  }
  if (gpus <= 0 || gpus > *visible) gpus = *visible;
  absl::StatusOr<std::string> id = NewNcclUniqueId();
  if (!id.ok()) {
    std::fprintf(stderr, "nccl_allreduce_bench: %s\n", id.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<CudaDevice*> first = CudaDevice::Get(Device::Gpu(0));
  std::printf("NCCL AllReduce (sum, float32), %d rank(s), one per GPU: %s\n", gpus,
              first.ok() ? (*first)->gpu_name().c_str() : "?");
  if (gpus == 1) {
    std::printf(
        "one GPU: busbw = algbw * 2(n-1)/n is 0 for n = 1; NCCL refuses two ranks on one "
        "GPU, so bus bandwidth needs two or more GPUs\n");
  }
  std::printf("%s\n", AllReduceBenchmarkHeader().c_str());
  std::fflush(stdout);
  std::vector<absl::Status> results(gpus);
  std::vector<std::thread> ranks;
  for (int r = 0; r < gpus; ++r) {
    ranks.emplace_back([&, r] {
      NcclCommunicatorOptions o;
      o.rank = r;
      o.world_size = gpus;
      o.unique_id = *id;
      o.device = Device::Gpu(r);
      o.description = "bench rank " + std::to_string(r);
      auto comm = NcclCommunicator::Create(o);
      if (!comm.ok()) {
        results[r] = comm.status();
        return;
      }
      auto kernels = CreateCudaKernels(Device::Gpu(r));
      if (!kernels.ok()) {
        results[r] = kernels.status();
        return;
      }
      AllReduceBenchmarkOptions mine = options;
      mine.device = kernels->get();
      auto rows = RunAllReduceBenchmark(**comm, mine, [r](const AllReduceBenchmarkRow& row) {
        if (r != 0) return;
        std::printf("%s\n", FormatAllReduceBenchmarkRow(row).c_str());
        std::fflush(stdout);
      });
      results[r] = rows.status();
    });
  }
  for (std::thread& t : ranks) t.join();
  int code = 0;
  for (int r = 0; r < gpus; ++r) {
    if (!results[r].ok()) {
      std::fprintf(stderr, "rank %d: %s\n", r, results[r].ToString().c_str());
      code = 1;
    }
  }
  return code;
}

}  // namespace
}  // namespace meshtrain

int main(int argc, char** argv) { return meshtrain::Main(argc, argv); }

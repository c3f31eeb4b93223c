// Development benchmark (not a test): CrossDeviceOps across the replica threads
// of this process (MirroredStrategy's gradient sum), per algorithm and size.
// Each iteration: all replicas meet at a barrier, then time AllReduce; the time
// is the slowest replica's; we print the median and 99th percentile.
//
//   cross_device_bench [--replicas 2] [--iters 2000] [--sizes 4096,1048576]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "runtime/collective/cross_device_ops.h"
#include "runtime/collective/replica_barrier.h"

namespace meshtrain {
namespace {

int Run(int replicas, int iters, const std::vector<size_t>& sizes) {
  printf("CrossDeviceOps AllReduce, %d replica threads, %d iterations\n", replicas, iters);
  printf("%22s %10s %12s %12s %10s\n", "algorithm", "size", "median_us", "p99_us", "GB/s");
  for (absl::string_view name : CrossDeviceOpsNames()) {
    for (size_t bytes : sizes) {
      auto ops = CreateCrossDeviceOps(name, replicas);
      if (!ops.ok()) {
        fprintf(stderr, "%s\n", ops.status().ToString().c_str());
        return 1;
      }
      ReplicaBarrier start(replicas);
      std::vector<std::vector<double>> times(replicas, std::vector<double>(iters));
      std::vector<std::thread> threads;
      bool failed = false;
      for (int r = 0; r < replicas; ++r) {
        threads.emplace_back([&, r] {
          std::vector<float> data(bytes / sizeof(float), 1.0f);
          for (int i = 0; i < iters; ++i) {
            absl::Time deadline = absl::Now() + absl::Seconds(60);
            if (!start.Arrive(r, deadline).ok()) {
              failed = true;
              return;
            }
            auto t0 = std::chrono::steady_clock::now();
            if (!(*ops)->AllReduce(r, absl::MakeSpan(data), {i, "bench", deadline}).ok()) {
              failed = true;
              return;
            }
            times[r][i] =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          }
        });
      }
      for (auto& t : threads) t.join();
      if (failed) return 1;
      std::vector<double> slowest(iters);
      for (int i = 0; i < iters; ++i) {
        for (int r = 0; r < replicas; ++r) slowest[i] = std::max(slowest[i], times[r][i]);
      }
      std::sort(slowest.begin(), slowest.end());
      double median = slowest[iters / 2], p99 = slowest[std::min(iters - 1, iters * 99 / 100)];
      printf("%22s %10zu %12.2f %12.2f %10.3f\n", std::string(name).c_str(), bytes, median * 1e6,
             p99 * 1e6, bytes / median / 1e9);
    }
  }
  return 0;
}

}  // namespace
}  // namespace meshtrain

int main(int argc, char** argv) {
  int replicas = 2, iters = 2000;
  std::vector<size_t> sizes{4096, 65536, 1 << 20, 16 << 20};
  for (int i = 1; i + 1 < argc; i += 2) {
    bool ok = true;
    if (!strcmp(argv[i], "--replicas")) {
      ok = absl::SimpleAtoi(argv[i + 1], &replicas);
    } else if (!strcmp(argv[i], "--iters")) {
      ok = absl::SimpleAtoi(argv[i + 1], &iters);
    } else if (!strcmp(argv[i], "--sizes")) {
      sizes.clear();
      for (absl::string_view s : absl::StrSplit(argv[i + 1], ',')) {
        size_t b;
        ok &= absl::SimpleAtoi(s, &b);
        sizes.push_back(b);
      }
    } else {
      ok = false;
    }
    if (!ok || replicas < 1 || iters < 1) {
      fprintf(stderr, "usage: cross_device_bench [--replicas N] [--iters N] [--sizes B,B]\n");
      return 2;
    }
  }
  return meshtrain::Run(replicas, iters, sizes);
}

// AllReduce benchmark over any Communicator, with the method of the peer
// scripts (torch_gloo_allreduce.py, mpi_allreduce.c) so figures compare:
// per size, `warmup` ops (the first checks the sum), then enough timed
// iterations to fill min_time (at least min_iters, at most max_iters), each
//   Barrier; t0; AllReduceSum; t1
// whose time is the maximum over ranks; we report the median (and min, max,
// mean, 99th percentile) over iterations, algbw = bytes / median and
// busbw = algbw * 2 (n - 1) / n. Every rank calls it with the same options and
// gets the same rows. Used by tests/bench/allreduce_bench and the
// `meshtrain bench allreduce` subcommand.
#ifndef MESHTRAIN_RUNTIME_COLLECTIVE_ALLREDUCE_BENCHMARK_H_
#define MESHTRAIN_RUNTIME_COLLECTIVE_ALLREDUCE_BENCHMARK_H_

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/collective/communicator.h"
#include "runtime/tensor/kernels.h"

namespace meshtrain {

struct AllReduceBenchmarkOptions {
  std::vector<size_t> sizes_bytes = {size_t{4} << 10, size_t{64} << 10, size_t{1} << 20,
                                     size_t{16} << 20, size_t{64} << 20};
  int warmup = 3;
  int min_iters = 5;
  int max_iters = 2000;
  absl::Duration min_time = absl::Seconds(2);
  // Deadline of each collective, from its start.
  absl::Duration op_timeout = absl::Seconds(60);
  // Where the buffer lives: null = host memory; else this rank's device,
  // through its kernels (NCCL benchmarks pass the rank's GPU). Not owned.
  Kernels* device = nullptr;
};

struct AllReduceBenchmarkRow {
  size_t bytes = 0;
  int iters = 0;
  double median_s = 0, min_s = 0, max_s = 0, mean_s = 0, p99_s = 0;
  double algbw_gbps = 0, busbw_gbps = 0;
};

// Runs every size; `on_row` (may be empty) sees each row as it is done.
absl::StatusOr<std::vector<AllReduceBenchmarkRow>> RunAllReduceBenchmark(
    Communicator& comm, const AllReduceBenchmarkOptions& options,
    const std::function<void(const AllReduceBenchmarkRow&)>& on_row = {});

// A fixed-width table in the peer scripts' columns, plus p99 and mean.
std::string AllReduceBenchmarkHeader();
std::string FormatAllReduceBenchmarkRow(const AllReduceBenchmarkRow& row);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_COLLECTIVE_ALLREDUCE_BENCHMARK_H_

#include "runtime/collective/allreduce_benchmark.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Element-wise maximum over ranks of `values` (same length everywhere).
absl::Status MaxOverRanks(Communicator& comm, std::vector<double>& values,
                          std::vector<std::byte>& all, std::vector<size_t>& sizes,
                          const CollectiveContext& ctx) {
  MESHTRAIN_RETURN_IF_ERROR(
      comm.AllGather(absl::MakeConstSpan(reinterpret_cast<const std::byte*>(values.data()),
                                         values.size() * sizeof(double)),
                     &all, &sizes, ctx));
  const double* gathered = reinterpret_cast<const double*>(all.data());
  for (int r = 0; r < comm.world_size(); ++r) {
    for (size_t i = 0; i < values.size(); ++i) {
      values[i] = std::max(values[i], gathered[r * values.size() + i]);
    }
  }
  return absl::OkStatus();
}

std::string SizeLabel(size_t bytes) {
  if (bytes >= (size_t{1} << 30) && bytes % (size_t{1} << 30) == 0)
    return absl::StrCat(bytes >> 30, " GiB");
  if (bytes >= (size_t{1} << 20) && bytes % (size_t{1} << 20) == 0)
    return absl::StrCat(bytes >> 20, " MiB");
  if (bytes >= (size_t{1} << 10) && bytes % (size_t{1} << 10) == 0)
    return absl::StrCat(bytes >> 10, " KiB");
  return absl::StrCat(bytes, " B");
}

absl::StatusOr<Tensor> NewBuffer(Kernels* device, size_t count) {
  const Shape shape{static_cast<int64_t>(count)};
  if (device == nullptr) return Tensor(DType::kFloat32, shape);
  return device->Allocate(DType::kFloat32, shape);
}

void Fill(Kernels* device, float value, Tensor& buffer) {
  if (device == nullptr) {
    std::fill_n(buffer.data<float>(), buffer.num_elements(), value);
  } else {
    device->Fill(value, buffer);
  }
}

// The buffer's values where the host can read them.
absl::StatusOr<Tensor> OnHost(Kernels* device, const Tensor& buffer) {
  if (device == nullptr) return buffer;
  Tensor host(DType::kFloat32, buffer.shape());
  device->Copy(buffer, host);
  MESHTRAIN_RETURN_IF_ERROR(device->Synchronize());
  return host;
}

}  // namespace

absl::StatusOr<std::vector<AllReduceBenchmarkRow>> RunAllReduceBenchmark(
    Communicator& comm, const AllReduceBenchmarkOptions& options,
    const std::function<void(const AllReduceBenchmarkRow&)>& on_row) {
  using Clock = std::chrono::steady_clock;
  const int n = comm.world_size();
  std::vector<AllReduceBenchmarkRow> rows;
  std::vector<std::byte> gathered;
  std::vector<size_t> gathered_sizes;
  for (size_t bytes : options.sizes_bytes) {
    const size_t count = bytes / sizeof(float);
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor buffer, NewBuffer(options.device, count));
    Fill(options.device, static_cast<float>(comm.rank() + 1), buffer);
    const absl::Span<float> data = buffer.flat<float>();
    auto ctx_at = [&](int64_t step) {
      return CollectiveContext{step, "benchmark", absl::Now() + options.op_timeout};
    };
    double estimate = 1e30;
    for (int w = 0; w < options.warmup; ++w) {
      MESHTRAIN_RETURN_IF_ERROR(comm.Barrier(ctx_at(w)));
      auto t0 = Clock::now();
      MESHTRAIN_RETURN_IF_ERROR(comm.AllReduceSum(data, ctx_at(w)));
      estimate = std::min(estimate, Seconds(Clock::now() - t0));
      if (w == 0) {
        MESHTRAIN_ASSIGN_OR_RETURN(Tensor host, OnHost(options.device, buffer));
        const float expect = static_cast<float>(n * (n + 1) / 2);
        for (size_t i = 0; i < count; ++i) {
          const float got = host.data<float>()[i];
          if (got != expect) {
            return absl::InternalError(absl::StrCat("allreduce benchmark: element ", i, " of ",
                                                    SizeLabel(bytes), " is ", got, ", expected ",
                                                    expect));
          }
        }
        Fill(options.device, 0.0f, buffer);
      }
    }
    std::vector<double> est{estimate};
    MESHTRAIN_RETURN_IF_ERROR(MaxOverRanks(comm, est, gathered, gathered_sizes, ctx_at(0)));
    const double want = absl::ToDoubleSeconds(options.min_time) / std::max(est[0], 1e-7);
    const int iters =
        static_cast<int>(std::clamp<double>(std::ceil(want), options.min_iters, options.max_iters));
    std::vector<double> times(iters);
    for (int i = 0; i < iters; ++i) {
      MESHTRAIN_RETURN_IF_ERROR(comm.Barrier(ctx_at(i)));
      auto t0 = Clock::now();
      MESHTRAIN_RETURN_IF_ERROR(comm.AllReduceSum(data, ctx_at(i)));
      times[i] = Seconds(Clock::now() - t0);
    }
    MESHTRAIN_RETURN_IF_ERROR(MaxOverRanks(comm, times, gathered, gathered_sizes, ctx_at(0)));
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    AllReduceBenchmarkRow row;
    row.bytes = bytes;
    row.iters = iters;
    row.median_s =
        iters % 2 ? sorted[iters / 2] : 0.5 * (sorted[iters / 2 - 1] + sorted[iters / 2]);
    row.min_s = sorted.front();
    row.max_s = sorted.back();
    double sum = 0;
    for (double t : sorted) sum += t;
    row.mean_s = sum / iters;
    row.p99_s =
        sorted[std::min<size_t>(iters - 1, static_cast<size_t>(std::ceil(0.99 * iters)) - 1)];
    row.algbw_gbps = bytes / row.median_s / 1e9;
    row.busbw_gbps = row.algbw_gbps * 2.0 * (n - 1) / n;
    rows.push_back(row);
    if (on_row) on_row(row);
  }
  return rows;
}

std::string AllReduceBenchmarkHeader() {
  return absl::StrFormat("%10s %6s %12s %12s %12s %12s %12s %10s %10s", "size", "iters",
                         "median_us", "min_us", "max_us", "p99_us", "mean_us", "algbw_GB/s",
                         "busbw_GB/s");
}

std::string FormatAllReduceBenchmarkRow(const AllReduceBenchmarkRow& row) {
  return absl::StrFormat("%10s %6d %12.2f %12.2f %12.2f %12.2f %12.2f %10.3f %10.3f",
                         SizeLabel(row.bytes), row.iters, row.median_s * 1e6, row.min_s * 1e6,
                         row.max_s * 1e6, row.p99_s * 1e6, row.mean_s * 1e6, row.algbw_gbps,
                         row.busbw_gbps);
}

}  // namespace meshtrain

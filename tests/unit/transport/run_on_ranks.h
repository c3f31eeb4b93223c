// Test support: runs one function per rank on its own thread and collects the
// statuses, plus deterministic per-rank data and its double-precision sum, for
// the multi-rank tests of transports and collectives.
#ifndef MESHTRAIN_TESTS_UNIT_TRANSPORT_RUN_ON_RANKS_H_
#define MESHTRAIN_TESTS_UNIT_TRANSPORT_RUN_ON_RANKS_H_

#include <cmath>
#include <cstddef>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"

namespace meshtrain::testing {

inline std::vector<absl::Status> RunOnRanks(int world_size,
                                            const std::function<absl::Status(int rank)>& fn) {
  std::vector<absl::Status> statuses(world_size);
  std::vector<std::thread> threads;
  for (int r = 0; r < world_size; ++r) {
    threads.emplace_back([&, r] { statuses[r] = fn(r); });
  }
  for (auto& t : threads) t.join();
  return statuses;
}

inline absl::Span<std::byte> AsBytes(std::vector<float>& v) {
  return {reinterpret_cast<std::byte*>(v.data()), v.size() * sizeof(float)};
}

// Rank r's value at index i: mixed signs and magnitudes, so that the order of
// additions changes the float result (bitwise checks mean something).
inline float RankValue(int rank, size_t i) {
  uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ static_cast<uint32_t>(rank + 1) * 40503u;
  h ^= h >> 13;
  h *= 0x5bd1e995u;
  h ^= h >> 15;
  return (static_cast<float>(h % 20001u) - 10000.0f) / 997.0f;
}

inline std::vector<float> RankData(int rank, size_t length) {
  std::vector<float> v(length);
  for (size_t i = 0; i < length; ++i) v[i] = RankValue(rank, i);
  return v;
}

// Element i's exact sum over ranks (in double) and the sum of its magnitudes.
struct ExactSum {
  double sum = 0;
  double magnitudes = 0;
};
inline ExactSum ExactSumAt(int world_size, size_t i) {
  ExactSum out;
  for (int r = 0; r < world_size; ++r) {
    out.sum += RankValue(r, i);
    out.magnitudes += std::abs(RankValue(r, i));
  }
  return out;
}

// The documented bound of a ring sum with 16 bits on the wire
// (runtime/collective/ring_communicator.h): n roundings to unit roundoff `u`
// of partial sums no larger than the sum of magnitudes, plus float32's own.
inline double SixteenBitSumBound(double u, int n, double magnitudes) {
  return (std::pow(1.0 + u, n) * std::pow(1.0 + 0x1p-24, n) - 1.0) * magnitudes;
}

// Exact-enough reference: the sum over ranks in double.
inline std::vector<double> ReferenceSum(int world_size, size_t length) {
  std::vector<double> sum(length, 0.0);
  for (int r = 0; r < world_size; ++r) {
    for (size_t i = 0; i < length; ++i) sum[i] += RankValue(r, i);
  }
  return sum;
}

// Float summation of n terms bounded by |x| <= 10.1: error <= n * eps * n * 10.1.
inline double SumTolerance(int world_size) { return 1e-6 * world_size * world_size * 10.1 + 1e-6; }

// Allreduce results (one vector per rank): rank 0's within SumTolerance of the
// double reference, every other rank's bitwise equal to rank 0's.
inline ::testing::AssertionResult IsSumOnEveryRank(const std::vector<std::vector<float>>& results,
                                                   size_t length) {
  const int n = static_cast<int>(results.size());
  for (int r = 0; r < n; ++r) {
    if (results[r].size() != length) {
      return ::testing::AssertionFailure()
             << "rank " << r << " holds " << results[r].size() << " elements, not " << length;
    }
  }
  const std::vector<double> reference = ReferenceSum(n, length);
  for (size_t i = 0; i < length; ++i) {
    if (std::abs(results[0][i] - reference[i]) > SumTolerance(n)) {
      return ::testing::AssertionFailure()
             << "element " << i << " is " << results[0][i] << ", the reference " << reference[i];
    }
  }
  for (int r = 1; r < n; ++r) {
    if (std::memcmp(results[r].data(), results[0].data(), length * sizeof(float)) != 0) {
      return ::testing::AssertionFailure() << "rank " << r << " differs from rank 0";
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace meshtrain::testing

#endif  // MESHTRAIN_TESTS_UNIT_TRANSPORT_RUN_ON_RANKS_H_

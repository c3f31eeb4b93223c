#include "runtime/collective/ring_communicator.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/collective/ring_schedule.h"
#include "runtime/transport/fault_injection_transport.h"
#include "runtime/transport/in_process_transport.h"
#include "tests/unit/transport/run_on_ranks.h"
#include "tests/unit/transport/transport_meshes.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::RankData;
using ::meshtrain::testing::RankValue;
using ::meshtrain::testing::RunOnRanks;

const CollectiveContext kCtx{41, "gradients", absl::InfiniteFuture()};

// Runs AllReduceSum on every rank and checks the double reference and that all
// ranks hold identical bits.
void ExpectAllReduce(std::vector<std::unique_ptr<Transport>>& transports, size_t length,
                     RingCommunicatorOptions options = {}) {
  const int n = transports.size();
  std::vector<std::vector<float>> results(n);
  auto statuses = RunOnRanks(n, [&](int r) -> absl::Status {
    RingCommunicator comm(transports[r].get(), options);
    results[r] = RankData(r, length);
    // Twice: the second call reuses the communicator's buffers.
    if (auto s = comm.AllReduceSum(absl::MakeSpan(results[r]), kCtx); !s.ok()) return s;
    results[r] = RankData(r, length);
    return comm.AllReduceSum(absl::MakeSpan(results[r]), kCtx);
  });
  for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(testing::IsSumOnEveryRank(results, length));
}

class RingAllReduceTest : public ::testing::TestWithParam<std::tuple<int, size_t>> {};

TEST_P(RingAllReduceTest, MatchesReferenceAndIsIdenticalOnAllRanks) {
  auto [n, length] = GetParam();
  auto mesh = CreateInProcessMesh(n);
  ExpectAllReduce(mesh, length);
  ExpectAllReduce(mesh, length, {.exchange_max_bytes = 0});  // the ring even for 2 ranks
}

INSTANTIATE_TEST_SUITE_P(WorldSizesAndLengths, RingAllReduceTest,
                         ::testing::Combine(::testing::Values(1, 2, 3, 8),
                                            ::testing::Values(size_t{0}, size_t{1}, size_t{7},
                                                              size_t{1001}, size_t{16 * 3 * 5 + 5},
                                                              size_t{1} << 20)));

TEST(RingCommunicatorTest, BroadcastFromEveryRootInPieces) {
  for (int n : {1, 2, 3, 8}) {
    auto mesh = CreateInProcessMesh(n);
    for (size_t bytes : {size_t{0}, size_t{1}, size_t{4099}, size_t{300000}}) {
      for (int root = 0; root < n; ++root) {
        std::vector<std::vector<std::byte>> bufs(n, std::vector<std::byte>(bytes));
        for (int r = 0; r < n; ++r) {
          for (size_t i = 0; i < bytes; ++i) bufs[r][i] = std::byte((i * 7 + r * 13) & 0xff);
        }
        std::vector<std::byte> expect = bufs[root];
        auto statuses = RunOnRanks(n, [&](int r) {
          RingCommunicator comm(mesh[r].get(), {.broadcast_piece_bytes = 1000});
          return comm.Broadcast(absl::MakeSpan(bufs[r]), root, kCtx);
        });
        for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
        for (int r = 0; r < n; ++r) EXPECT_EQ(bufs[r], expect) << n << " " << bytes << " " << root;
      }
    }
  }
}

TEST(RingCommunicatorTest, BroadcastRejectsABadRoot) {
  auto mesh = CreateInProcessMesh(1);
  RingCommunicator comm(mesh[0].get());
  std::vector<std::byte> buf(4);
  absl::Status s = comm.Broadcast(absl::MakeSpan(buf), 1, kCtx);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "broadcast 'gradients' step 41")) << s;
}

TEST(RingCommunicatorTest, AllGatherOfUnequalSizes) {
  for (int n : {1, 2, 3, 8}) {
    auto mesh = CreateInProcessMesh(n);
    std::vector<std::vector<std::byte>> all(n);
    std::vector<std::vector<size_t>> sizes(n);
    auto mine = [](int r) {
      std::vector<std::byte> v(r == 1 ? 0 : r * 1001 + 3);  // rank 1 sends nothing
      for (size_t i = 0; i < v.size(); ++i) v[i] = std::byte((r * 31 + i) & 0xff);
      return v;
    };
    auto statuses = RunOnRanks(n, [&](int r) -> absl::Status {
      RingCommunicator comm(mesh[r].get());
      std::vector<std::byte> m = mine(r);
      for (int round = 0; round < 2; ++round) {
        if (auto s = comm.AllGather(m, &all[r], &sizes[r], kCtx); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
    for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
    std::vector<std::byte> expect;
    std::vector<size_t> expect_sizes;
    for (int r = 0; r < n; ++r) {
      std::vector<std::byte> m = mine(r);
      expect.insert(expect.end(), m.begin(), m.end());
      expect_sizes.push_back(m.size());
    }
    for (int r = 0; r < n; ++r) {
      EXPECT_EQ(all[r], expect) << "world " << n << " rank " << r;
      EXPECT_EQ(sizes[r], expect_sizes);
    }
  }
}

TEST(RingCommunicatorTest, BarrierWaitsForEveryRank) {
  for (int n : {1, 2, 3, 8}) {
    auto mesh = CreateInProcessMesh(n);
    std::atomic<int> entered{0};
    auto statuses = RunOnRanks(n, [&](int r) -> absl::Status {
      RingCommunicator comm(mesh[r].get());
      for (int round = 1; round <= 3; ++round) {
        entered.fetch_add(1);
        if (auto s = comm.Barrier(kCtx); !s.ok()) return s;
        if (entered.load() < round * n) return absl::InternalError("left the barrier early");
        // A second barrier keeps the next round's increments after every check.
        if (auto s = comm.Barrier(kCtx); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
    for (const auto& s : statuses) EXPECT_TRUE(s.ok()) << s;
  }
}

TEST(RingCommunicatorTest, TransportErrorsNameTheCollectiveAndStep) {
  auto mesh = CreateInProcessMesh(3);
  FaultInjectionTransport faulty(mesh[1].get());
  faulty.Inject(1, Fault{Fault::Kind::kFail, absl::UnavailableError("worker:2 went away")});
  auto statuses = RunOnRanks(3, [&](int r) {
    Transport* t = r == 1 ? &faulty : mesh[r].get();
    RingCommunicator comm(t);
    std::vector<float> data = RankData(r, 999);
    CollectiveContext ctx{41, "gradients", absl::Now() + absl::Milliseconds(300)};
    return comm.AllReduceSum(absl::MakeSpan(data), ctx);
  });
  EXPECT_EQ(statuses[1],
            absl::UnavailableError("allreduce 'gradients' step 41: worker:2 went away"));
  for (int r : {0, 2}) {
    EXPECT_EQ(statuses[r].code(), absl::StatusCode::kDeadlineExceeded) << statuses[r];
    EXPECT_TRUE(absl::StartsWith(statuses[r].message(), "allreduce 'gradients' step 41: "))
        << statuses[r];
  }
}

// The same algorithms over the real shared-memory and TCP code paths (ranks
// are threads here; the transport tests cover separate processes).
std::vector<std::unique_ptr<Transport>> ShmMesh(int n) {
  auto shm = testing::ConnectShm(testing::UniqueShmPrefix(), n, [](ShmTransportOptions& o) {
    o.ring_bytes = 64 << 10;
    o.piece_bytes = 16 << 10;
  });
  return {std::make_move_iterator(shm.begin()), std::make_move_iterator(shm.end())};
}

std::vector<std::unique_ptr<Transport>> TcpMesh(int n, int streams) {
  auto tcp = testing::ConnectTcp(n, [&](TcpTransportOptions& o) {
    o.streams = streams;
    o.split_min_bytes = 4096;
  });
  for (const auto& s : tcp.statuses) EXPECT_TRUE(s.ok()) << s;
  return {std::make_move_iterator(tcp.transports.begin()),
          std::make_move_iterator(tcp.transports.end())};
}

TEST(RingCommunicatorTest, AllReduceOverSharedMemoryAndTcp) {
  for (int n : {2, 3}) {
    auto shm = ShmMesh(n);
    auto tcp = TcpMesh(n, 2);
    for (size_t length : {size_t{1}, size_t{1001}, size_t{300007}}) {
      ExpectAllReduce(shm, length);
      ExpectAllReduce(tcp, length);
      ExpectAllReduce(shm, length, {.exchange_max_bytes = 0});
    }
  }
}

TEST(RingCommunicatorTest, StatsAreTheTransports) {
  // A ring allreduce of n floats over w ranks sends and receives 2 (w - 1) / w
  // of the buffer per rank: the figure the compare report shows per step.
  for (int world : {2, 3}) {
    auto mesh = CreateInProcessMesh(world);
    // Past the two-rank exchange threshold; chunks are whole 16-float units, and
    // 4800 floats split evenly over 2 and 3 ranks.
    const size_t n = 4800;
    auto statuses = RunOnRanks(world, [&](int r) -> absl::Status {
      RingCommunicator comm(mesh[r].get());
      std::vector<float> data = RankData(r, n);
      return comm.AllReduceSum(absl::MakeSpan(data), kCtx);
    });
    for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
    for (int r = 0; r < world; ++r) {
      RingCommunicator comm(mesh[r].get());
      const int64_t expected = static_cast<int64_t>(2 * (world - 1) * (n / world) * sizeof(float));
      EXPECT_EQ(comm.stats().bytes_sent, expected) << "world " << world << " rank " << r;
      EXPECT_EQ(comm.stats().bytes_received, expected);
    }
  }
}

// The float32 ring's documented summation order, computed serially: chunk c
// starts on rank c and each rank to its right adds its own values in turn.
std::vector<float> RingOrderSum(int n, size_t length) {
  std::vector<float> sum(length);
  for (int c = 0; c < n; ++c) {
    ChunkRange range = RingChunk(length, n, c);
    for (size_t i = range.begin; i < range.end; ++i) {
      float acc = RankValue(c, i);
      for (int k = 1; k < n; ++k) acc = RankValue((c + k) % n, i) + acc;
      sum[i] = acc;
    }
  }
  return sum;
}

// Every rank's AllReduceSum result, with `options`.
std::vector<std::vector<float>> AllReduceOnEveryRank(
    std::vector<std::unique_ptr<Transport>>& transports, size_t length,
    RingCommunicatorOptions options) {
  const int n = transports.size();
  std::vector<std::vector<float>> results(n);
  auto statuses = RunOnRanks(n, [&](int r) -> absl::Status {
    RingCommunicator comm(transports[r].get(), options);
    // Twice: the second call reuses the communicator's buffers.
    for (int round = 0; round < 2; ++round) {
      results[r] = RankData(r, length);
      if (auto s = comm.AllReduceSum(absl::MakeSpan(results[r]), kCtx); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
  for (const auto& s : statuses) EXPECT_TRUE(s.ok()) << s;
  return results;
}

TEST(RingCommunicatorTest, Float32WireIsTheFloat32RingBitForBit) {
  for (int n : {2, 3, 8}) {
    auto mesh = CreateInProcessMesh(n);
    for (size_t length : {size_t{1}, size_t{1001}, size_t{65536 + 3}}) {
      const std::vector<float> expect = RingOrderSum(n, length);
      auto results = AllReduceOnEveryRank(
          mesh, length, {.exchange_max_bytes = 0, .wire_dtype = WireDtype::kFloat32});
      for (int r = 0; r < n; ++r) {
        ASSERT_EQ(0, std::memcmp(results[r].data(), expect.data(), length * sizeof(float)))
            << "world " << n << " length " << length << " rank " << r;
      }
    }
  }
}

TEST(RingCommunicatorTest, AnExactCallStaysFloat32OnASixteenBitWire) {
  const CollectiveContext exact{41, "layer statistics", absl::InfiniteFuture(), /*exact=*/true};
  for (int n : {2, 3}) {
    auto mesh = CreateInProcessMesh(n);
    const size_t length = 1001;
    std::vector<std::vector<float>> results(n);
    auto statuses = RunOnRanks(n, [&](int r) -> absl::Status {
      RingCommunicator comm(mesh[r].get(),
                            {.exchange_max_bytes = 0, .wire_dtype = WireDtype::kBFloat16});
      results[r] = RankData(r, length);
      return comm.AllReduceSum(absl::MakeSpan(results[r]), exact);
    });
    for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
    const std::vector<float> expect = RingOrderSum(n, length);
    for (int r = 0; r < n; ++r) {
      ASSERT_EQ(0, std::memcmp(results[r].data(), expect.data(), length * sizeof(float)))
          << "world " << n << " rank " << r;
    }
  }
}

// The unit roundoff of a 16-bit wire dtype: bfloat16 keeps 8 significant bits,
// float16 11.
double UnitRoundoff(WireDtype dtype) {
  return dtype == WireDtype::kBFloat16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
}

class WireDtypeAllReduceTest : public ::testing::TestWithParam<std::tuple<WireDtype, int, size_t>> {
};

TEST_P(WireDtypeAllReduceTest, SumsInFloat32WithinTheBoundAndIsIdenticalOnAllRanks) {
  auto [dtype, n, length] = GetParam();
  auto mesh = CreateInProcessMesh(n);
  for (size_t exchange_max_bytes : {size_t{8} << 10, size_t{0}}) {
    auto results = AllReduceOnEveryRank(
        mesh, length, {.exchange_max_bytes = exchange_max_bytes, .wire_dtype = dtype});
    auto float32 = AllReduceOnEveryRank(mesh, length, {.exchange_max_bytes = exchange_max_bytes});
    size_t rounded = 0;
    for (size_t i = 0; i < length; ++i) {
      const testing::ExactSum exact = testing::ExactSumAt(n, i);
      const double bound = testing::SixteenBitSumBound(UnitRoundoff(dtype), n, exact.magnitudes);
      ASSERT_LE(std::fabs(results[0][i] - exact.sum), bound)
          << WireDtypeName(dtype) << " world " << n << " element " << i;
      // The float32 ring is within float32's bound of the exact sum.
      ASSERT_LE(std::fabs(results[0][i] - float32[0][i]), bound + n * 1e-7 * exact.magnitudes);
      if (results[0][i] != float32[0][i]) ++rounded;
    }
    for (int r = 1; r < n; ++r) {
      ASSERT_EQ(0, std::memcmp(results[r].data(), results[0].data(), length * sizeof(float)))
          << WireDtypeName(dtype) << " world " << n << " rank " << r << " differs from rank 0";
    }
    // 16 bits really were on the wire: most sums were rounded.
    if (n > 1 && length >= 1000) EXPECT_GT(rounded, length / 2) << WireDtypeName(dtype);
    if (n == 1) EXPECT_EQ(results[0], RankData(0, length)) << "world size 1 is a no-op";
  }
}

INSTANTIATE_TEST_SUITE_P(
    DtypesWorldSizesAndLengths, WireDtypeAllReduceTest,
    ::testing::Combine(::testing::Values(WireDtype::kBFloat16, WireDtype::kFloat16),
                       ::testing::Values(1, 2, 3, 8),
                       ::testing::Values(size_t{0}, size_t{1}, size_t{7}, size_t{1001},
                                         size_t{16 * 3 * 5 + 5}, size_t{1} << 20)));

TEST(RingCommunicatorTest, SixteenBitWireOverSharedMemoryAndTcp) {
  for (int n : {2, 3}) {
    auto shm = ShmMesh(n);
    auto tcp = TcpMesh(n, 2);
    for (WireDtype dtype : {WireDtype::kBFloat16, WireDtype::kFloat16}) {
      for (size_t length : {size_t{1}, size_t{300007}}) {
        auto in_shm = AllReduceOnEveryRank(shm, length, {.wire_dtype = dtype});
        auto in_tcp = AllReduceOnEveryRank(tcp, length, {.wire_dtype = dtype});
        for (int r = 0; r < n; ++r) {
          ASSERT_EQ(in_shm[r], in_shm[0]);
          // The same messages in the same order: the data path changes nothing.
          ASSERT_EQ(in_tcp[r], in_shm[0]);
        }
      }
    }
  }
}

TEST(RingCommunicatorTest, SixteenBitWireSendsHalfTheBytes) {
  for (int world : {2, 3}) {
    auto mesh = CreateInProcessMesh(world);
    const size_t n = 4800;
    auto statuses = RunOnRanks(world, [&](int r) -> absl::Status {
      RingCommunicator comm(mesh[r].get(), {.wire_dtype = WireDtype::kBFloat16});
      std::vector<float> data = RankData(r, n);
      return comm.AllReduceSum(absl::MakeSpan(data), kCtx);
    });
    for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
    for (int r = 0; r < world; ++r) {
      const int64_t expected = static_cast<int64_t>(2 * (world - 1) * (n / world) * 2);
      EXPECT_EQ(mesh[r]->stats().bytes_sent, expected) << "world " << world << " rank " << r;
      EXPECT_EQ(mesh[r]->stats().bytes_received, expected);
    }
  }
}

}  // namespace
}  // namespace meshtrain

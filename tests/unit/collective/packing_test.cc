#include "runtime/collective/packing.h"

#include <cstring>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/collective/ring_communicator.h"
#include "runtime/transport/in_process_transport.h"
#include "tests/unit/transport/run_on_ranks.h"

namespace meshtrain {
namespace {

TEST(PlanPacksTest, ZeroMeansOnePackOfEverything) {
  std::vector<size_t> bytes{400, 4, 1200, 0, 8};
  EXPECT_EQ(PlanPacks(bytes, 0), (std::vector<Pack>{{0, 5, 1612}}));
  EXPECT_EQ(PlanPacks({}, 0), std::vector<Pack>{});
}

TEST(PlanPacksTest, APackClosesOnceItHoldsMoreThanBytesPerPack) {
  // TensorFlow's group_by_size: a pack takes tensors while it holds <= the
  // threshold, so packs are at least that large (the last one excepted).
  std::vector<size_t> bytes{4, 4, 4, 4};
  EXPECT_EQ(PlanPacks(bytes, 8), (std::vector<Pack>{{0, 3, 12}, {3, 1, 4}}));
  std::vector<size_t> exact{8, 8, 8};
  EXPECT_EQ(PlanPacks(exact, 8), (std::vector<Pack>{{0, 2, 16}, {2, 1, 8}}));
  std::vector<size_t> big{1000, 1, 1, 1000, 1};
  EXPECT_EQ(PlanPacks(big, 10), (std::vector<Pack>{{0, 1, 1000}, {1, 3, 1002}, {4, 1, 1}}));
  EXPECT_EQ(PlanPacks(big, 1), (std::vector<Pack>{{0, 1, 1000}, {1, 2, 2}, {3, 1, 1000}, {4, 1, 1}}));
}

// The reference job's gradients: 784x300 + 300 + 300x100 + 100 + 100x10 + 10.
const std::vector<size_t> kMlpTensorLengths{235200, 300, 30000, 100, 1000, 10};

TEST(PackedAllReducerTest, SumsScatteredAndContiguousTensors) {
  for (int n : {1, 2, 3}) {
    for (size_t bytes_per_pack : {size_t{0}, size_t{4096}, size_t{1} << 20}) {
      auto mesh = CreateInProcessMesh(n);
      std::vector<std::vector<std::vector<float>>> tensors(n);  // [rank][tensor]
      std::vector<std::vector<float>> arenas(n);                // contiguous variant
      std::vector<size_t> copied(n), arena_copied(n);
      auto statuses = testing::RunOnRanks(n, [&](int r) -> absl::Status {
        RingCommunicator comm(mesh[r].get());
        PackedAllReducer packer(bytes_per_pack);
        std::vector<absl::Span<float>> spans;
        for (size_t t = 0; t < kMlpTensorLengths.size(); ++t) {
          tensors[r].push_back(testing::RankData(r * 10 + t, kMlpTensorLengths[t]));
        }
        for (auto& t : tensors[r]) spans.push_back(absl::MakeSpan(t));
        CollectiveContext ctx{3, "gradients", absl::Now() + absl::Seconds(30)};
        if (auto s = packer.AllReduce(comm, spans, ctx); !s.ok()) return s;
        copied[r] = packer.copied_bytes();
        // The same gradients in one arena: reduced in place.
        size_t total = 0;
        for (size_t len : kMlpTensorLengths) total += len;
        arenas[r].resize(total);
        std::vector<absl::Span<float>> views;
        size_t at = 0;
        for (size_t t = 0; t < kMlpTensorLengths.size(); ++t) {
          std::vector<float> v = testing::RankData(r * 10 + t, kMlpTensorLengths[t]);
          std::memcpy(arenas[r].data() + at, v.data(), v.size() * sizeof(float));
          views.push_back(absl::MakeSpan(arenas[r].data() + at, v.size()));
          at += v.size();
        }
        if (auto s = packer.AllReduce(comm, views, ctx); !s.ok()) return s;
        arena_copied[r] = packer.copied_bytes();
        return absl::OkStatus();
      });
      for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
      size_t at = 0;
      for (size_t t = 0; t < kMlpTensorLengths.size(); ++t) {
        for (size_t i = 0; i < kMlpTensorLengths[t]; ++i) {
          double expect = 0;
          for (int r = 0; r < n; ++r) expect += testing::RankValue(r * 10 + t, i);
          ASSERT_NEAR(tensors[0][t][i], expect, testing::SumTolerance(n));
          for (int r = 0; r < n; ++r) {
            ASSERT_EQ(tensors[r][t][i], tensors[0][t][i]);
            ASSERT_EQ(arenas[r][at + i], tensors[0][t][i]);
          }
        }
        at += kMlpTensorLengths[t];
      }
      if (n > 1) {
        EXPECT_EQ(arena_copied[0], 0u) << "contiguous tensors are not copied";
        if (bytes_per_pack == 0) {
          EXPECT_GT(copied[0], 0u);
        }
      }
    }
  }
}

}  // namespace
}  // namespace meshtrain

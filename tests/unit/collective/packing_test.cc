#include "runtime/collective/packing.h"

#include <vector>

#include "gtest/gtest.h"

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
  EXPECT_EQ(PlanPacks(big, 1),
            (std::vector<Pack>{{0, 1, 1000}, {1, 2, 2}, {3, 1, 1000}, {4, 1, 1}}));
}

}  // namespace
}  // namespace meshtrain

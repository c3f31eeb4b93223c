#include "runtime/data/portable_random.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace meshtrain {
namespace {

// The C++ standard fixes this value ([rand.predef]): the engine under every
// draw is the same on every conforming library.
TEST(PortableRandomTest, EngineIsTheStandardMt19937_64) {
  std::mt19937_64 engine;
  engine.discard(9999);
  EXPECT_EQ(engine(), 9981545732273789042ULL);
}

TEST(PortableRandomTest, DerivedSeedsDiffer) {
  EXPECT_NE(DeriveSeed(1, 0), DeriveSeed(1, 1));
  EXPECT_NE(DeriveSeed(1, 0), DeriveSeed(2, 0));
  EXPECT_EQ(DeriveSeed(9, 4), DeriveSeed(9, 4));
}

// Chi-square against the uniform distribution with a generous bound (the 1e-6
// tail for these degrees of freedom), so only real bias fails it.
double ChiSquare(const std::vector<int64_t>& counts, int64_t draws) {
  const double expected = static_cast<double>(draws) / counts.size();
  double chi = 0;
  for (int64_t c : counts) chi += (c - expected) * (c - expected) / expected;
  return chi;
}

TEST(PortableRandomTest, UniformBelowIsInRangeAndUnbiased) {
  PortableRandom random(5);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(random.UniformBelow(1), 0u);
  // 2^63 + 1 rejects almost half the draws; results must stay below the bound.
  const uint64_t big = (uint64_t{1} << 63) + 1;
  for (int i = 0; i < 1000; ++i) EXPECT_LT(random.UniformBelow(big), big);

  constexpr int64_t kDraws = 60000;
  std::vector<int64_t> counts(6);
  for (int64_t i = 0; i < kDraws; ++i) ++counts[random.UniformBelow(6)];
  EXPECT_LT(ChiSquare(counts, kDraws), 35.9) << "5 degrees of freedom";
}

TEST(PortableRandomTest, ShuffleMakesEveryPermutationEquallyLikely) {
  PortableRandom random(11);
  constexpr int64_t kDraws = 24000;
  std::map<std::vector<int64_t>, int64_t> seen;
  for (int64_t i = 0; i < kDraws; ++i) {
    std::vector<int64_t> v = {0, 1, 2, 3};
    random.Shuffle(absl::MakeSpan(v));
    ++seen[v];
  }
  ASSERT_EQ(seen.size(), 24u);
  std::vector<int64_t> counts;
  for (const auto& [perm, count] : seen) counts.push_back(count);
  EXPECT_LT(ChiSquare(counts, kDraws), 71.0) << "23 degrees of freedom";
}

TEST(PortableRandomTest, NormalApproxHasUnitVarianceAndBoundedTails) {
  PortableRandom random(3);
  constexpr int kDraws = 100000;
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < kDraws; ++i) {
    const float x = random.NormalApprox();
    ASSERT_LE(std::fabs(x), 3.4642f);
    sum += x;
    sum_sq += static_cast<double>(x) * x;
  }
  const double mean = sum / kDraws;
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(sum_sq / kDraws - mean * mean, 1.0, 0.02);
}

TEST(PortableRandomTest, UniformFloatIsInUnitInterval) {
  PortableRandom random(8);
  float low = 1, high = 0;
  for (int i = 0; i < 100000; ++i) {
    const float x = random.UniformFloat();
    low = std::min(low, x);
    high = std::max(high, x);
  }
  EXPECT_GE(low, 0.0f);
  EXPECT_LT(high, 1.0f);
  EXPECT_LT(low, 0.001f);
  EXPECT_GT(high, 0.999f);
}

}  // namespace
}  // namespace meshtrain

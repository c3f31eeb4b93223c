// AUC and the constant predictor's loss: hand-computed cases.
#include "training/binary_metrics.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace meshtrain {
namespace {

TEST(BinaryMetricsTest, AreaUnderRocCountsOrderedPairs) {
  // Perfect, reversed, and chance orderings.
  EXPECT_DOUBLE_EQ(
      AreaUnderRoc(std::vector<float>{0.1f, 0.2f, 0.8f, 0.9f}, std::vector<float>{0, 0, 1, 1}),
      1.0);
  EXPECT_DOUBLE_EQ(
      AreaUnderRoc(std::vector<float>{0.9f, 0.8f, 0.2f, 0.1f}, std::vector<float>{0, 0, 1, 1}),
      0.0);
  // Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered.
  EXPECT_DOUBLE_EQ(
      AreaUnderRoc(std::vector<float>{0.1f, 0.4f, 0.35f, 0.8f}, std::vector<float>{0, 0, 1, 1}),
      0.75);
  // A tie between a positive and a negative counts half.
  EXPECT_DOUBLE_EQ(AreaUnderRoc(std::vector<float>{0.5f, 0.5f}, std::vector<float>{0, 1}), 0.5);
  EXPECT_DOUBLE_EQ(AreaUnderRoc(std::vector<float>{0.2f, 0.5f, 0.5f}, std::vector<float>{0, 0, 1}),
                   0.75);
  // One class only: no pairs to order.
  EXPECT_DOUBLE_EQ(AreaUnderRoc(std::vector<float>{0.2f, 0.3f}, std::vector<float>{1, 1}), 0.5);
}

TEST(BinaryMetricsTest, ConstantLogLossIsTheEntropyAtTheBaseRate) {
  const std::vector<float> labels = {1, 0, 0, 0};
  EXPECT_NEAR(ConstantLogLoss(0.25, labels), -(0.25 * std::log(0.25) + 0.75 * std::log(0.75)),
              1e-12);
  // Any other constant does worse.
  EXPECT_GT(ConstantLogLoss(0.5, labels), ConstantLogLoss(0.25, labels));
  EXPECT_TRUE(std::isfinite(ConstantLogLoss(0.0, labels)));
}

}  // namespace
}  // namespace meshtrain

#include "runtime/optim/learning_rate_schedule.h"

#include <cmath>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

LearningRateSchedule Make(double initial, const LearningRateScheduleConfig& config) {
  absl::StatusOr<LearningRateSchedule> schedule = LearningRateSchedule::Create(initial, config);
  EXPECT_TRUE(schedule.ok()) << schedule.status();
  return *schedule;
}

std::string ErrorOf(double initial, const LearningRateScheduleConfig& config) {
  return std::string(LearningRateSchedule::Create(initial, config).status().message());
}

TEST(LearningRateScheduleTest, ConstantIsTheInitialRateAtEveryStep) {
  const LearningRateSchedule s = Make(0.05, {});
  for (int64_t step : {0, 1, 1000, 1000000}) EXPECT_EQ(s.Value(step), 0.05);
}

TEST(LearningRateScheduleTest, StepDropsAtEachBoundary) {
  const LearningRateSchedule s =
      Make(0.8, {.schedule = "step", .decay_steps = 10, .decay_rate = 0.5});
  EXPECT_DOUBLE_EQ(s.Value(0), 0.8);
  EXPECT_DOUBLE_EQ(s.Value(9), 0.8);
  EXPECT_DOUBLE_EQ(s.Value(10), 0.4);
  EXPECT_DOUBLE_EQ(s.Value(19), 0.4);
  EXPECT_DOUBLE_EQ(s.Value(20), 0.2);
}

TEST(LearningRateScheduleTest, StepWithoutStaircaseIsExponentialDecay) {
  const LearningRateSchedule s =
      Make(1.0, {.schedule = "step", .decay_steps = 10, .decay_rate = 0.5, .staircase = false});
  EXPECT_DOUBLE_EQ(s.Value(5), std::sqrt(0.5));
  EXPECT_DOUBLE_EQ(s.Value(10), 0.5);
}

TEST(LearningRateScheduleTest, CosineEndsAtAlphaTimesInitial) {
  const LearningRateSchedule s =
      Make(0.1, {.schedule = "cosine", .decay_steps = 100, .alpha = 0.1});
  EXPECT_DOUBLE_EQ(s.Value(0), 0.1);
  EXPECT_NEAR(s.Value(50), 0.1 * (0.9 * 0.5 + 0.1), 1e-15);
  EXPECT_NEAR(s.Value(100), 0.01, 1e-15);
  EXPECT_NEAR(s.Value(5000), 0.01, 1e-15);
  EXPECT_GT(s.Value(99), s.Value(100));
}

TEST(LearningRateScheduleTest, WarmupRisesLinearlyToTheScheduleStart) {
  const LearningRateSchedule s =
      Make(0.4, {.schedule = "cosine", .decay_steps = 20, .alpha = 0.0, .warmup_steps = 10});
  EXPECT_DOUBLE_EQ(s.Value(0), 0.0);
  EXPECT_DOUBLE_EQ(s.Value(5), 0.2);
  EXPECT_DOUBLE_EQ(s.Value(9), 0.36);
  EXPECT_DOUBLE_EQ(s.Value(10), 0.4);  // warm-up end: the cosine's start
  EXPECT_NEAR(s.Value(20), 0.2, 1e-15);
  EXPECT_NEAR(s.Value(30), 0.0, 1e-15);
}

TEST(LearningRateScheduleTest, WarmupFromAGivenRate) {
  const LearningRateSchedule s = Make(0.4, {.warmup_steps = 4, .warmup_initial = 0.1});
  EXPECT_DOUBLE_EQ(s.Value(0), 0.1);
  EXPECT_DOUBLE_EQ(s.Value(2), 0.25);
  EXPECT_DOUBLE_EQ(s.Value(4), 0.4);
  EXPECT_DOUBLE_EQ(s.Value(400), 0.4);
}

TEST(LearningRateScheduleTest, ErrorsNameTheFieldAndTheFix) {
  EXPECT_THAT(ErrorOf(0.1, {.schedule = "linear"}),
              ::testing::HasSubstr("optimizer.learning_rate.schedule: 'linear' is unknown: use "
                                   "constant, step or cosine"));
  EXPECT_THAT(ErrorOf(0.1, {.schedule = "cosine"}),
              ::testing::HasSubstr("optimizer.learning_rate.decay_steps: 0 is out of range"));
  EXPECT_THAT(ErrorOf(0.1, {.schedule = "step", .decay_steps = 5, .decay_rate = 2}),
              ::testing::HasSubstr("optimizer.learning_rate.decay_rate: 2 is out of range"));
  EXPECT_THAT(ErrorOf(0.1, {.schedule = "cosine", .decay_steps = 5, .alpha = -1}),
              ::testing::HasSubstr("optimizer.learning_rate.alpha: -1 is out of range"));
  EXPECT_THAT(ErrorOf(0.1, {.warmup_steps = -3}),
              ::testing::HasSubstr("optimizer.learning_rate.warmup_steps: -3 is negative"));
  EXPECT_THAT(ErrorOf(0.1, {.warmup_steps = 3, .warmup_initial = 0.5}),
              ::testing::HasSubstr("optimizer.learning_rate.warmup_initial: 0.5 is out of range"));
  EXPECT_THAT(ErrorOf(0.0, {}), ::testing::HasSubstr("optimizer.learning_rate.initial: 0"));
}

}  // namespace
}  // namespace meshtrain

#include "runtime/data/global_position.h"

#include <map>
#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/data/batch_schedule.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

BatchScheduleOptions Layout(int64_t n, int64_t g, int shards,
                            std::shared_ptr<const GlobalInputPosition> from = nullptr) {
  return {.num_examples = n,
          .global_batch_size = g,
          .seed = 7,
          .num_shards = shards,
          .resume_from = std::move(from)};
}

BatchSchedule Make(BatchScheduleOptions o, int shard = 0) {
  o.shard_index = shard;
  absl::StatusOr<BatchSchedule> s = BatchSchedule::Create(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}

GlobalInputPosition Advance(const BatchScheduleOptions& o, std::vector<InputPosition> next) {
  absl::StatusOr<GlobalInputPosition> p = AdvanceGlobalPosition(Make(o), next);
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

// Counts, per epoch, how often each example is trained by every shard of
// `o` from each shard's `from` up to (not including) epoch `until`, or to
// `to[w]` when given.
using Counts = std::map<int64_t, std::vector<int>>;
void Train(const BatchScheduleOptions& o, const std::vector<InputPosition>& from,
           const std::vector<InputPosition>& to, Counts& counts) {
  for (int w = 0; w < o.num_shards; ++w) {
    const BatchSchedule s = Make(o, w);
    for (InputPosition p = s.Normalize(from[w]);
         p.epoch < to[w].epoch || (p.epoch == to[w].epoch && p.step < to[w].step);
         p = s.Advance(p)) {
      std::vector<int>& c = counts[p.epoch];
      c.resize(static_cast<size_t>(o.num_examples));
      for (int64_t i : s.ShardIndices(p.epoch, p.step)) ++c[i];
    }
  }
}

void ExpectEachOnce(const Counts& counts, int64_t first_epoch, int64_t last_epoch, int64_t n) {
  for (int64_t e = first_epoch; e <= last_epoch; ++e) {
    auto it = counts.find(e);
    ASSERT_NE(it, counts.end()) << "epoch " << e;
    ASSERT_EQ(static_cast<int64_t>(it->second.size()), n);
    for (int64_t i = 0; i < n; ++i)
      EXPECT_EQ(it->second[i], 1) << "epoch " << e << " example " << i;
  }
}

TEST(GlobalPositionTest, SynchronousPrefix) {
  const GlobalInputPosition p = Advance(Layout(100, 12, 2), {{0, 3}, {0, 3}});
  EXPECT_EQ(p.epoch, 0);
  ASSERT_EQ(p.trained.size(), 1u);
  ASSERT_EQ(p.trained.at(0).size(), 1u);
  EXPECT_EQ(p.trained.at(0)[0].begin, 0);
  EXPECT_EQ(p.trained.at(0)[0].end, 36);
  EXPECT_EQ(p.TrainedIn(0), 36);
  EXPECT_TRUE(p.IsTrained(0, 35));
  EXPECT_FALSE(p.IsTrained(0, 36));
  // At an epoch boundary nothing is partial.
  const GlobalInputPosition boundary = Advance(Layout(100, 12, 2), {{2, 0}, {2, 0}});
  EXPECT_EQ(boundary.epoch, 2);
  EXPECT_TRUE(boundary.trained.empty());
  EXPECT_EQ(boundary.TrainedIn(1), 100);
}

// The same layout resumed from the global position reads what the
// undisturbed schedule reads: a same-shape resume is bit for bit.
TEST(GlobalPositionTest, SameLayoutContinuesTheUndisturbedSchedule) {
  const BatchScheduleOptions fresh = Layout(100, 12, 2);
  auto from = std::make_shared<GlobalInputPosition>(Advance(fresh, {{0, 3}, {0, 3}}));
  for (int w = 0; w < 2; ++w) {
    const BatchSchedule a = Make(fresh, w);
    const BatchSchedule b = Make(Layout(100, 12, 2, from), w);
    EXPECT_EQ(b.FirstPosition(), (InputPosition{0, 0}));
    EXPECT_EQ(b.StepsInEpoch(0), a.steps_per_epoch() - 3);
    for (int64_t k = 0; k < b.StepsInEpoch(0); ++k) {
      EXPECT_EQ(b.ShardIndices(0, k), a.ShardIndices(0, 3 + k)) << "shard " << w << " step " << k;
    }
    EXPECT_EQ(b.ShardIndices(1, 0), a.ShardIndices(1, 0));
  }
}

// A checkpoint of any shape resumed on any other: over the epochs touched,
// each example is trained exactly once, before and after the reshape.
TEST(GlobalPositionTest, ReshapeTrainsEachExampleOnce) {
  const int64_t n = 101;  // odd: uneven shards and a short last batch
  for (int old_workers : {1, 2, 3, 8}) {
    for (int new_workers : {1, 2, 3, 8}) {
      for (int64_t old_g : {24, 25}) {
        for (int64_t new_g : {24, 16}) {
          SCOPED_TRACE(testing::Message()
                       << old_workers << "x" << old_g << " -> " << new_workers << "x" << new_g);
          const BatchScheduleOptions before = Layout(n, old_g, old_workers);
          std::vector<InputPosition> stop(old_workers, InputPosition{1, 2});
          Counts counts;
          Train(before, std::vector<InputPosition>(old_workers), stop, counts);
          auto from = std::make_shared<GlobalInputPosition>(Advance(before, stop));
          EXPECT_EQ(from->epoch, 1);
          EXPECT_EQ(from->TrainedIn(1), 2 * old_g);
          const BatchScheduleOptions after = Layout(n, new_g, new_workers, from);
          const InputPosition first = Make(after).FirstPosition();
          Train(after, std::vector<InputPosition>(new_workers, first),
                std::vector<InputPosition>(new_workers, InputPosition{3, 0}), counts);
          ExpectEachOnce(counts, 0, 2, n);
        }
      }
    }
  }
}

// Parameter-server workers stop at different steps, even in different
// epochs: the position holds each one's rows, and the next cluster trains
// exactly the rest.
TEST(GlobalPositionTest, WorkersAtTheirOwnStepsAcrossEpochs) {
  const int64_t n = 90;
  const BatchScheduleOptions before = Layout(n, 20, 2);  // 5 steps an epoch, 10 rows a shard
  const std::vector<InputPosition> stop = {{1, 1}, {0, 2}};
  Counts counts;
  Train(before, {{0, 0}, {0, 0}}, stop, counts);
  const GlobalInputPosition p = Advance(before, stop);
  EXPECT_EQ(p.epoch, 0);
  // Epoch 0: steps 0-1 whole, then shard 0's rows of steps 2-4.
  EXPECT_EQ(p.TrainedIn(0), 2 * 20 + 10 + 10 + 5);
  EXPECT_EQ(p.TrainedIn(1), 10);  // shard 0's first step of epoch 1
  EXPECT_EQ(p.trained.at(1).size(), 1u);
  EXPECT_EQ(p.trained.at(0).size(), 3u);  // [0, 50), [60, 70), [80, 85)
  for (int workers : {1, 3}) {
    Counts resumed = counts;
    auto from = std::make_shared<GlobalInputPosition>(p);
    const BatchScheduleOptions after = Layout(n, 18, workers, from);
    const BatchSchedule s = Make(after);
    EXPECT_EQ(s.ExamplesInEpoch(0), n - 65);
    EXPECT_EQ(s.ExamplesInEpoch(1), n - 10);
    EXPECT_EQ(s.ExamplesInEpoch(2), n);
    Train(after, std::vector<InputPosition>(workers, s.FirstPosition()),
          std::vector<InputPosition>(workers, InputPosition{2, 0}), resumed);
    ExpectEachOnce(resumed, 0, 1, n);
  }
}

// Resumed twice within one epoch (2 workers -> 3 -> 1): the position of the
// middle run counts what the first trained as well.
TEST(GlobalPositionTest, ReshapedTwiceWithinAnEpoch) {
  const int64_t n = 120;
  const BatchScheduleOptions first = Layout(n, 12, 2);
  Counts counts;
  Train(first, {{0, 0}, {0, 0}}, {{0, 2}, {0, 2}}, counts);
  auto p1 = std::make_shared<GlobalInputPosition>(Advance(first, {{0, 2}, {0, 2}}));
  const BatchScheduleOptions second = Layout(n, 9, 3, p1);
  Train(second, {{0, 0}, {0, 0}, {0, 0}}, {{0, 4}, {0, 3}, {0, 4}}, counts);  // uneven: async
  auto p2 = std::make_shared<GlobalInputPosition>(Advance(second, {{0, 4}, {0, 3}, {0, 4}}));
  EXPECT_EQ(p2->TrainedIn(0), 24 + 3 * 9 + 3 + 3);
  const BatchScheduleOptions third = Layout(n, 7, 1, p2);
  Train(third, {Make(third).FirstPosition()}, {{1, 0}}, counts);
  ExpectEachOnce(counts, 0, 0, n);
}

TEST(GlobalPositionTest, JsonRoundTripAndMalformed) {
  GlobalInputPosition p;
  p.num_examples = 50;
  p.epoch = 2;
  p.trained[2] = {{0, 10}, {20, 25}};
  p.trained[3] = {{0, 5}};
  const nlohmann::json j = GlobalPositionToJson(p);
  EXPECT_EQ(j["examples"]["2"], 15);
  absl::StatusOr<GlobalInputPosition> back = GlobalPositionFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == p);

  InputLayout layout{.own_files = false,
                     .num_shards = 3,
                     .tasks = {"worker:0", "worker:1", "worker:2"},
                     .global_batch_size = 96,
                     .base = p};
  absl::StatusOr<InputLayout> layout_back = InputLayoutFromJson(InputLayoutToJson(layout));
  ASSERT_TRUE(layout_back.ok()) << layout_back.status();
  EXPECT_TRUE(*layout_back == layout);

  nlohmann::json overlap = j;
  overlap["trained"]["2"] = {0, 10, 5, 12};
  EXPECT_THAT(GlobalPositionFromJson(overlap).status().message(),
              HasSubstr("not after the previous one"));
  nlohmann::json outside = j;
  outside["trained"]["3"] = {40, 51};
  EXPECT_EQ(GlobalPositionFromJson(outside).status().code(), absl::StatusCode::kDataLoss);
  nlohmann::json early = j;
  early["trained"]["1"] = {0, 1};
  EXPECT_THAT(GlobalPositionFromJson(early).status().message(), HasSubstr("epoch '1'"));
  EXPECT_EQ(GlobalPositionFromJson(nlohmann::json::object()).status().code(),
            absl::StatusCode::kDataLoss);
  nlohmann::json bad_layout = InputLayoutToJson(layout);
  bad_layout["policy"] = "round-robin";
  EXPECT_THAT(InputLayoutFromJson(bad_layout).status().message(), HasSubstr("round-robin"));
}

TEST(GlobalPositionTest, RejectsPositionsThatDoNotFitTheSchedule) {
  const BatchSchedule s = Make(Layout(100, 12, 2));
  EXPECT_EQ(AdvanceGlobalPosition(s, {{0, 1}}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AdvanceGlobalPosition(s, {{0, 1}, {0, 10}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  GlobalInputPosition other;
  other.num_examples = 99;
  BatchScheduleOptions o = Layout(100, 12, 2, std::make_shared<GlobalInputPosition>(other));
  EXPECT_THAT(BatchSchedule::Create(o).status().message(), HasSubstr("99 examples"));
}

}  // namespace
}  // namespace meshtrain

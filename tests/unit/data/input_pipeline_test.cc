#include "runtime/data/input_pipeline.h"

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/data/indexed_dataset.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::HoldsRows;
using ::meshtrain::testing::IndexedDataset;
using ::testing::HasSubstr;

absl::Time Soon() { return absl::Now() + absl::Seconds(30); }

std::unique_ptr<InputPipeline> MakePipeline(const Dataset* dataset,
                                            const BatchScheduleOptions& options,
                                            InputPosition start, int depth, int threads = 1) {
  absl::StatusOr<std::unique_ptr<InputPipeline>> pipeline = InputPipeline::Create(
      dataset, options, start, {.prefetch_depth = depth, .num_threads = threads});
  EXPECT_TRUE(pipeline.ok()) << pipeline.status();
  if (!pipeline.ok()) return nullptr;
  (*pipeline)->Start();
  return *std::move(pipeline);
}

// Walks `count` batches from `start` and checks each against the schedule. The
// previous batch must still hold its rows when the next one arrives.
void ExpectScheduleOrder(InputPipeline& pipeline, InputPosition start, int count) {
  const BatchSchedule& schedule = pipeline.schedule();
  InputPosition expected = start;
  Batch previous;
  std::vector<int64_t> previous_indices;
  for (int i = 0; i < count; ++i) {
    EXPECT_EQ(pipeline.next_position(), expected);
    absl::StatusOr<std::pair<Batch, InputPosition>> next = pipeline.Next(Soon());
    ASSERT_TRUE(next.ok()) << next.status();
    const auto& [batch, position] = *next;
    ASSERT_EQ(position, expected) << "batch " << i;
    const std::vector<int64_t> indices = schedule.ShardIndices(position.epoch, position.step);
    ASSERT_TRUE(HoldsRows(batch, indices))
        << "epoch " << position.epoch << " step " << position.step;
    if (i > 0) {
      ASSERT_TRUE(HoldsRows(previous, previous_indices)) << "previous batch overwritten at " << i;
    }
    previous = batch;
    previous_indices = indices;
    expected = schedule.Advance(expected);
  }
}

TEST(InputPipelineTest, YieldsTheScheduleInOrderWithAndWithoutPrefetch) {
  const Dataset dataset = IndexedDataset(50, 3);
  for (const auto [depth, threads] :
       std::vector<std::pair<int, int>>{{0, 1}, {1, 1}, {2, 1}, {4, 1}, {1, 3}, {4, 3}}) {
    for (int shard : {0, 2}) {
      SCOPED_TRACE(::testing::Message()
                   << "prefetch " << depth << " threads " << threads << " shard " << shard);
      // 50 examples in global batches of 8 over 3 shards: 7 steps per epoch,
      // shard sizes 3/3/2, and a last step of 2 (1/1/0).
      const BatchScheduleOptions options{.num_examples = 50,
                                         .global_batch_size = 8,
                                         .seed = 4,
                                         .num_shards = 3,
                                         .shard_index = shard};
      std::unique_ptr<InputPipeline> pipeline = MakePipeline(&dataset, options, {}, depth, threads);
      ASSERT_NE(pipeline, nullptr);
      EXPECT_EQ(pipeline->synchronous(), depth == 0);
      EXPECT_EQ(pipeline->num_threads(), threads);
      ExpectScheduleOrder(*pipeline, {0, 0}, 3 * 7 + 2);
    }
  }
}

TEST(InputPipelineTest, ResumesAtAPosition) {
  const Dataset dataset = IndexedDataset(40, 2);
  const BatchScheduleOptions options{.num_examples = 40, .global_batch_size = 6, .seed = 8};
  for (int depth : {0, 2}) {
    std::unique_ptr<InputPipeline> pipeline =
        MakePipeline(&dataset, options, {3, 5}, depth, depth == 0 ? 1 : 4);
    ASSERT_NE(pipeline, nullptr);
    ExpectScheduleOrder(*pipeline, {3, 5}, 10);
  }
}

TEST(InputPipelineTest, FullShardsReuseTheirBuffers) {
  const Dataset dataset = IndexedDataset(64, 4);
  const BatchScheduleOptions options{.num_examples = 64, .global_batch_size = 16, .seed = 1};
  std::unique_ptr<InputPipeline> pipeline = MakePipeline(&dataset, options, {}, 2);
  ASSERT_NE(pipeline, nullptr);
  std::set<const void*> buffers;
  for (int i = 0; i < 40; ++i) {
    absl::StatusOr<std::pair<Batch, InputPosition>> next = pipeline->Next(Soon());
    ASSERT_TRUE(next.ok()) << next.status();
    buffers.insert(next->first.inputs.raw_data());
  }
  EXPECT_LE(buffers.size(), 5u) << "prefetch 2 + 2 held + 1 being filled";
}

// Several threads gather out of order; the batches still come in schedule
// order, none lost or repeated, and a missed deadline loses nothing.
TEST(InputPipelineTest, ParallelThreadsDeliverInScheduleOrder) {
  const Dataset dataset = IndexedDataset(97, 5);
  const BatchScheduleOptions options{
      .num_examples = 97, .global_batch_size = 6, .seed = 3, .num_shards = 2, .shard_index = 1};
  std::unique_ptr<InputPipeline> pipeline = MakePipeline(&dataset, options, {}, 2, 4);
  ASSERT_NE(pipeline, nullptr);
  ExpectScheduleOrder(*pipeline, {0, 0}, 5 * 17);
  std::set<const void*> buffers;
  for (int i = 0; i < 40; ++i) {
    absl::StatusOr<std::pair<Batch, InputPosition>> next = pipeline->Next(absl::InfinitePast());
    if (!next.ok()) next = pipeline->Next(Soon());
    ASSERT_TRUE(next.ok()) << next.status();
    buffers.insert(next->first.inputs.raw_data());
  }
  EXPECT_LE(buffers.size(), 8u) << "prefetch 2 + 2 held + 4 being filled";
}

// Augmentation follows an example's row in the global batch: two shards'
// batches put together are the one-shard batch, whatever the thread count.
TEST(InputPipelineTest, AugmentedBatchesAreTheSameForEveryShardingAndThreadCount) {
  const Dataset dataset = IndexedDataset(40, 6);  // images [2, 3, 1]
  const AugmentOptions augment{
      .height = 2, .width = 3, .channels = 1, .flip_left_right = true, .crop_padding = 1};
  const BatchScheduleOptions whole{.num_examples = 40, .global_batch_size = 8, .seed = 5};
  std::unique_ptr<InputPipeline> one = MakePipeline(&dataset, whole, {}, 0);
  ASSERT_NE(one, nullptr);
  absl::StatusOr<std::unique_ptr<InputPipeline>> augmented =
      InputPipeline::Create(&dataset, whole, {}, {.prefetch_depth = 0, .augment = augment});
  ASSERT_TRUE(augmented.ok()) << augmented.status();
  std::vector<std::unique_ptr<InputPipeline>> shards;
  for (int shard : {0, 1}) {
    BatchScheduleOptions half = whole;
    half.num_shards = 2;
    half.shard_index = shard;
    auto pipeline = InputPipeline::Create(
        &dataset, half, {}, {.prefetch_depth = 2, .num_threads = 3, .augment = augment});
    ASSERT_TRUE(pipeline.ok()) << pipeline.status();
    (*pipeline)->Start();
    shards.push_back(*std::move(pipeline));
  }
  int changed = 0;
  for (int step = 0; step < 12; ++step) {
    auto plain = one->Next(Soon());
    auto full = (*augmented)->Next(Soon());
    ASSERT_TRUE(plain.ok() && full.ok());
    std::vector<float> joined;
    for (auto& shard : shards) {
      auto part = shard->Next(Soon());
      ASSERT_TRUE(part.ok()) << part.status();
      const auto values = part->first.inputs.flat<float>();
      joined.insert(joined.end(), values.begin(), values.end());
    }
    const auto values = full->first.inputs.flat<float>();
    ASSERT_EQ(joined, std::vector<float>(values.begin(), values.end())) << "step " << step;
    const auto before = plain->first.inputs.flat<float>();
    if (!std::equal(before.begin(), before.end(), values.begin())) ++changed;
  }
  EXPECT_GT(changed, 0) << "augmentation changed no batch";
  BatchScheduleOptions wrong = whole;
  auto mismatch = InputPipeline::Create(
      &dataset, wrong, {}, {.augment = {.height = 3, .width = 3, .flip_left_right = true}});
  EXPECT_THAT(mismatch.status().message(), HasSubstr("holds 9 values but each input has 6"));
}

TEST(InputPipelineTest, MissedDeadlinesLoseNoBatch) {
  const Dataset dataset = IndexedDataset(30, 2);
  const BatchScheduleOptions options{.num_examples = 30, .global_batch_size = 4, .seed = 2};
  std::unique_ptr<InputPipeline> pipeline = MakePipeline(&dataset, options, {}, 1);
  ASSERT_NE(pipeline, nullptr);
  InputPosition expected;
  int delivered = 0;
  while (delivered < 20) {
    // A deadline in the past: either a batch is ready now or the call fails.
    absl::StatusOr<std::pair<Batch, InputPosition>> next = pipeline->Next(absl::InfinitePast());
    if (!next.ok()) {
      ASSERT_EQ(next.status().code(), absl::StatusCode::kDeadlineExceeded) << next.status();
      EXPECT_THAT(next.status().message(), HasSubstr("not ready by the deadline"));
      // Wait properly for the one we missed, so the loop does not spin.
      next = pipeline->Next(Soon());
      ASSERT_TRUE(next.ok()) << next.status();
    }
    ASSERT_EQ(next->second, expected);
    ASSERT_TRUE(
        HoldsRows(next->first, pipeline->schedule().ShardIndices(expected.epoch, expected.step)));
    expected = pipeline->schedule().Advance(expected);
    ++delivered;
  }
}

TEST(InputPipelineTest, StopWakesAWaitingConsumer) {
  // Big rows make the first gather take milliseconds, so the consumer is most
  // likely waiting on it when Stop() comes; either way Next() must end Cancelled.
  const int64_t kFeatures = 1 << 18;
  Dataset dataset{.name = "wide", .num_classes = 2};
  dataset.inputs = Tensor::Zeros(DType::kFloat32, Shape{16, kFeatures});
  dataset.labels = Tensor::Zeros(DType::kInt32, Shape{16});
  const BatchScheduleOptions options{.num_examples = 16, .global_batch_size = 16, .seed = 1};
  absl::StatusOr<std::unique_ptr<InputPipeline>> pipeline =
      InputPipeline::Create(&dataset, options, {}, {.prefetch_depth = 2});
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  (*pipeline)->Start();
  std::thread stopper([&] { (*pipeline)->Stop(); });
  absl::Status last;
  const absl::Time begin = absl::Now();
  for (int i = 0; i < 100 && last.ok(); ++i) last = (*pipeline)->Next(Soon()).status();
  stopper.join();
  EXPECT_EQ(last.code(), absl::StatusCode::kCancelled) << last;
  EXPECT_LT(absl::Now() - begin, absl::Seconds(20)) << "Next() waited out its deadline";
  EXPECT_EQ((*pipeline)->Next(Soon()).status().code(), absl::StatusCode::kCancelled);
}

TEST(InputPipelineTest, NextBeforeStartIsAnErrorUnlessSynchronous) {
  const Dataset dataset = IndexedDataset(10, 2);
  const BatchScheduleOptions options{.num_examples = 10, .global_batch_size = 4};
  absl::StatusOr<std::unique_ptr<InputPipeline>> prefetching =
      InputPipeline::Create(&dataset, options, {}, {.prefetch_depth = 2});
  ASSERT_TRUE(prefetching.ok());
  absl::Status status = (*prefetching)->Next(Soon()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("call Start()"));

  absl::StatusOr<std::unique_ptr<InputPipeline>> synchronous =
      InputPipeline::Create(&dataset, options, {}, {.prefetch_depth = 0});
  ASSERT_TRUE(synchronous.ok());
  EXPECT_TRUE((*synchronous)->Next(Soon()).ok());
  (*synchronous)->Stop();
  EXPECT_EQ((*synchronous)->Next(Soon()).status().code(), absl::StatusCode::kCancelled);
}

TEST(InputPipelineTest, CreateRejectsInconsistentArguments) {
  const Dataset dataset = IndexedDataset(10, 2);
  struct Case {
    BatchScheduleOptions options;
    InputPosition start;
    int depth;
    std::string fault;
    int threads = 1;
  };
  for (const Case& c : std::vector<Case>{
           {{.num_examples = 9, .global_batch_size = 4}, {}, 2, "dataset has 10"},
           {{.num_examples = 10, .global_batch_size = 16, .drop_remainder = true},
            {},
            2,
            "no step per epoch"},
           {{.num_examples = 10, .global_batch_size = 4}, {0, 3}, 2, "epoch 0 step 3"},
           {{.num_examples = 10, .global_batch_size = 4}, {}, -1, "prefetch_depth -1"},
           {{.num_examples = 10, .global_batch_size = 0}, {}, 2, "global_batch_size 0"},
           {{.num_examples = 10, .global_batch_size = 4}, {}, 2, "num_threads 0", 0},
       }) {
    absl::StatusOr<std::unique_ptr<InputPipeline>> pipeline = InputPipeline::Create(
        &dataset, c.options, c.start, {.prefetch_depth = c.depth, .num_threads = c.threads});
    EXPECT_EQ(pipeline.status().code(), absl::StatusCode::kInvalidArgument) << c.fault;
    EXPECT_THAT(pipeline.status().message(), HasSubstr(c.fault));
  }
}

}  // namespace
}  // namespace meshtrain

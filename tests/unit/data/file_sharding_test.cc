#include "runtime/data/file_sharding.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Files(int n) {
  std::vector<std::string> files;
  for (int i = 0; i < n; ++i) files.push_back(absl::StrCat("train-", i, "-of-", n, ".tfrecord"));
  return files;
}

// As the acceptance asks: for 1, 2, 3 and 8 workers, the workers' files are
// disjoint and together the whole set; with at least as many files as
// workers nobody is left without a file.
TEST(FileShardingTest, AssignFilesPartitionsTheFiles) {
  for (int n : {0, 1, 2, 3, 7, 8, 9, 17}) {
    const std::vector<std::string> files = Files(n);
    for (int workers : {1, 2, 3, 8}) {
      SCOPED_TRACE(testing::Message() << n << " files, " << workers << " workers");
      std::multiset<std::string> seen;
      size_t smallest = files.size();
      size_t largest = 0;
      for (int w = 0; w < workers; ++w) {
        const std::vector<std::string> mine = AssignFiles(files, workers, w);
        seen.insert(mine.begin(), mine.end());
        smallest = std::min(smallest, mine.size());
        largest = std::max(largest, mine.size());
      }
      EXPECT_EQ(seen, std::multiset<std::string>(files.begin(), files.end()));
      EXPECT_LE(largest - std::min(smallest, largest), 1u);  // as even as it gets
      if (n >= workers) {
        EXPECT_GE(smallest, 1u);
      }
    }
  }
}

TEST(FileShardingTest, WorkerTakesEveryWthFileAsTfDataDoes) {
  const std::vector<std::string> files = Files(9);
  EXPECT_THAT(AssignFiles(files, 2, 1), ElementsAre(files[1], files[3], files[5], files[7]));
  EXPECT_THAT(AssignFiles(files, 3, 0), ElementsAre(files[0], files[3], files[6]));
  EXPECT_THAT(AssignFiles(files, 8, 0), ElementsAre(files[0], files[8]));
  EXPECT_THAT(AssignFiles(files, 8, 7), ElementsAre(files[7]));
  EXPECT_EQ(AssignFiles(files, 1, 0), files);
}

TEST(FileShardingTest, ParsesThePolicies) {
  EXPECT_EQ(*ParseAutoShardPolicy("auto"), AutoShardPolicy::kAuto);
  EXPECT_EQ(*ParseAutoShardPolicy("file"), AutoShardPolicy::kFile);
  EXPECT_EQ(*ParseAutoShardPolicy("data"), AutoShardPolicy::kData);
  const absl::Status bad = ParseAutoShardPolicy("FILE").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), HasSubstr("data.auto_shard 'FILE' is not one of auto, file, data"));
  for (AutoShardPolicy p : {AutoShardPolicy::kAuto, AutoShardPolicy::kFile, AutoShardPolicy::kData})
    EXPECT_EQ(*ParseAutoShardPolicy(AutoShardPolicyName(p)), p);
}

TEST(FileShardingTest, AutoReadsFilesWhenEveryWorkerGetsOne) {
  auto chosen = [](int64_t files, int workers) {
    return ChooseShardPolicy(AutoShardPolicy::kAuto, "tfrecord", files, workers)->policy;
  };
  EXPECT_EQ(chosen(8, 2), AutoShardPolicy::kFile);
  EXPECT_EQ(chosen(8, 8), AutoShardPolicy::kFile);
  EXPECT_EQ(chosen(7, 8), AutoShardPolicy::kData);
  EXPECT_EQ(chosen(1, 2), AutoShardPolicy::kData);
  // One input worker has nothing to shard: the global order of the data policy.
  EXPECT_EQ(chosen(8, 1), AutoShardPolicy::kData);
  absl::StatusOr<ShardDecision> idx =
      ChooseShardPolicy(AutoShardPolicy::kAuto, "fashion_mnist", -1, 2);
  ASSERT_TRUE(idx.ok());
  EXPECT_EQ(idx->policy, AutoShardPolicy::kData);
  EXPECT_THAT(idx->reason, HasSubstr("fashion_mnist is not a list of files"));
  EXPECT_THAT(ChooseShardPolicy(AutoShardPolicy::kAuto, "tfrecord", 8, 2)->reason,
              HasSubstr("8 train files for 2 input workers"));
  EXPECT_EQ(ChooseShardPolicy(AutoShardPolicy::kData, "tfrecord", 8, 2)->policy,
            AutoShardPolicy::kData);
}

TEST(FileShardingTest, FilePolicyNamesTheCountsAndTheFix) {
  EXPECT_EQ(ChooseShardPolicy(AutoShardPolicy::kFile, "csv", 3, 3)->policy, AutoShardPolicy::kFile);
  EXPECT_EQ(ChooseShardPolicy(AutoShardPolicy::kFile, "csv", 1, 1)->policy, AutoShardPolicy::kFile);
  const absl::Status few = ChooseShardPolicy(AutoShardPolicy::kFile, "tfrecord", 3, 8).status();
  EXPECT_EQ(few.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(few.message(), HasSubstr("3 train files for 8 input workers"));
  EXPECT_THAT(few.message(), HasSubstr("at least 8 files"));
  EXPECT_THAT(few.message(), HasSubstr("auto_shard data"));
  const absl::Status arrays = ChooseShardPolicy(AutoShardPolicy::kFile, "npy", -1, 2).status();
  EXPECT_EQ(arrays.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(arrays.message(), HasSubstr("npy is not a list of files"));
}

TEST(FileShardingTest, OwnScheduleIsFullBatchesOfThisWorkersPart) {
  OwnFilesInput input{.num_examples = 30000,
                      .global_batch_size = 256,
                      .seed = 1234,
                      .num_input_workers = 2,
                      .worker_index = 1};
  absl::StatusOr<BatchScheduleOptions> options = OwnFilesSchedule(input);
  ASSERT_TRUE(options.ok()) << options.status();
  absl::StatusOr<BatchSchedule> schedule = BatchSchedule::Create(*options);
  ASSERT_TRUE(schedule.ok());
  EXPECT_EQ(schedule->steps_per_epoch(), 234);  // 30000 / 128, the last 48 not read
  EXPECT_EQ(schedule->GlobalBatchSize(233), 128);
  EXPECT_EQ(FullBatches(30000, 256, 2), 234);

  // The agreed count caps it; every step stays whole.
  input.steps_per_epoch = 200;
  schedule = BatchSchedule::Create(*OwnFilesSchedule(input));
  EXPECT_EQ(schedule->steps_per_epoch(), 200);
  EXPECT_EQ(schedule->GlobalBatchSize(199), 128);
  std::set<int64_t> epoch;
  for (int64_t s = 0; s < 200; ++s) {
    for (int64_t i : schedule->ShardIndices(0, s)) EXPECT_TRUE(epoch.insert(i).second) << i;
  }
  EXPECT_EQ(epoch.size(), 200u * 128u);
}

TEST(FileShardingTest, WorkersAndEpochsDrawTheirOwnOrder) {
  auto order = [](int worker, int64_t epoch) {
    OwnFilesInput input{.num_examples = 1000,
                        .global_batch_size = 64,
                        .seed = 7,
                        .num_input_workers = 2,
                        .worker_index = worker};
    return *BatchSchedule::Create(*OwnFilesSchedule(input))->Permutation(epoch);
  };
  EXPECT_EQ(order(0, 0), order(0, 0));  // deterministic
  EXPECT_NE(order(0, 0), order(1, 0));
  EXPECT_NE(order(0, 0), order(0, 1));
}

TEST(FileShardingTest, OwnScheduleRefusesWhatCannotStep) {
  OwnFilesInput input{.num_examples = 100, .global_batch_size = 256, .num_input_workers = 3};
  absl::Status odd = OwnFilesSchedule(input).status();
  EXPECT_EQ(odd.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(odd.message(), HasSubstr("does not divide by 3 input workers"));
  input.num_input_workers = 2;
  absl::Status small = OwnFilesSchedule(input).status();
  EXPECT_EQ(small.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(small.message(), HasSubstr("holds 100 examples, less than its batch of 128"));
  EXPECT_EQ(FullBatches(100, 256, 2), 0);
}

}  // namespace
}  // namespace meshtrain

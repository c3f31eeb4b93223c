#include "training/job_data.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/data/test_files.h"

namespace meshtrain {
namespace {

using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;

// Three CSV train files of 10, 20 and 30 rows, and one test file.
class JobDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 3; ++i) {
      std::string text = "x,label\n";
      for (int row = 0; row < 10 * (i + 1); ++row)
        absl::StrAppend(&text, row, ".5,", row % 2, "\n");
      testing::WritePlainFile(dir_.File(absl::StrCat("train-", i, ".csv")), text);
    }
    testing::WritePlainFile(dir_.File("test.csv"), "x,label\n1,0\n2,1\n");
    config_.dataset = "csv";
    config_.train_files = dir_.File("train-*.csv");
    config_.test_files = dir_.File("test.csv");
    config_.num_classes = 2;
  }

  testing::TempDir dir_;
  DataConfig config_;
};

TEST_F(JobDataTest, FilePolicyLoadsOnlyThisWorkersFiles) {
  absl::StatusOr<JobData> data = LoadJobData(config_, 1, InputWorker{2, 1});
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->sharding.decision.policy, AutoShardPolicy::kFile);
  EXPECT_THAT(data->sharding.files, ElementsAre(EndsWith("train-1.csv")));
  EXPECT_EQ(data->train.size(), 20);
  EXPECT_EQ(data->test.size(), 2);  // the test split is whole
  EXPECT_EQ(data->sharding.Describe(data->train.size()),
            "data: auto_shard file (auto: 3 train files for 2 input workers): input worker 1 of "
            "2 reads 1 of 3 files (20 examples): train-1.csv");

  data = LoadJobData(config_, 1, InputWorker{2, 0});
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->train.size(), 10 + 30);
}

TEST_F(JobDataTest, DataPolicyLoadsTheWholeSet) {
  for (InputWorker worker : {InputWorker{1, 0}, InputWorker{4, 3}}) {
    absl::StatusOr<JobData> data = LoadJobData(config_, 1, worker);  // auto
    ASSERT_TRUE(data.ok()) << data.status();
    EXPECT_EQ(data->sharding.decision.policy, AutoShardPolicy::kData);
    EXPECT_EQ(data->train.size(), 60);
  }
  config_.auto_shard = "data";
  absl::StatusOr<JobData> data = LoadJobData(config_, 1, InputWorker{2, 1});
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->train.size(), 60);
  EXPECT_THAT(data->sharding.Describe(60),
              HasSubstr("auto_shard data (as data.auto_shard says): input worker 1 of 2 loads all "
                        "60 train examples"));
}

TEST_F(JobDataTest, FilePolicyErrorsNameTheProblemAndTheFix) {
  config_.auto_shard = "file";
  absl::Status few = LoadJobData(config_, 1, InputWorker{4, 0}).status();
  EXPECT_EQ(few.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(few.message(), HasSubstr("3 train files for 4 input workers"));
  EXPECT_THAT(few.message(), HasSubstr("meshtrain data convert --shards N"));

  DataConfig synthetic;
  synthetic.dataset = "synthetic";
  synthetic.auto_shard = "file";
  absl::Status arrays = LoadJobData(synthetic, 1, InputWorker{2, 0}).status();
  EXPECT_EQ(arrays.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(arrays.message(), HasSubstr("synthetic is not a list of files"));
  synthetic.auto_shard = "auto";
  absl::StatusOr<JobData> data = LoadJobData(synthetic, 1, InputWorker{2, 0});
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->sharding.decision.policy, AutoShardPolicy::kData);
}

TEST_F(JobDataTest, OnlyTfRecordTakesACacheDirectory) {
  DataConfig csv;
  csv.dataset = "csv";
  csv.cache_dir = "/tmp/cache";
  absl::Status status = LoadJobData(csv, 1).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("data.cache_dir: the csv dataset has no cache"));
  EXPECT_THAT(status.message(), HasSubstr("meshtrain data convert"));
}

}  // namespace
}  // namespace meshtrain

// The datasets a job config names, loaded once per process. Under the file
// policy (runtime/data/file_sharding.h) the train split is only this input
// worker's files; the test split is always whole.
#ifndef MESHTRAIN_TRAINING_JOB_DATA_H_
#define MESHTRAIN_TRAINING_JOB_DATA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/data/dataset.h"
#include "runtime/data/file_sharding.h"
#include "runtime/model/model.h"
#include "training/job_config.h"

namespace meshtrain {

// Which of the tasks that read input this process is: the workers of a
// synchronous strategy and each parameter-server worker (replicas inside a
// worker split its batch). A lone process is worker 0 of 1.
struct InputWorker {
  int num_workers = 1;
  int index = 0;
};

// How the train split was sharded for this process, and why.
struct TrainSharding {
  ShardDecision decision;  // kData: the train split is the whole set
  InputWorker worker;
  int64_t total_files = 0;         // the files data.train_files names (0: not files)
  std::vector<std::string> files;  // kFile: those this worker loaded

  // The start-up log line: "data: auto_shard file (auto: 8 train files for 2
  // input workers): input worker 1 of 2 reads 4 of 8 files (30000 examples):
  // train-00001-of-00008.tfrecord, ...".
  std::string Describe(int64_t train_examples) const;
};

struct JobData {
  Dataset train;
  Dataset test;
  ModelShape shape;  // what the model's ends must be
  TrainSharding sharding;
};

// InvalidArgument from ChooseShardPolicy where data.auto_shard is file and the
// files cannot give every input worker one.
absl::StatusOr<JobData> LoadJobData(const DataConfig& config, uint64_t seed,
                                    InputWorker worker = {});

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_JOB_DATA_H_

// The datasets a job config names, loaded once per process.
#ifndef MESHTRAIN_TRAINING_JOB_DATA_H_
#define MESHTRAIN_TRAINING_JOB_DATA_H_

#include "absl/status/statusor.h"
#include "runtime/data/dataset.h"
#include "runtime/model/model.h"
#include "training/job_config.h"

namespace meshtrain {

struct JobData {
  Dataset train;
  Dataset test;
  ModelShape shape;  // what the model's ends must be
};

absl::StatusOr<JobData> LoadJobData(const DataConfig& config, uint64_t seed);

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_JOB_DATA_H_

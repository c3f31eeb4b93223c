// summary.json: what a finished run reports (docs/architecture.md lists the
// fields). Written by the chief, atomically (a reader never sees half a file).
#ifndef MESHTRAIN_TRAINING_SUMMARY_H_
#define MESHTRAIN_TRAINING_SUMMARY_H_

#include <string>

#include "absl/status/status.h"
#include "nlohmann/json_fwd.hpp"
#include "training/job_config.h"
#include "training/training_loop.h"

namespace meshtrain {

// The fields every strategy reports; the strategy adds its own (Describe).
nlohmann::json MakeSummary(const JobConfig& job, const TrainingReport& report, int num_workers,
                           int num_ps);

// Writes `value` to `path` through a temporary file and a rename.
absl::Status WriteJsonFile(const std::string& path, const nlohmann::json& value);

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_SUMMARY_H_

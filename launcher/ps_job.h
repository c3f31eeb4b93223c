// The launcher's part of a parameter_server job: the options every task
// derives from the job config and the flags. On the chief they become the
// plan the ps tasks and the other workers follow (runtime/ps/ps_bootstrap.h).
#ifndef MESHTRAIN_LAUNCHER_PS_JOB_H_
#define MESHTRAIN_LAUNCHER_PS_JOB_H_

#include "absl/status/statusor.h"
#include "launcher/job_config.h"
#include "launcher/train_flags.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/ps/ps_bootstrap.h"

namespace meshtrain {

// InvalidArgument naming the field when the strategy section makes no sense.
absl::StatusOr<PsJobOptions> MakePsJobOptions(const JobConfig& job, const TrainFlags& flags,
                                              const ClusterConfig& cluster);

}  // namespace meshtrain

#endif  // MESHTRAIN_LAUNCHER_PS_JOB_H_

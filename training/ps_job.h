// The launcher's part of a parameter_server job: the options every task
// derives from the job config and the flags (on the chief they become the
// plan the ps tasks and the other workers follow, runtime/ps/ps_bootstrap.h),
// and a ps task's run across the cluster's recoveries.
#ifndef MESHTRAIN_TRAINING_PS_JOB_H_
#define MESHTRAIN_TRAINING_PS_JOB_H_

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "training/job_config.h"
#include "training/preemption.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/ps/ps_bootstrap.h"
#include "runtime/ps/ps_service.h"
#include "runtime/rpc/mesh.h"

namespace meshtrain {

// InvalidArgument naming the field when the strategy section makes no sense.
// `rpc_layer` is the data path's ("" or "auto": the fastest there is).
absl::StatusOr<PsJobOptions> MakePsJobOptions(const JobConfig& job, const ClusterConfig& cluster,
                                              const std::string& rpc_layer,
                                              absl::Duration startup_timeout);

// A ps task's whole run (docs/fault_tolerance.md, 5.6): serves the mesh's
// generations one after the other until the chief's shutdown request. When a
// generation ends in an error a restart can fix (a task of the cluster died:
// this one's neighbours, the chief, or this task's own previous life) and
// `recovery_timeout` is positive, the task reports the error, rejoins the
// cluster (Mesh::Rejoin, waiting up to `recovery_timeout`) and serves the
// next generation with fresh partitions, which the chief restores from the
// latest checkpoint before any worker pushes.
//
// SIGTERM (`preemption`, may be null): the task asks the chief for a
// checkpoint (kPreemptRequestKey, as a preempted worker does), serves on until
// the chief has saved (the save needs this task's shards) or
// kPreemptionSaveWait has passed, and returns a PreemptedError (exit 75,
// "restart me"); the others then recover as from a dead ps, from that
// checkpoint.
absl::Status RunParameterServerTask(Mesh& mesh, PsService& service, absl::Duration startup_timeout,
                                    absl::Duration recovery_timeout, PreemptionWatcher* preemption);

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_PS_JOB_H_

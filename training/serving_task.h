// RunServingTask: the whole run of a task that trains no model but has a part
// in its strategy (a parameter_server job's ps task, docs/fault_tolerance.md
// 5.6): serves the mesh's generations one after the other until the chief's
// shutdown request. When a generation ends in an error a restart can fix (a
// task of the cluster died: this one's neighbours, the chief, or this task's
// own previous life) and `recovery_timeout` is positive, the task reports the
// error, rejoins the cluster (Mesh::Rejoin, waiting up to `recovery_timeout`)
// and serves the next generation afresh (the chief restores a ps task's
// variables from the latest checkpoint before any worker pushes).
//
// SIGTERM (`preemption`, may be null): the task asks the chief for a
// checkpoint (kPreemptRequestKey, as a preempted worker does), serves on until
// the chief has saved (the save needs this task's state) or
// kPreemptionSaveWait has passed, and returns a PreemptedError (exit 75,
// "restart me"); the others then recover as from a dead task, from that
// checkpoint.
#ifndef MESHTRAIN_TRAINING_SERVING_TASK_H_
#define MESHTRAIN_TRAINING_SERVING_TASK_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/rpc/mesh.h"
#include "strategies/strategy_builder.h"
#include "training/preemption.h"

namespace meshtrain {

absl::Status RunServingTask(Mesh& mesh, StrategyBuilder& strategy, absl::Duration startup_timeout,
                            absl::Duration recovery_timeout, PreemptionWatcher* preemption);

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_SERVING_TASK_H_

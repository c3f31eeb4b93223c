// The files of `--trace FILE`. A lone process writes FILE itself. In a cluster
// every task writes its own part, FILE.<job>-<index>.json, with the task's
// index in ClusterSpec::AllTasks() as its trace pid; `meshtrain launch` (and
// `compare`) then merge the parts into FILE, one process per task on one time
// axis (CLOCK_REALTIME microseconds), and remove them. Pure functions and file
// I/O; thread-compatible.
#ifndef MESHTRAIN_SUMMARIES_TRACE_FILES_H_
#define MESHTRAIN_SUMMARIES_TRACE_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "runtime/cluster/cluster_spec.h"

namespace meshtrain {

// FILE.<job>-<index>.json
std::string TaskTracePath(const std::string& file, const TaskId& task);
// The task's position in cluster.AllTasks() (0 when absent).
int TracePid(const ClusterSpec& cluster, const TaskId& task);

// Merges the parts of every task of `cluster` into `file` and removes them.
// A task without a part (it failed before writing) is left out, and named in
// the merged file's otherData.missing_tasks; no part at all is kNotFound.
absl::Status MergeTaskTraces(const std::string& file, const ClusterSpec& cluster);

}  // namespace meshtrain

#endif  // MESHTRAIN_SUMMARIES_TRACE_FILES_H_

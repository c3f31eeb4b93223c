// Slurm's compressed lists, expanded: hostlists ("node[01-03,7],gpu-[1-2]",
// what SLURM_STEP_NODELIST holds) and tasks-per-node counts ("2(x3),1", what
// SLURM_STEP_TASKS_PER_NODE holds). Order is kept and nothing is deduplicated,
// as Slurm does. Pure functions, thread-safe. Errors are kInvalidArgument
// quoting the (bounded) text and the offending part, without naming the
// variable: the caller prefixes that.
#ifndef MESHTRAIN_RUNTIME_CLUSTER_HOSTLIST_H_
#define MESHTRAIN_RUNTIME_CLUSTER_HOSTLIST_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshtrain {

// The most names one hostlist may expand to: a typo like "n[1-999999999]"
// fails instead of exhausting memory.
inline constexpr int kMaxHostlistHosts = 1 << 20;

// "node[01-03,7],gpu-[1-2]" -> node01 node02 node03 node7 gpu-1 gpu-2.
// A range keeps the width of its lower bound's zero padding ("[08-11]" ->
// 08 09 10 11); several bracket groups in one name expand as a cartesian
// product, leftmost group outermost ("r[1-2]n[1-2]" -> r1n1 r1n2 r2n1 r2n2).
// Commas separate names outside brackets and ranges inside them.
absl::StatusOr<std::vector<std::string>> ExpandHostlist(absl::string_view hostlist);

// "2(x3),1" -> 2 2 2 1: a comma-separated list of counts, each optionally
// repeated "(xN)" times. Every count is at least 1.
absl::StatusOr<std::vector<int>> ExpandTasksPerNode(absl::string_view tasks_per_node);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CLUSTER_HOSTLIST_H_

// A cluster of meshtrain processes on this machine: free ports on 127.0.0.1, one
// TF_CONFIG per task, one process per task. Used by `launch`, `bench` and
// `compare`.
#ifndef MESHTRAIN_LAUNCHER_LOCAL_CLUSTER_H_
#define MESHTRAIN_LAUNCHER_LOCAL_CLUSTER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "launcher/process_group.h"
#include "runtime/cluster/cluster_spec.h"

namespace meshtrain {

struct LocalClusterShape {
  int workers = 2;
  int ps = 0;
  bool chief = false;
  bool evaluator = false;
};

// Picks a free port on 127.0.0.1 for every task. The ports are held until all
// are chosen, so they differ; a process may still take one before the task
// binds it (then that task fails to start, naming the port).
absl::StatusOr<ClusterSpec> MakeLocalCluster(const LocalClusterShape& shape);

// One process per task of `cluster`: `exe args...` with TF_CONFIG naming the task.
// Where the tasks (evaluator aside) are no more than the cores, each is pinned
// to a core of its own, as mpirun binds ranks: the OS then never moves a task
// onto its peer's core mid-collective. `elastic` (docs/fault_tolerance.md
// 5.9, 5.10): the cluster goes on without a worker other than the chief, and
// without a ps while another remains, so such a task's failure does not stop
// the group (it is restarted while it has restarts left, and joins again).
std::vector<ProcessSpec> MakeTaskProcesses(const ClusterSpec& cluster, const std::string& exe,
                                           const std::vector<std::string>& args, int max_restarts,
                                           const std::string& rpc_layer = "", bool elastic = false);

// The path of the running binary (/proc/self/exe).
absl::StatusOr<std::string> SelfExecutable();

}  // namespace meshtrain

#endif  // MESHTRAIN_LAUNCHER_LOCAL_CLUSTER_H_

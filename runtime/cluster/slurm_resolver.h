// The Slurm resolver: a cluster from `srun -n N meshtrain train ...`, read the
// way TensorFlow's SlurmClusterResolver reads it. Each task of a job step knows
// its rank (SLURM_PROCID), the step's size (SLURM_NTASKS), its rank on its node
// (SLURM_LOCALID), the step's nodes (SLURM_STEP_NODELIST, a compressed
// hostlist) and tasks per node (SLURM_STEP_TASKS_PER_NODE, "2(x3),1"). With
// Slurm's default block distribution every task can compute every address
// without talking to the others: node i runs ranks [sum of counts before i,
// + count i), and rank r listens on <its node>:<port base + its local rank>.
// Roles by rank as rank_roles.h says (TensorFlow's order).
// Pure functions of an EnvLookup; thread-safe where the lookup is.
#ifndef MESHTRAIN_RUNTIME_CLUSTER_SLURM_RESOLVER_H_
#define MESHTRAIN_RUNTIME_CLUSTER_SLURM_RESOLVER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/cluster/env_lookup.h"
#include "runtime/cluster/rank_roles.h"

namespace meshtrain {

// TensorFlow's SlurmClusterResolver's default port base.
inline constexpr int kDefaultSlurmPortBase = 8888;

// True for a task of a Slurm job step (srun): SLURM_PROCID and SLURM_STEP_ID
// are both set. The shell of salloc or sbatch sets SLURM_JOB_* but is no task
// of a step, and so is not a Slurm cluster.
bool RunningUnderSlurmStep(const EnvLookup& env);

struct SlurmPlacement {
  int rank = 0;                     // SLURM_PROCID
  int size = 1;                     // SLURM_NTASKS
  int local_rank = 0;               // SLURM_LOCALID
  std::vector<std::string> nodes;   // expanded, in Slurm's order
  std::vector<int> tasks_per_node;  // one count per node
  std::string nodelist_variable;    // which variable gave the nodes
  std::string nodelist;             // its value, compressed
};

// The step's placement, validated: kFailedPrecondition when this is no task
// of a step, kInvalidArgument naming the variable, its value and the fix for a
// malformed value or an inconsistency (SLURM_NTASKS differs from the sum of
// tasks per node, fewer nodes than counts, a local rank that block
// distribution does not give this rank).
absl::StatusOr<SlurmPlacement> SlurmPlacementFromEnvironment(const EnvLookup& env);

struct SlurmOptions {
  int port_base = kDefaultSlurmPortBase;  // --port-base
  RankRoles roles;                        // --ps, --evaluator
};

// Every task's address (block distribution), in rank order. Pure.
absl::StatusOr<std::vector<std::string>> SlurmTaskAddresses(const SlurmPlacement& placement,
                                                            int port_base);

// The cluster of the step, seen from this task. Pure.
absl::StatusOr<ClusterConfig> ClusterConfigFromSlurm(const SlurmPlacement& placement,
                                                     const SlurmOptions& options);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CLUSTER_SLURM_RESOLVER_H_

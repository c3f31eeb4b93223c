// The torchrun-style resolver: a cluster from the variables torchrun and
// Kubeflow's PyTorchJob set (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, and
// LOCAL_RANK where torchrun runs several tasks per host). Only the master's
// address is known in advance, so, as under mpirun, every task first starts
// its gRPC server on a port of its choosing, then the tasks exchange
// "host:port" through rank 0 (rendezvous.h, on MASTER_PORT) before the mesh
// starts. Rank 0 advertises MASTER_ADDR; the others $MESHTRAIN_HOST if set,
// else the address their connection to the master came from (reachable from
// the master's network by construction). Roles by rank as rank_roles.h says.
// TorchrunPlacementFromEnvironment and ClusterConfigFromTorchrunPayloads are
// pure; ClusterConfigFromTorchrun blocks in the exchange. Thread-safe where the
// EnvLookup is.
#ifndef MESHTRAIN_RUNTIME_CLUSTER_TORCHRUN_RESOLVER_H_
#define MESHTRAIN_RUNTIME_CLUSTER_TORCHRUN_RESOLVER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/cluster/env_lookup.h"
#include "runtime/cluster/rank_roles.h"

namespace meshtrain {

struct TorchrunPlacement {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;  // LOCAL_RANK; 0 where unset (PyTorchJob: one task per pod)
  std::string master_addr;
  int master_port = 0;
  // Where rank 0 listens for the exchange: MASTER_PORT, or MASTER_PORT + 1
  // where torchrun's agent keeps its own store on MASTER_PORT
  // (TORCHELASTIC_USE_AGENT_STORE=True; every task sees the same value).
  int rendezvous_port = 0;
};

// kFailedPrecondition unless RANK and WORLD_SIZE are set; kInvalidArgument
// naming the variable, its value and the fix for a bad or missing value.
absl::StatusOr<TorchrunPlacement> TorchrunPlacementFromEnvironment(const EnvLookup& env);

// Pure: the cluster from every rank's payload "<num_ps> <evaluator 0|1>
// <host:port>" in rank order, seen from `rank`. Every rank judges the same
// payloads, so all succeed or all fail alike.
absl::StatusOr<ClusterConfig> ClusterConfigFromTorchrunPayloads(
    absl::Span<const std::string> payloads, int rank);

// Exchanges this task's address (its server already listens on `my_port`)
// through the master, then ClusterConfigFromTorchrunPayloads.
absl::StatusOr<ClusterConfig> ClusterConfigFromTorchrun(const TorchrunPlacement& placement,
                                                        int my_port, const RankRoles& roles,
                                                        absl::Duration timeout,
                                                        const EnvLookup& env);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CLUSTER_TORCHRUN_RESOLVER_H_

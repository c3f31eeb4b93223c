// Which launcher describes this process's cluster, in meshtrain's order of
// precedence: an explicit TF_CONFIG, then a Slurm job step, then an MPI
// launcher (Open MPI, Hydra), then torchrun-style variables (RANK, WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT: torchrun, Kubeflow's PyTorchJob), then one process
// alone. One exception: an MPI launcher whose world size differs from
// SLURM_NTASKS is mpirun inside a Slurm allocation (its daemons are the step's
// tasks), and MPI wins. The choice carries a one-line reason for logs and
// `meshtrain check-config`. Pure function of an EnvLookup.
#ifndef MESHTRAIN_RUNTIME_CLUSTER_CLUSTER_SOURCE_H_
#define MESHTRAIN_RUNTIME_CLUSTER_CLUSTER_SOURCE_H_

#include <string>

#include "absl/strings/string_view.h"
#include "runtime/cluster/env_lookup.h"

namespace meshtrain {

enum class ClusterSource { kTfConfig, kSlurm, kMpi, kTorchrun, kLocal };

absl::string_view ClusterSourceName(ClusterSource source);  // "TF_CONFIG", "Slurm", ...

struct ClusterSourceChoice {
  ClusterSource source = ClusterSource::kLocal;
  // "cluster from Slurm (SLURM_PROCID=2, SLURM_STEP_NODELIST=node[01-02]); TF_CONFIG is not set"
  std::string reason;
};

ClusterSourceChoice ChooseClusterSource(const EnvLookup& env);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CLUSTER_CLUSTER_SOURCE_H_

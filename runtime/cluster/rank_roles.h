// Roles by rank for launchers that start N identical processes and number them
// (Slurm, torchrun/PyTorchJob): which ranks are parameter servers, which the
// evaluator, which workers. The split follows TensorFlow's
// SlurmClusterResolver, which gives consecutive ranks to the jobs in sorted
// name order: evaluator (rank 0 when asked for), then the ps tasks, then the
// workers; worker:0 is the chief (no "chief" job). Pure, thread-safe.
#ifndef MESHTRAIN_RUNTIME_CLUSTER_RANK_ROLES_H_
#define MESHTRAIN_RUNTIME_CLUSTER_RANK_ROLES_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "runtime/cluster/cluster_spec.h"

namespace meshtrain {

struct RankRoles {
  int num_ps = 0;          // --ps N
  bool evaluator = false;  // --evaluator
};

// The cluster whose rank r listens on addresses[r], seen from `rank`. Every
// address must parse and be distinct; at least one worker must remain.
// `source` prefixes errors ("Slurm cluster", "torchrun cluster").
absl::StatusOr<ClusterConfig> ClusterConfigByRank(absl::Span<const std::string> addresses, int rank,
                                                  const RankRoles& roles, absl::string_view source);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CLUSTER_RANK_ROLES_H_

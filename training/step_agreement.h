// AgreeStepsPerEpoch: synchronous workers that read their own files
// (auto_shard file, runtime/data/file_sharding.h) must run the same number of
// steps an epoch, or one would wait in an allreduce that the others never
// join. They agree on the fewest full batches any of them holds:
//   1. each training worker publishes its count in the mesh's key-value store
//      under "data/full_batches/<generation>/<task>" (a recovered cluster's
//      generation never reads a previous life's counts);
//   2. each reads every training worker's count (Mesh::TrainingMembers),
//      waiting until the deadline;
//   3. each takes the minimum: the same number everywhere.
// Called on the training thread, once per life.
#ifndef MESHTRAIN_TRAINING_STEP_AGREEMENT_H_
#define MESHTRAIN_TRAINING_STEP_AGREEMENT_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/rpc/mesh.h"

namespace meshtrain {

// `mesh` null (a lone process): `full_batches`. DeadlineExceeded naming the
// worker whose count did not come; InvalidArgument when some worker holds no
// full batch (it has already failed with the fix itself).
absl::StatusOr<int64_t> AgreeStepsPerEpoch(Mesh* mesh, const ClusterConfig& cluster,
                                           int64_t generation, int64_t full_batches,
                                           absl::Time deadline);

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_STEP_AGREEMENT_H_

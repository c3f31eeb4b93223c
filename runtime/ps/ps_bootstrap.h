// How a parameter-server job starts and ends on the mesh; every task runs its
// part, in this order, once per generation G of the cluster (a recovery starts
// the next one; every key and link name carries G, so nothing of an earlier
// life is read):
//   1. The chief builds the plan (PsPlan) from its model's variables and the
//      job's options over the generation's ps members (Mesh::PsMembers: all ps
//      tasks unless an elastic cluster went on without some; then it also logs
//      which partitions moved), prints the placement, and publishes the plan
//      under the key "ps/g<G>/plan" of the coordination service's key-value
//      store.
//   2. Each member ps task reads the plan, creates and initialises the
//      partitions of its slot (ParameterShards), answers on its PsService
//      from then on, and sets "ps/g<G>/ready/<slot>".
//   3. Each ps task opens a DenseLink to every training worker at once (one
//      thread per worker, which then serves that worker), unless the plan's
//      data path is "grpc". A link named after the worker's incarnation: when
//      a worker dies and restarts alone (its death concerns nobody else), the
//      thread opens a new link for its new incarnation.
//   4. Each worker reads the plan, checks its own model against it, waits for
//      every member ps to be ready, opens its links to them in slot order, and
//      builds its PsClient.
//   5. A worker that finished training leaves (PsClient::Leave, which ends the
//      ps's thread for its link); the ps serves until the chief's shutdown
//      request, then joins its link threads (a link whose worker never left
//      is ended by stopping the shards and aborting the task).
// A checkpoint restore (the chief's PsClient::RestoreShards) comes between 2
// and the first push; the chief publishes the restored step only after it.
// Functions, not objects: the state lives in the Mesh, the PsService and the
// returned client. The loop over generations is the training driver's
// (training/serving_task.h); the strategy builder calls these.
#ifndef MESHTRAIN_RUNTIME_PS_PS_BOOTSTRAP_H_
#define MESHTRAIN_RUNTIME_PS_PS_BOOTSTRAP_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/model/variable.h"
#include "runtime/optim/optimizer.h"
#include "runtime/ps/placement.h"
#include "runtime/ps/ps_client.h"
#include "runtime/ps/ps_plan.h"
#include "runtime/ps/ps_service.h"
#include "runtime/rpc/mesh.h"

namespace meshtrain {

// What the chief needs, besides the model, to build the plan.
struct PsJobOptions {
  PlacementOptions placement;  // num_ps is taken from the cluster
  OptimizerConfig optimizer;
  uint64_t seed = 0;
  UpdateRules rules;  // num_workers is taken from the cluster
  std::string data_path = "auto";
  WireDtype wire_dtype = WireDtype::kFloat32;
  absl::Duration startup_timeout = absl::Minutes(5);
  absl::Duration request_timeout = absl::Minutes(5);
};

// The chief's step 1 (pure): the plan for `specs` on `cluster`, its variables
// placed over `ps_members` (this generation's ps tasks, Mesh::PsMembers; an
// elastic cluster may have gone on without some, docs/fault_tolerance.md 5.10).
absl::StatusOr<PsPlan> BuildPsPlan(const std::vector<VariableSpec>& specs,
                                   const ClusterSpec& cluster,
                                   const std::vector<TaskId>& ps_members,
                                   const PsJobOptions& options);

// Steps 1 (on the chief) and 4, on a training worker.
absl::StatusOr<std::unique_ptr<PsClient>> ConnectToParameterServers(
    Mesh& mesh, const std::vector<VariableSpec>& specs, const PsJobOptions& options);

// Steps 2, 3 and 5 of the mesh's current generation on a ps task whose
// `service` is registered on `mesh`'s server. Returns when the chief requested
// shutdown (OK), the task aborted (the abort's status) or `poll` (if given;
// called about every 100 ms while serving) answered an error (that error),
// with the service deactivated and every link thread joined.
absl::Status ServeParameterServer(Mesh& mesh, PsService& service, absl::Duration startup_timeout,
                                  const std::function<absl::Status()>& poll = nullptr);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_PS_PS_BOOTSTRAP_H_

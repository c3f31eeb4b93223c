// PsPlan: everything the tasks of a parameter-server job must agree on — the
// variables, where each partition lives, how updates are applied and how
// stale gradients are treated. The chief is its one source of truth: it builds
// the plan from its model and the job config and publishes it (as JSON in the
// coordination service's key-value store, ps_bootstrap.h); each ps task creates
// and initialises its own partitions from it (InitializeVariable gives every
// partition its rows of the same initial values, so no values travel), and
// every other worker checks its own model against it. A restarted ps reads the
// same plan again. Value type.
#ifndef MESHTRAIN_RUNTIME_PS_PS_PLAN_H_
#define MESHTRAIN_RUNTIME_PS_PS_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/model/variable.h"
#include "runtime/optim/optimizer.h"
#include "runtime/ps/placement.h"
#include "runtime/transport/wire_codec.h"

namespace meshtrain {

// How a ps treats the gradients it receives (the book's remedies for stale
// gradients, and synchronous training with backup workers).
struct UpdateRules {
  int num_workers = 1;  // training workers (the chief is rank 0)
  // Asynchronous mode. staleness = updates applied to the partition since the
  // worker read it.
  int max_staleness = -1;          // >= 0: drop gradients staler than this
  bool staleness_scaling = false;  // learning rate x 1 / (1 + staleness)
  int64_t warmup_steps = 0;  // until a partition has this many updates, only the chief's count
  // Synchronous mode (> 0): a step's update is the mean of the first
  // sync_replicas gradients computed from the current version; later ones
  // (backup workers, stragglers) are dropped.
  int sync_replicas = 0;

  bool synchronous() const { return sync_replicas > 0; }
};

// InvalidArgument naming the field.
absl::Status ValidateUpdateRules(const UpdateRules& rules);

struct PsPlan {
  std::vector<VariableSpec> specs;  // the model's variables, VariableId order
  Placement placement;
  // The ps task (its index in job "ps") that holds each of the placement's
  // ps slots: 0..num_ps-1 unless an elastic cluster goes on without some ps
  // tasks (docs/fault_tolerance.md 5.10), when the slots are the members'.
  // Empty means 0..num_ps-1 (FromJson always fills it).
  std::vector<int> ps_tasks;
  OptimizerConfig optimizer;
  uint64_t seed = 0;
  UpdateRules rules;
  // How dense tensors travel between workers and ps tasks: "grpc" (the
  // PullDense/PushDense RPCs), or the rpc layer a DenseLink transport is
  // created with ("auto": shared memory on one host, else TCP).
  std::string data_path = "auto";
  // How dense gradients (pushes) and values (pulls) travel, on either path
  // (runtime/transport/wire_codec.h); the ps keeps and updates float32.
  WireDtype wire_dtype = WireDtype::kFloat32;

  std::string ToJson() const;
  // Checks everything it reads (a plan is input from another task).
  static absl::StatusOr<PsPlan> FromJson(absl::string_view json);

  // OK when `specs` (a worker's own model) equal the plan's; otherwise
  // FailedPrecondition naming the first difference.
  absl::Status CheckModel(const std::vector<VariableSpec>& specs) const;
  // The placement slot ps task `ps_task` holds, or -1 when it holds none.
  int SlotOf(int ps_task) const;
  // The ps task (index in job "ps") holding placement slot `slot`.
  int TaskOf(int slot) const;
  // TaskOf of every slot, in slot order (filled in where ps_tasks is empty).
  std::vector<int> Tasks() const;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_PS_PS_PLAN_H_

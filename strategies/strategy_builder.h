// StrategyBuilder: the one place a strategy name becomes objects. A process
// makes one from the job's strategy config before it joins the mesh; the
// builder then
//   1. registers the gRPC services the strategy's tasks serve (a
//      parameter_server job's ps service) on the server before it starts;
//   2. says how the cluster recovers (RecoveryPolicy), which the mesh and the
//      training driver follow;
//   3. runs the part of a task that holds no model (a ps task serving its
//      partitions), one generation of the cluster at a time;
//   4. builds, once per life of the cluster, the Strategy a training task
//      steps with, together with what it needs on the mesh: the ring or NCCL
//      communicator across workers, the connections to the ps tasks.
// Nothing outside strategies/ (but the compare plan, which names the
// strategies it compares) tests a strategy's name.
// Thread-safety: driven by the task's main thread.
#ifndef MESHTRAIN_STRATEGIES_STRATEGY_BUILDER_H_
#define MESHTRAIN_STRATEGIES_STRATEGY_BUILDER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/base/abort_signal.h"
#include "runtime/base/trace.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/optim/optimizer.h"
#include "runtime/ps/ps_service.h"
#include "runtime/rpc/mesh.h"
#include "runtime/rpc/server.h"
#include "strategies/strategy.h"
#include "strategies/strategy_config.h"

namespace meshtrain {

// What one life's strategy is built from. Pointers must outlive the strategy.
struct StrategyContext {
  const ClusterConfig* cluster = nullptr;  // this process's place; never null
  Mesh* mesh = nullptr;                    // null: a lone process
  int64_t generation = 0;                  // the mesh's; names this life's links
  const Optimizer* optimizer = nullptr;
  uint64_t seed = 0;
  int threads = 1;  // CPU threads this process may keep busy
  AbortSignal* abort = nullptr;
  Tracer* tracer = nullptr;  // null unless --trace
  std::string rpc_layer;     // the data path ("" or "auto": the fastest there is)
  absl::Duration startup_timeout = absl::Minutes(5);  // waits for the other tasks
  // This life's training workers (Mesh::TrainingMembers: an elastic cluster
  // may go on without some); empty: every one of the cluster.
  std::vector<TaskId> workers;
};

// The strategy a cluster of this shape runs when the command line names none:
// parameter_server when it has ps tasks, multi_worker_mirrored when it has
// several training workers; "" otherwise (the job config's stands).
std::string DefaultStrategyForCluster(int training_workers, int ps_tasks);

class StrategyBuilder {
 public:
  // Checks the names and the device list (InvalidArgument names the field).
  // `model_dir` (--model-dir; "": none) confines a ps task's checkpoint files.
  static absl::StatusOr<std::unique_ptr<StrategyBuilder>> Create(const StrategyConfig& config,
                                                                 const std::string& model_dir = "");
  ~StrategyBuilder();

  const StrategyConfig& config() const { return config_; }
  RecoveryPolicy recovery_policy() const;

  // Adds the services this strategy's tasks answer on `server` (every task
  // registers them: under mpirun the role is not known before the server
  // starts). The builder must outlive the server.
  void RegisterServices(ServerOptions& server);

  // Whether `task`, which trains no model, has a part in this strategy.
  bool Serves(const TaskId& task) const;
  // That part for the mesh's current generation: returns OK at the chief's
  // shutdown request, the abort's status, or `poll`'s first error (poll may be
  // empty; called about every 100 ms).
  absl::Status Serve(Mesh& mesh, absl::Duration startup_timeout,
                     const std::function<absl::Status()>& poll);

  // A training task's strategy for one life (Build() is the caller's, after
  // the model declared its variables).
  absl::StatusOr<std::unique_ptr<Strategy>> Build(const StrategyContext& context);

 private:
  explicit StrategyBuilder(StrategyConfig config);

  StrategyConfig config_;
  std::unique_ptr<PsService> ps_service_;  // parameter_server only
};

}  // namespace meshtrain

#endif  // MESHTRAIN_STRATEGIES_STRATEGY_BUILDER_H_

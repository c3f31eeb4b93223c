// CreateStrategy: the one place a strategy name becomes a Strategy object.
#ifndef MESHTRAIN_STRATEGIES_STRATEGY_FACTORY_H_
#define MESHTRAIN_STRATEGIES_STRATEGY_FACTORY_H_

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/base/abort_signal.h"
#include "runtime/base/trace.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/collective/communicator.h"
#include "runtime/optim/optimizer.h"
#include "runtime/ps/ps_client.h"
#include "strategies/strategy.h"
#include "strategies/strategy_config.h"

namespace meshtrain {

// What a strategy may use besides its config. Pointers must outlive the strategy.
struct StrategyEnvironment {
  const ClusterConfig* cluster = nullptr;  // this process's place in the cluster
  const Optimizer* optimizer = nullptr;
  uint64_t seed = 0;
  int threads = 1;  // CPU threads this process may keep busy
  AbortSignal* abort = nullptr;
  // multi_worker_mirrored: the collectives across the training workers (this
  // worker's rank and the count come from it), and what it runs on.
  Communicator* cross_worker = nullptr;
  std::string communication;
  // parameter_server: connects this worker to the ps tasks once the model's
  // variables are known (the launcher binds it to the mesh); null without ps tasks.
  std::function<absl::StatusOr<std::unique_ptr<PsClient>>(const std::vector<VariableSpec>& specs)>
      connect_ps;
  int64_t warmup_steps = 0;  // parameter_server: non-chief workers wait this many chief updates
  // Null unless --trace: where replicas record their spans (runtime/base/trace.h).
  Tracer* tracer = nullptr;
};

absl::StatusOr<std::unique_ptr<Strategy>> CreateStrategy(const StrategyConfig& config,
                                                         const StrategyEnvironment& env);

}  // namespace meshtrain

#endif  // MESHTRAIN_STRATEGIES_STRATEGY_FACTORY_H_

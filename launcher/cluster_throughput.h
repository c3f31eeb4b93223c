// Cluster throughput: the samples per second of all training workers
// together. The training loop counts, on each worker, a global batch per step
// over that worker's time — right when the workers step together
// (synchronous strategies), a guess when they do not (parameter_server: each
// worker walks its own shard at its own speed, and one may wait in warm-up or
// straggle). So at the end every training worker publishes the examples it
// trained on and its training time (key "throughput/<task>"), and the chief
// sums the workers' rates. For a synchronous job the sum equals the global
// count; for an asynchronous one it is the only honest figure.
// Functions; the coordination client is borrowed for the call.
#ifndef MESHTRAIN_LAUNCHER_CLUSTER_THROUGHPUT_H_
#define MESHTRAIN_LAUNCHER_CLUSTER_THROUGHPUT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/rpc/coordination_client.h"

namespace meshtrain {

struct WorkerThroughput {
  int64_t examples = 0;
  double train_seconds = 0;
  double samples_per_sec() const { return train_seconds > 0 ? examples / train_seconds : 0.0; }
};

absl::Status PublishThroughput(CoordinationClient& coordination, const TaskId& task,
                               const WorkerThroughput& mine);

// Every worker's figures (waiting for each until `deadline`), by task name.
absl::StatusOr<std::map<std::string, WorkerThroughput>> GatherThroughput(
    CoordinationClient& coordination, const std::vector<TaskId>& workers, absl::Time deadline);

// The sum of the workers' rates.
double ClusterSamplesPerSec(const std::map<std::string, WorkerThroughput>& workers);

}  // namespace meshtrain

#endif  // MESHTRAIN_LAUNCHER_CLUSTER_THROUGHPUT_H_

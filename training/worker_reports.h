// WorkerReport: what every training worker tells the chief when training ends:
// its parameter checksum (summary.json's param_checksums), its peak memory
// (peak_rss_bytes) and its examples and training time (samples_per_sec, the sum
// of every worker's own rate, right whether or not the workers stepped
// together). Each worker publishes its report in the mesh's key-value store
// under "worker_report/<generation>/<task>" (a recovered cluster's generation
// never reads a previous life's); the chief reads every worker's. Called once
// per task, on the training thread.
#ifndef MESHTRAIN_TRAINING_WORKER_REPORTS_H_
#define MESHTRAIN_TRAINING_WORKER_REPORTS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/rpc/mesh.h"

namespace meshtrain {

struct WorkerReport {
  std::string checksum;             // Strategy::ParameterChecksum
  int64_t peak_rss_bytes = 0;       // PeakRssBytes() at the end of training
  int64_t examples = 0;             // examples this worker trained on
  double train_seconds = 0;         // its training time (evaluation excluded)
  int64_t restored_from_step = -1;  // the checkpoint its last life resumed from (-1: none)

  double samples_per_sec() const { return train_seconds > 0 ? examples / train_seconds : 0.0; }
};

// This process's peak resident set size so far (getrusage), in bytes.
int64_t PeakRssBytes();

// Publishes `mine`; on the chief returns the report of every training worker
// of this generation (Mesh::TrainingMembers) by task ("worker:1"), waiting up to `timeout` for
// each; elsewhere (and for a lone process, `mesh` null) only `mine`.
absl::StatusOr<std::map<std::string, WorkerReport>> ExchangeWorkerReports(
    Mesh* mesh, const ClusterConfig& cluster, int64_t generation, const WorkerReport& mine,
    absl::Duration timeout);

// What the cluster trained per second: the sum of the workers' own rates.
double ClusterSamplesPerSec(const std::map<std::string, WorkerReport>& reports);

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_WORKER_REPORTS_H_

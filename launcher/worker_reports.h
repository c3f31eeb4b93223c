// WorkerReport: what every training worker tells the chief when training ends
// (summary.json's param_checksums and peak_rss_bytes). Each worker publishes
// its report in the mesh's key-value store under "worker_report/<task>"; the
// chief reads every worker's. Called once per task, on the training thread.
#ifndef MESHTRAIN_LAUNCHER_WORKER_REPORTS_H_
#define MESHTRAIN_LAUNCHER_WORKER_REPORTS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/rpc/mesh.h"

namespace meshtrain {

struct WorkerReport {
  std::string checksum;        // Strategy::ParameterChecksum
  int64_t peak_rss_bytes = 0;  // PeakRssBytes() at the end of training
};

// This process's peak resident set size so far (getrusage), in bytes.
int64_t PeakRssBytes();

// Publishes `mine`; on the chief returns every training worker's report by task
// ("worker:1"), waiting up to `timeout` for each; elsewhere (and for a lone
// process, `mesh` null) only `mine`.
absl::StatusOr<std::map<std::string, WorkerReport>> ExchangeWorkerReports(
    Mesh* mesh, const ClusterConfig& cluster, const WorkerReport& mine, absl::Duration timeout);

}  // namespace meshtrain

#endif  // MESHTRAIN_LAUNCHER_WORKER_REPORTS_H_

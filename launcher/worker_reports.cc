#include "launcher/worker_reports.h"

#include <sys/resource.h>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/base/status_macros.h"

namespace meshtrain {

int64_t PeakRssBytes() {
  struct rusage usage {};
  if (::getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

absl::StatusOr<std::map<std::string, WorkerReport>> ExchangeWorkerReports(
    Mesh* mesh, const ClusterConfig& cluster, const WorkerReport& mine, absl::Duration timeout) {
  std::map<std::string, WorkerReport> reports;
  reports[cluster.task.ToString()] = mine;
  if (mesh == nullptr) return reports;
  const nlohmann::json value = {{"checksum", mine.checksum}, {"peak_rss_bytes", mine.peak_rss_bytes}};
  MESHTRAIN_RETURN_IF_ERROR(mesh->coordination().KvSet(
      absl::StrCat("worker_report/", cluster.task.ToString()), value.dump()));
  if (!cluster.is_chief()) return reports;
  for (const TaskId& w : cluster.cluster.TrainingWorkers()) {
    const std::string key = absl::StrCat("worker_report/", w.ToString());
    MESHTRAIN_ASSIGN_OR_RETURN(std::string text,
                               mesh->coordination().KvGet(key, absl::Now() + timeout));
    const nlohmann::json theirs = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (theirs.is_discarded() || !theirs.contains("checksum") || !theirs["checksum"].is_string() ||
        !theirs.contains("peak_rss_bytes") || !theirs["peak_rss_bytes"].is_number_integer()) {
      return absl::InternalError(absl::StrCat("the report of ", w.ToString(), " under ", key,
                                              " is malformed: ", text));
    }
    reports[w.ToString()] = {theirs["checksum"].get<std::string>(),
                             theirs["peak_rss_bytes"].get<int64_t>()};
  }
  return reports;
}

}  // namespace meshtrain

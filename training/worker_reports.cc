#include "training/worker_reports.h"

#include <sys/resource.h>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

std::string KeyFor(int64_t generation, const TaskId& task) {
  return absl::StrCat("worker_report/", generation, "/", task.ToString());
}

}  // namespace

int64_t PeakRssBytes() {
  struct rusage usage {};
  if (::getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

absl::StatusOr<std::map<std::string, WorkerReport>> ExchangeWorkerReports(
    Mesh* mesh, const ClusterConfig& cluster, int64_t generation, const WorkerReport& mine,
    absl::Duration timeout) {
  std::map<std::string, WorkerReport> reports;
  reports[cluster.task.ToString()] = mine;
  if (mesh == nullptr) return reports;
  const nlohmann::json value = {{"checksum", mine.checksum},
                                {"peak_rss_bytes", mine.peak_rss_bytes},
                                {"examples", mine.examples},
                                {"train_seconds", mine.train_seconds},
                                {"restored_from_step", mine.restored_from_step}};
  MESHTRAIN_RETURN_IF_ERROR(
      mesh->coordination().KvSet(KeyFor(generation, cluster.task), value.dump()));
  if (!cluster.is_chief()) return reports;
  const absl::Time deadline = absl::Now() + timeout;
  for (const TaskId& w : cluster.cluster.TrainingWorkers()) {
    const std::string key = KeyFor(generation, w);
    MESHTRAIN_ASSIGN_OR_RETURN(std::string text, mesh->coordination().KvGet(key, deadline));
    const nlohmann::json theirs = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (theirs.is_discarded() || !theirs.contains("checksum") || !theirs["checksum"].is_string() ||
        !theirs.contains("peak_rss_bytes") || !theirs["peak_rss_bytes"].is_number_integer() ||
        !theirs.contains("examples") || !theirs["examples"].is_number_integer() ||
        !theirs.contains("train_seconds") || !theirs["train_seconds"].is_number() ||
        !theirs.contains("restored_from_step") || !theirs["restored_from_step"].is_number_integer()) {
      return absl::InternalError(absl::StrCat("the report of ", w.ToString(), " under ", key,
                                              " is malformed: ", text));
    }
    reports[w.ToString()] = {theirs["checksum"].get<std::string>(),
                             theirs["peak_rss_bytes"].get<int64_t>(),
                             theirs["examples"].get<int64_t>(),
                             theirs["train_seconds"].get<double>(),
                             theirs["restored_from_step"].get<int64_t>()};
  }
  return reports;
}

double ClusterSamplesPerSec(const std::map<std::string, WorkerReport>& reports) {
  double total = 0;
  for (const auto& [task, report] : reports) total += report.samples_per_sec();
  return total;
}

}  // namespace meshtrain

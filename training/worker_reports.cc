#include "training/worker_reports.h"

#include <sys/resource.h>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/base/json_reader.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

std::string KeyFor(int64_t generation, const TaskId& task) {
  return absl::StrCat("worker_report/", generation, "/", task.ToString());
}

// A worker's report as it published it; InternalError naming the field otherwise.
absl::StatusOr<WorkerReport> ParseReport(const std::string& text, const TaskId& worker,
                                         const std::string& key) {
  const std::string source = absl::StrCat("the report of ", worker.ToString(), " under ", key);
  const JsonErrorFn error = [&](absl::string_view field, absl::string_view problem) {
    return absl::InternalError(
        absl::StrCat(source, ": ", JsonFieldMessage(field, problem), ": ", text));
  };
  absl::StatusOr<nlohmann::json> theirs = ParseJson(text);
  if (!theirs.ok())
    return absl::InternalError(absl::StrCat(source, ": ", theirs.status().message()));
  JsonReader reader(*theirs, error);
  MESHTRAIN_RETURN_IF_ERROR(reader.CheckObject());
  WorkerReport report;
  MESHTRAIN_RETURN_IF_ERROR(reader.Read("checksum", &report.checksum));
  MESHTRAIN_RETURN_IF_ERROR(reader.Read("peak_rss_bytes", &report.peak_rss_bytes));
  MESHTRAIN_RETURN_IF_ERROR(reader.Read("examples", &report.examples));
  MESHTRAIN_RETURN_IF_ERROR(reader.Read("train_seconds", &report.train_seconds));
  MESHTRAIN_RETURN_IF_ERROR(reader.Read("restored_from_step", &report.restored_from_step));
  return report;
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
  for (const TaskId& w : mesh->TrainingMembers()) {
    const std::string key = KeyFor(generation, w);
    MESHTRAIN_ASSIGN_OR_RETURN(std::string text, mesh->coordination().KvGet(key, deadline));
    MESHTRAIN_ASSIGN_OR_RETURN(reports[w.ToString()], ParseReport(text, w, key));
  }
  return reports;
}

double ClusterSamplesPerSec(const std::map<std::string, WorkerReport>& reports) {
  double total = 0;
  for (const auto& [task, report] : reports) total += report.samples_per_sec();
  return total;
}

}  // namespace meshtrain

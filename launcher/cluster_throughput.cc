#include "launcher/cluster_throughput.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

std::string KeyFor(const TaskId& task) { return absl::StrCat("throughput/", task.ToString()); }

}  // namespace

absl::Status PublishThroughput(CoordinationClient& coordination, const TaskId& task,
                               const WorkerThroughput& mine) {
  return coordination.KvSet(KeyFor(task), absl::StrCat(mine.examples, " ", mine.train_seconds));
}

absl::StatusOr<std::map<std::string, WorkerThroughput>> GatherThroughput(
    CoordinationClient& coordination, const std::vector<TaskId>& workers, absl::Time deadline) {
  std::map<std::string, WorkerThroughput> all;
  for (const TaskId& w : workers) {
    MESHTRAIN_ASSIGN_OR_RETURN(std::string text, coordination.KvGet(KeyFor(w), deadline));
    std::vector<absl::string_view> parts = absl::StrSplit(text, ' ');
    WorkerThroughput t;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &t.examples) ||
        !absl::SimpleAtod(parts[1], &t.train_seconds)) {
      return absl::InternalError(
          absl::StrCat("throughput of ", w.ToString(), ": malformed entry '", text, "'"));
    }
    all[w.ToString()] = t;
  }
  return all;
}

double ClusterSamplesPerSec(const std::map<std::string, WorkerThroughput>& workers) {
  double total = 0;
  for (const auto& [task, t] : workers) total += t.samples_per_sec();
  return total;
}

}  // namespace meshtrain

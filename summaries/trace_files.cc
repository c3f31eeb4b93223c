#include "summaries/trace_files.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/base/atomic_file.h"
#include "runtime/base/json_reader.h"

namespace meshtrain {

std::string TaskTracePath(const std::string& file, const TaskId& task) {
  return absl::StrCat(file, ".", task.job, "-", task.index, ".json");
}

int TracePid(const ClusterSpec& cluster, const TaskId& task) {
  const std::vector<TaskId> tasks = cluster.AllTasks();
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i] == task) return static_cast<int>(i);
  }
  return 0;
}

absl::Status MergeTaskTraces(const std::string& file, const ClusterSpec& cluster) {
  nlohmann::json events = nlohmann::json::array();
  nlohmann::json missing = nlohmann::json::array();
  int64_t dropped = 0;
  std::vector<std::string> parts;
  for (const TaskId& task : cluster.AllTasks()) {
    const std::string part = TaskTracePath(file, task);
    std::ifstream in(part);
    if (!in) {
      missing.push_back(task.ToString());
      continue;
    }
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<nlohmann::json> trace = ParseJson(text.str());
    std::string why = trace.ok() ? "" : std::string(trace.status().message());
    if (trace.ok() && (!trace->is_object() || !trace->contains("traceEvents") ||
                       !(*trace)["traceEvents"].is_array())) {
      why = "it has no \"traceEvents\" array";
    }
    if (!why.empty()) {
      return absl::DataLossError(absl::StrCat("merging traces: ", part, " (", task.ToString(),
                                              ") is not a Chrome trace (", why,
                                              "); was the task killed while writing it?"));
    }
    for (nlohmann::json& e : (*trace)["traceEvents"]) events.push_back(std::move(e));
    if (trace->contains("otherData") && (*trace)["otherData"].contains("dropped_events") &&
        (*trace)["otherData"]["dropped_events"].is_number_integer()) {
      dropped += (*trace)["otherData"]["dropped_events"].get<int64_t>();
    }
    parts.push_back(part);
  }
  if (parts.empty()) {
    return absl::NotFoundError(absl::StrCat("merging traces: no task wrote its part (", file,
                                            ".<task>.json); did every task fail before the end?"));
  }
  nlohmann::json merged = {
      {"traceEvents", std::move(events)},
      {"displayTimeUnit", "ms"},
      {"otherData", {{"dropped_events", dropped}, {"missing_tasks", missing}}}};
  absl::Status status = WriteFileAtomically(file, merged.dump() + "\n");
  if (!status.ok()) return status;
  for (const std::string& part : parts) std::remove(part.c_str());
  return absl::OkStatus();
}

}  // namespace meshtrain

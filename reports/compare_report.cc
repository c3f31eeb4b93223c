#include "reports/compare_report.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "reports/report_format.h"

namespace meshtrain {
namespace {

const nlohmann::json& Null() {
  static const nlohmann::json* const kNull = new nlohmann::json();
  return *kNull;
}

}  // namespace

const nlohmann::json& JsonField(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return Null();
  auto it = object.find(key);
  return it == object.end() ? Null() : *it;
}

double JsonNumber(const nlohmann::json& object, const char* key, double fallback) {
  const nlohmann::json& v = JsonField(object, key);
  return v.is_number() ? v.get<double>() : fallback;
}

std::string JsonString(const nlohmann::json& object, const char* key, const std::string& fallback) {
  const nlohmann::json& v = JsonField(object, key);
  return v.is_string() ? v.get<std::string>() : fallback;
}

nlohmann::json CompareRow(const CompareRun& run) {
  nlohmann::json row;
  row["strategy"] = run.strategy;
  row["status"] = run.ok ? "ok" : "failed";
  row["error"] = run.ok ? nlohmann::json() : nlohmann::json(run.error);
  row["launch"] = {{"description", run.launch}, {"processes", run.processes}};
  row["model_dir"] = run.model_dir;
  row["trace"] = run.trace.empty() ? nlohmann::json() : nlohmann::json(run.trace);
  row["wall_seconds"] = run.wall_seconds;

  int64_t rss_max = 0, rss_total = 0;
  nlohmann::json per_task = nlohmann::json::object();
  for (const auto& [task, bytes] : run.peak_rss_bytes) {
    per_task[task] = bytes;
    rss_max = std::max(rss_max, bytes);
    rss_total += bytes;
  }
  const nlohmann::json& s = run.summary;
  nlohmann::json summary;
  if (s.is_object()) {
    const double sent = JsonNumber(s, "bytes_sent_per_step", 0);
    const double received = JsonNumber(s, "bytes_received_per_step", 0);
    const nlohmann::json& fractions = JsonField(s, "time_fractions");
    summary = {
        {"samples_per_sec", JsonNumber(s, "samples_per_sec", 0)},
        {"wall_seconds", run.wall_seconds},
        {"train_seconds", JsonNumber(s, "train_seconds", 0)},
        {"target_accuracy", JsonField(s, "target_accuracy")},
        {"seconds_to_target", JsonField(s, "seconds_to_target")},
        {"final_test_accuracy", JsonNumber(s, "test_accuracy", 0)},
        {"final_train_loss", JsonNumber(s, "train_loss", 0)},
        {"bytes_sent_per_step", sent},
        {"bytes_received_per_step", received},
        {"bytes_per_step", sent + received},
        {"time_fractions",
         {{"compute", JsonNumber(fractions, "compute", 0)},
          {"communicate", JsonNumber(fractions, "communicate", 0)},
          {"wait", JsonNumber(fractions, "wait", 0)},
          {"input", JsonNumber(fractions, "input", 0)}}},
        {"num_replicas", JsonField(s, "num_replicas")},
        {"num_workers", JsonField(s, "num_workers")},
        {"num_ps", JsonField(s, "num_ps")},
        {"steps", JsonField(s, "final_step")},
        {"epochs", JsonField(s, "epochs")},
    };
  } else {
    summary = nlohmann::json::object();
  }
  summary["peak_rss_bytes"] = {{"max", rss_max}, {"total", rss_total}, {"per_task", per_task}};
  row["summary"] = std::move(summary);
  const nlohmann::json& history = JsonField(s, "history");
  row["curves"] = history.is_array() ? history : nlohmann::json::array();
  return row;
}

nlohmann::json BuildCompareReport(nlohmann::json header, const std::vector<CompareRun>& runs) {
  nlohmann::json report = header.is_object() ? std::move(header) : nlohmann::json::object();
  report["format"] = "meshtrain-compare/1";
  nlohmann::json rows = nlohmann::json::array();
  for (const CompareRun& run : runs) rows.push_back(CompareRow(run));
  report["strategies"] = std::move(rows);
  return report;
}

std::string RenderCompareTable(const nlohmann::json& report) {
  const nlohmann::json& rows = JsonField(report, "strategies");
  const double target = JsonNumber(JsonField(report, "job"), "target_accuracy", 0);
  const std::string to_target = target > 0 ? absl::StrFormat("to %.2f", target) : "to target";
  std::string out = absl::StrFormat("%-22s %10s %8s %8s %8s %11s %8s %6s %6s %6s %9s\n", "strategy",
                                    "samples/s", "wall", to_target, "test acc", "bytes/step",
                                    "compute", "comm", "wait", "input", "peak RSS");
  if (!rows.is_array()) return out;
  for (const nlohmann::json& row : rows) {
    const std::string name = JsonString(row, "strategy", "?");
    if (JsonString(row, "status") != "ok") {
      std::string error = JsonString(row, "error", "failed");
      const size_t nl = error.find('\n');
      if (nl != std::string::npos) error.resize(nl);
      if (error.size() > 96) error = error.substr(0, 93) + "...";
      absl::StrAppend(&out, absl::StrFormat("%-22s failed: %s\n", name, error));
      continue;
    }
    const nlohmann::json& s = JsonField(row, "summary");
    const nlohmann::json& f = JsonField(s, "time_fractions");
    const nlohmann::json& to = JsonField(s, "seconds_to_target");
    absl::StrAppend(
        &out, absl::StrFormat("%-22s %10s %8s %8s %8.4f %11s %8s %6s %6s %6s %9s\n", name,
                              FormatThousands(JsonNumber(s, "samples_per_sec", 0)),
                              FormatSeconds(JsonNumber(s, "wall_seconds", 0)),
                              to.is_number() ? FormatSeconds(to.get<double>()) : "-",
                              JsonNumber(s, "final_test_accuracy", 0),
                              FormatBytes(JsonNumber(s, "bytes_per_step", 0)),
                              FormatPercent(JsonNumber(f, "compute", 0)),
                              FormatPercent(JsonNumber(f, "communicate", 0)),
                              FormatPercent(JsonNumber(f, "wait", 0)),
                              FormatPercent(JsonNumber(f, "input", 0)),
                              FormatBytes(JsonNumber(JsonField(s, "peak_rss_bytes"), "max", 0))));
  }
  return out;
}

}  // namespace meshtrain

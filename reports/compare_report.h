// The compare report's data (docs/compare.md): one CompareRun per strategy,
// assembled into report.json by BuildCompareReport, and printed as a plain-text
// table by RenderCompareTable (report_html.h draws the page). A row holds the
// summary the figures come from (samples/s, wall time, time to the target
// accuracy, final test accuracy, bytes per step, time fractions, peak memory)
// and the per-epoch curves, or the error that stopped the strategy. Pure
// functions over values; thread-safe.
#ifndef MESHTRAIN_REPORTS_COMPARE_REPORT_H_
#define MESHTRAIN_REPORTS_COMPARE_REPORT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace meshtrain {

struct CompareRun {
  std::string strategy;
  std::string launch;  // how it ran: "1 process, 2 replicas (cpu:0,cpu:1)"
  int processes = 1;
  bool ok = false;          // every process exited 0 and the chief wrote summary.json
  std::string error;        // why not, when !ok
  double wall_seconds = 0;  // from starting the processes to the last one's exit
  std::string model_dir;    // relative to the report's directory
  std::string trace;        // relative Chrome trace file, "" if none
  nlohmann::json summary;   // the chief's summary.json (null when there is none)
  std::map<std::string, int64_t> peak_rss_bytes;  // per process (task), from wait4
};

// One element of report.json's "strategies".
nlohmann::json CompareRow(const CompareRun& run);

// `header` (job, machine, settings, command, ...) plus "strategies": the rows
// in run order.
nlohmann::json BuildCompareReport(nlohmann::json header, const std::vector<CompareRun>& runs);

// The table printed at the end of `meshtrain compare`, one line per strategy.
std::string RenderCompareTable(const nlohmann::json& report);

// Safe accessors for report JSON: `fallback` when `object` is not an object,
// lacks `key`, or holds another type there.
double JsonNumber(const nlohmann::json& object, const char* key, double fallback);
std::string JsonString(const nlohmann::json& object, const char* key,
                       const std::string& fallback = "");
const nlohmann::json& JsonField(const nlohmann::json& object, const char* key);  // null if absent

}  // namespace meshtrain

#endif  // MESHTRAIN_REPORTS_COMPARE_REPORT_H_

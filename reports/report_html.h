// The compare report as one self-contained HTML page (report.html): inline CSS
// and SVG charts (svg_chart.h), nothing fetched from the network; one small
// inline script only marks how many chart marks the browser drew.
// It shows the job and the machine, headline cards, test accuracy against wall
// time for every strategy on one chart, samples/s, the compute / communicate /
// wait split of a step, bytes on the wire per step, peak memory, a table of
// every figure, and how to read them. Charts have the ids chart-accuracy,
// chart-throughput, chart-time-split, chart-bytes and chart-memory. Pure;
// thread-safe.
#ifndef MESHTRAIN_REPORTS_REPORT_HTML_H_
#define MESHTRAIN_REPORTS_REPORT_HTML_H_

#include <string>

#include "nlohmann/json.hpp"

namespace meshtrain {

// `report` as BuildCompareReport (compare_report.h) makes it.
std::string RenderCompareHtml(const nlohmann::json& report);

}  // namespace meshtrain

#endif  // MESHTRAIN_REPORTS_REPORT_HTML_H_

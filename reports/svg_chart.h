// SVG charts for the compare report (report_html.h): a line chart and a
// horizontal, optionally stacked, bar chart. Each is one self-contained <svg>
// (no scripts, no external resources) with axes, round-numbered ticks, labels
// and a legend, scaled by its viewBox to the page's width. Data elements carry
// a class and data- attributes (class="series" / "point" / "bar",
// data-series, data-row, data-segment, data-value) so that tests and scripts
// can find them in the DOM. Pure functions; thread-safe.
#ifndef MESHTRAIN_REPORTS_SVG_CHART_H_
#define MESHTRAIN_REPORTS_SVG_CHART_H_

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace meshtrain {

using ValueFormatter = std::function<std::string(double)>;

struct ChartSeries {
  std::string name;
  std::string color;                              // CSS colour
  std::vector<std::pair<double, double>> points;  // (x, y), joined in order
  std::vector<std::string> point_titles;          // tooltips, one per point (optional)
};

struct LineChart {
  std::string id;  // the <svg>'s id and data-chart
  std::string x_label;
  std::string y_label;
  std::vector<ChartSeries> series;
  std::optional<double> reference_y;  // a dashed horizontal line, e.g. a target
  std::string reference_label;
  ValueFormatter format_x;  // tick labels; default: shortest decimal
  ValueFormatter format_y;
  int width = 1100;
  int height = 380;
};

struct BarSegment {
  std::string name;  // data-segment, and the legend entry's name
  double value = 0;
  std::string color;
};

struct BarRow {
  std::string label;
  std::vector<BarSegment> segments;  // stacked left to right
  std::string value_text;            // printed after the bar
  std::string note;                  // printed instead of a bar when there are no segments
};

struct BarChart {
  std::string id;
  std::string x_label;
  std::vector<BarRow> rows;
  std::vector<std::pair<std::string, std::string>> legend;  // (name, colour); empty: none
  double x_max = 0;                                         // 0: from the data
  // Ticks fall on round multiples of this unit (1024 * 1024 for MiB).
  double tick_unit = 1;
  ValueFormatter format_x;  // tick labels and tooltips
  // Print each segment's value (format_x) inside it where it fits.
  bool label_segments = false;
  int width = 540;
  int value_width = 96;  // room right of the plot for value_text
};

std::string RenderLineChart(const LineChart& chart);
std::string RenderBarChart(const BarChart& chart);

// Ticks covering [lo, hi] at a round step (1, 2 or 5 times a power of ten),
// about `target` of them; the first is <= lo and the last >= hi.
std::vector<double> NiceTicks(double lo, double hi, int target);

// Text safe inside XML/HTML elements and attribute values.
std::string XmlEscape(absl::string_view text);

}  // namespace meshtrain

#endif  // MESHTRAIN_REPORTS_SVG_CHART_H_

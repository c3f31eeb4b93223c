#include "reports/svg_chart.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace meshtrain {
namespace {

constexpr char kAxisColor[] = "#6b7280";
constexpr char kGridColor[] = "#e5e7eb";
constexpr char kTextColor[] = "#374151";
constexpr char kFont[] = "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\"";

std::string DefaultFormat(double v) {
  if (std::fabs(v) < 1e-12) return "0";
  return absl::StrFormat("%g", v);
}

std::string Num(double v) { return absl::StrFormat("%.1f", v); }

// Maps [lo, hi] onto [from, to] (either direction).
struct Scale {
  double lo, hi, from, to;
  double operator()(double v) const {
    if (hi == lo) return from;
    return from + (v - lo) / (hi - lo) * (to - from);
  }
};

std::string Text(double x, double y, absl::string_view text, absl::string_view anchor,
                 absl::string_view extra = "") {
  return absl::StrCat("<text x=\"", Num(x), "\" y=\"", Num(y), "\" text-anchor=\"", anchor, "\"",
                      extra.empty() ? "" : " ", extra, ">", XmlEscape(text), "</text>");
}

std::string OpenSvg(absl::string_view id, int width, int height, absl::string_view kind) {
  return absl::StrCat("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"",
                      XmlEscape(id), "\" data-chart=\"", XmlEscape(id), "\" data-kind=\"", kind,
                      "\" viewBox=\"0 0 ", width, " ", height, "\" width=\"100%\" role=\"img\" ",
                      kFont, " font-size=\"13\" fill=\"", kTextColor, "\">");
}

}  // namespace

std::string XmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::vector<double> NiceTicks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0, 1};
  if (hi < lo) std::swap(lo, hi);
  if (hi - lo < 1e-12) {
    const double pad = std::fabs(hi) > 0 ? std::fabs(hi) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / std::max(1, target);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / magnitude;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
  const double first = std::floor(lo / step + 1e-9) * step;
  const double last = std::ceil(hi / step - 1e-9) * step;
  std::vector<double> ticks;
  for (int i = 0; first + i * step <= last + step * 1e-6; ++i) {
    double t = first + i * step;
    if (std::fabs(t) < step * 1e-9) t = 0;  // no "-0"
    ticks.push_back(t);
  }
  return ticks;
}

// Where a line chart draws: the plot area and the scales onto it.
struct LinePlot {
  double left, right, top, bottom;
  Scale sx, sy;
};

void AppendGridAndAxes(const LineChart& chart, const LinePlot& plot, const std::vector<double>& xt,
                       const std::vector<double>& yt, std::string& svg) {
  const ValueFormatter fx = chart.format_x ? chart.format_x : DefaultFormat;
  const ValueFormatter fy = chart.format_y ? chart.format_y : DefaultFormat;
  const auto& [left, right, top, bottom, sx, sy] = plot;
  absl::StrAppend(&svg, "<g class=\"grid\" stroke=\"", kGridColor, "\" stroke-width=\"1\">");
  for (double t : yt) {
    absl::StrAppend(&svg, "<line x1=\"", Num(left), "\" x2=\"", Num(right), "\" y1=\"", Num(sy(t)),
                    "\" y2=\"", Num(sy(t)), "\"/>");
  }
  for (double t : xt) {
    absl::StrAppend(&svg, "<line x1=\"", Num(sx(t)), "\" x2=\"", Num(sx(t)), "\" y1=\"", Num(top),
                    "\" y2=\"", Num(bottom), "\"/>");
  }
  absl::StrAppend(&svg, "</g><g class=\"axis\" stroke=\"", kAxisColor, "\" stroke-width=\"1.2\">",
                  "<line x1=\"", Num(left), "\" x2=\"", Num(right), "\" y1=\"", Num(bottom),
                  "\" y2=\"", Num(bottom), "\"/><line x1=\"", Num(left), "\" x2=\"", Num(left),
                  "\" y1=\"", Num(top), "\" y2=\"", Num(bottom),
                  "\"/></g><g class=\"ticks\" font-size=\"12\" fill=\"", kAxisColor, "\">");
  for (double t : yt) absl::StrAppend(&svg, Text(left - 8, sy(t) + 4, fy(t), "end"));
  for (double t : xt) absl::StrAppend(&svg, Text(sx(t), bottom + 18, fx(t), "middle"));
  absl::StrAppend(&svg, "</g>",
                  Text((left + right) / 2, chart.height - 10.0, chart.x_label, "middle",
                       "font-weight=\"600\""));
  absl::StrAppend(&svg, "<text transform=\"translate(18,", Num((top + bottom) / 2),
                  ") rotate(-90)\" text-anchor=\"middle\" font-weight=\"600\">",
                  XmlEscape(chart.y_label), "</text>");
}

void AppendReference(const LineChart& chart, const LinePlot& plot, std::string& svg) {
  const auto& [left, right, top, bottom, sx, sy] = plot;
  const double y = sy(*chart.reference_y);
  absl::StrAppend(
      &svg, "<g class=\"reference\"><line x1=\"", Num(left), "\" x2=\"", Num(right), "\" y1=\"",
      Num(y), "\" y2=\"", Num(y),
      "\" stroke=\"#dc2626\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>",
      // At the left, where curves start low, the label rarely hides a point.
      Text(left + 6, y - 6, chart.reference_label, "start", "fill=\"#dc2626\" font-size=\"12\""),
      "</g>");
}

// One series' path and points, each point with its title.
void AppendSeries(const ChartSeries& s, const LinePlot& plot, std::string& svg) {
  const Scale& sx = plot.sx;
  const Scale& sy = plot.sy;
  const std::string name = XmlEscape(s.name);
  std::string d;
  for (size_t i = 0; i < s.points.size(); ++i) {
    absl::StrAppend(&d, i == 0 ? "M" : " L", Num(sx(s.points[i].first)), " ",
                    Num(sy(s.points[i].second)));
  }
  absl::StrAppend(&svg, "<g class=\"series-group\" data-series=\"", name, "\">");
  if (!d.empty()) {
    absl::StrAppend(&svg, "<path class=\"series\" data-series=\"", name, "\" d=\"", d,
                    "\" fill=\"none\" stroke=\"", s.color,
                    "\" stroke-width=\"2.5\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>");
  }
  for (size_t i = 0; i < s.points.size(); ++i) {
    absl::StrAppend(&svg, "<circle class=\"point\" data-series=\"", name, "\" data-x=\"",
                    s.points[i].first, "\" data-y=\"", s.points[i].second, "\" cx=\"",
                    Num(sx(s.points[i].first)), "\" cy=\"", Num(sy(s.points[i].second)),
                    "\" r=\"4\" fill=\"", s.color, "\" stroke=\"#fff\" stroke-width=\"1.5\">");
    if (i < s.point_titles.size())
      absl::StrAppend(&svg, "<title>", XmlEscape(s.point_titles[i]), "</title>");
    absl::StrAppend(&svg, "</circle>");
  }
  absl::StrAppend(&svg, "</g>");
}

void AppendLegend(const LineChart& chart, const LinePlot& plot, std::string& svg) {
  const double right = plot.right;
  absl::StrAppend(&svg, "<g class=\"legend\">");
  double ly = plot.top + 10;
  for (const ChartSeries& s : chart.series) {
    absl::StrAppend(&svg, "<line x1=\"", Num(right + 20), "\" x2=\"", Num(right + 44), "\" y1=\"",
                    Num(ly), "\" y2=\"", Num(ly), "\" stroke=\"", s.color,
                    "\" stroke-width=\"2.5\"/>", "<circle cx=\"", Num(right + 32), "\" cy=\"",
                    Num(ly), "\" r=\"4\" fill=\"", s.color, "\"/>",
                    Text(right + 52, ly + 4, s.name, "start"));
    ly += 22;
  }
  absl::StrAppend(&svg, "</g>");
}

std::string RenderLineChart(const LineChart& chart) {
  const double left = 72, right = chart.width - 200.0, top = 16, bottom = chart.height - 52.0;
  std::string svg = OpenSvg(chart.id, chart.width, chart.height, "line");

  double x_hi = 0, y_lo = INFINITY, y_hi = -INFINITY;
  for (const ChartSeries& s : chart.series) {
    for (const auto& [x, y] : s.points) {
      x_hi = std::max(x_hi, x);
      y_lo = std::min(y_lo, y);
      y_hi = std::max(y_hi, y);
    }
  }
  if (chart.reference_y) {
    y_lo = std::min(y_lo, *chart.reference_y);
    y_hi = std::max(y_hi, *chart.reference_y);
  }
  if (!std::isfinite(y_lo)) {
    absl::StrAppend(&svg,
                    Text((left + right) / 2, (top + bottom) / 2, "no data to plot", "middle",
                         "font-style=\"italic\""),
                    "</svg>");
    return svg;
  }
  const double y_pad = std::max(1e-9, (y_hi - y_lo) * 0.06);
  const std::vector<double> xt = NiceTicks(0, x_hi > 0 ? x_hi : 1, 8);
  const std::vector<double> yt = NiceTicks(y_lo - y_pad, y_hi + y_pad, 6);
  const Scale sx{xt.front(), xt.back(), left, right};
  const Scale sy{yt.front(), yt.back(), bottom, top};

  const LinePlot plot{left, right, top, bottom, sx, sy};
  AppendGridAndAxes(chart, plot, xt, yt, svg);
  if (chart.reference_y) AppendReference(chart, plot, svg);
  // The data, then the legend.
  for (const ChartSeries& s : chart.series) AppendSeries(s, plot, svg);
  AppendLegend(chart, plot, svg);
  absl::StrAppend(&svg, "</svg>");
  return svg;
}

namespace {

// One row of a bar chart: its label, its segments from the axis (`sx`) and its
// value text, or its note where it has no segments.
void AppendBarRow(const BarChart& chart, const BarRow& row, const Scale& sx, double y,
                  double bar_height, const ValueFormatter& fx, std::string& svg) {
  const double left = sx(0);
  const std::string label = XmlEscape(row.label);
  absl::StrAppend(&svg, "<g class=\"row\" data-row=\"", label, "\">",
                  Text(left - 10, y + bar_height / 2 + 4.5, row.label, "end"));
  if (row.segments.empty()) {
    absl::StrAppend(&svg,
                    Text(left + 8, y + bar_height / 2 + 4.5, row.note, "start",
                         "font-style=\"italic\" fill=\"#b91c1c\""),
                    "</g>");
    return;
  }
  double x = left;
  for (const BarSegment& s : row.segments) {
    const double w = std::max(0.0, sx(std::max(0.0, s.value)) - left);
    absl::StrAppend(&svg, "<rect class=\"bar\" data-row=\"", label, "\" data-segment=\"",
                    XmlEscape(s.name), "\" data-value=\"", s.value, "\" x=\"", Num(x), "\" y=\"",
                    Num(y), "\" width=\"", Num(w), "\" height=\"", Num(bar_height), "\" fill=\"",
                    s.color, "\"><title>", label, (s.name.empty() ? "" : " · "), XmlEscape(s.name),
                    ": ", XmlEscape(fx(s.value)), "</title></rect>");
    const std::string inside = chart.label_segments ? fx(s.value) : "";
    if (!inside.empty() && w >= 9.0 * static_cast<double>(inside.size()) + 8) {
      absl::StrAppend(&svg, Text(x + w / 2, y + bar_height / 2 + 4.5, inside, "middle",
                                 "fill=\"#fff\" font-size=\"12\" font-weight=\"600\""));
    }
    x += w;
  }
  absl::StrAppend(
      &svg, Text(x + 6, y + bar_height / 2 + 4.5, row.value_text, "start", "font-weight=\"600\""),
      "</g>");
}

}  // namespace

std::string RenderBarChart(const BarChart& chart) {
  const ValueFormatter fx = chart.format_x ? chart.format_x : DefaultFormat;
  const double label_width = 168, value_width = chart.value_width, row_height = 32, bar_height = 18;
  const double legend_height = chart.legend.empty() ? 6 : 30;
  const double left = label_width, right = chart.width - value_width;
  const double top = legend_height + 4;
  const double bottom =
      top + row_height * static_cast<double>(std::max<size_t>(1, chart.rows.size()));
  const int height = static_cast<int>(bottom + 46);
  std::string svg = OpenSvg(chart.id, chart.width, height, "bar");

  double max_sum = 0;
  for (const BarRow& row : chart.rows) {
    double sum = 0;
    for (const BarSegment& s : row.segments) sum += std::max(0.0, s.value);
    max_sum = std::max(max_sum, sum);
  }
  const double unit = chart.tick_unit > 0 ? chart.tick_unit : 1;
  std::vector<double> ticks =
      NiceTicks(0, (chart.x_max > 0 ? chart.x_max : (max_sum > 0 ? max_sum : unit)) / unit, 4);
  for (double& t : ticks) t *= unit;
  const Scale sx{0, chart.x_max > 0 ? chart.x_max : ticks.back(), left, right};

  if (!chart.legend.empty()) {
    absl::StrAppend(&svg, "<g class=\"legend\">");
    double x = left;
    for (const auto& [name, color] : chart.legend) {
      absl::StrAppend(&svg, "<rect x=\"", Num(x),
                      "\" y=\"6\" width=\"12\" height=\"12\" rx=\"2\" fill=\"", color, "\"/>",
                      Text(x + 17, 16.5, name, "start"));
      x += 30 + 7.2 * static_cast<double>(name.size());
    }
    absl::StrAppend(&svg, "</g>");
  }
  absl::StrAppend(&svg, "<g class=\"grid\" stroke=\"", kGridColor, "\">");
  for (double t : ticks) {
    if (t > sx.hi + 1e-9) continue;
    absl::StrAppend(&svg, "<line x1=\"", Num(sx(t)), "\" x2=\"", Num(sx(t)), "\" y1=\"", Num(top),
                    "\" y2=\"", Num(bottom), "\"/>");
  }
  absl::StrAppend(&svg, "</g><g class=\"ticks\" font-size=\"12\" fill=\"", kAxisColor, "\">");
  for (double t : ticks) {
    if (t > sx.hi + 1e-9) continue;
    absl::StrAppend(&svg, Text(sx(t), bottom + 17, fx(t), "middle"));
  }
  absl::StrAppend(
      &svg, "</g><line x1=\"", Num(left), "\" x2=\"", Num(left), "\" y1=\"", Num(top), "\" y2=\"",
      Num(bottom), "\" stroke=\"", kAxisColor, "\" stroke-width=\"1.2\"/>",
      Text((left + right) / 2, height - 8.0, chart.x_label, "middle", "font-weight=\"600\""));

  for (size_t r = 0; r < chart.rows.size(); ++r) {
    const double y = top + row_height * static_cast<double>(r) + (row_height - bar_height) / 2;
    AppendBarRow(chart, chart.rows[r], sx, y, bar_height, fx, svg);
  }
  absl::StrAppend(&svg, "</svg>");
  return svg;
}

}  // namespace meshtrain

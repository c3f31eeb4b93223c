#include "reports/report_html.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "reports/compare_plan.h"
#include "reports/compare_report.h"
#include "reports/report_format.h"
#include "reports/svg_chart.h"

namespace meshtrain {
namespace {

constexpr char kComputeColor[] = "#3b82f6";
constexpr char kCommunicateColor[] = "#f59e0b";
constexpr char kInputColor[] = "#10b981";
constexpr char kWaitColor[] = "#9ca3af";
constexpr char kSentColor[] = "#0ea5e9";
constexpr char kReceivedColor[] = "#6366f1";

constexpr char kStyle[] = R"css(
:root { --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f4f6f9; --card: #ffffff; --bad: #b91c1c; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 24px 40px; }
header h1 { font-size: 26px; margin: 0 0 4px; letter-spacing: -0.01em; }
header h1 em { font-style: normal; color: #2563eb; }
.sub { color: var(--muted); margin: 2px 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 14px; margin: 22px 0; }
.card { background: var(--card); border-radius: 12px; padding: 14px 16px; box-shadow: 0 1px 3px rgba(0,0,0,.08);
        border-top: 4px solid var(--accent, #2563eb); }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .06em; }
.card .value { font-size: 24px; font-weight: 700; margin-top: 2px; }
.card .value .unit { font-size: 14px; font-weight: 600; color: var(--muted); }
.card .who { font-size: 14px; }
.card.bad { border-top-color: var(--bad); }
.card.bad .value { color: var(--bad); }
.panel { background: var(--card); border-radius: 12px; padding: 16px 18px 12px; margin-bottom: 16px;
         box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.panel h2 { font-size: 17px; margin: 0 0 2px; }
.hint { color: var(--muted); font-size: 13px; margin: 0 0 8px; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.grid .panel { margin-bottom: 0; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 7px 7px; border-bottom: 1px solid var(--line); text-align: right; vertical-align: top;
         white-space: nowrap; font-variant-numeric: tabular-nums; }
th { white-space: normal; }
td.how { white-space: normal; min-width: 110px; }
th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .04em;
     border-bottom: 2px solid var(--line); }
th:first-child, td:first-child, td.left, th.left { text-align: left; }
tbody tr:nth-child(even) { background: #f9fafb; }
.links { font-size: 12px; margin-left: 17px; }
.links a { color: #2563eb; text-decoration: none; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 7px; }
td.failed { color: var(--bad); text-align: left; white-space: normal; }
td.failed pre { white-space: pre-wrap; margin: 0; font-size: 12px; }
.notes dt { font-weight: 600; margin-top: 8px; }
.notes dd { margin: 2px 0 0 0; color: #374151; }
code { background: #f3f4f6; padding: 1px 5px; border-radius: 4px; font-size: 12.5px; }
footer { color: var(--muted); font-size: 12.5px; margin-top: 18px; }
.chart { display: block; margin-top: 6px; }
)css";

struct Row {
  const nlohmann::json* json;
  std::string name;
  std::string color;
  bool ok;
  const nlohmann::json* summary;
};

std::string Html(absl::string_view text) { return XmlEscape(text); }

// `value` then, smaller, `unit`.
std::string Card(absl::string_view label, absl::string_view value, absl::string_view unit,
                 absl::string_view who, absl::string_view color, bool bad = false) {
  return absl::StrCat("<div class=\"card", bad ? " bad" : "", "\" style=\"--accent:", color,
                      "\"><div class=\"label\">", Html(label), "</div><div class=\"value\">",
                      Html(value), unit.empty() ? "" : " <span class=\"unit\">", Html(unit),
                      unit.empty() ? "" : "</span>", "</div><div class=\"who\">", who,
                      "</div></div>");
}

std::string Who(const Row& r) {
  return absl::StrCat("<span class=\"dot\" style=\"background:", r.color, "\"></span>",
                      Html(r.name));
}

std::string Cards(const std::vector<Row>& rows, double target) {
  const Row* fastest = nullptr;
  const Row* first_to_target = nullptr;
  const Row* most_accurate = nullptr;
  const Row* leanest = nullptr;
  int failed = 0;
  for (const Row& r : rows) {
    if (!r.ok) {
      ++failed;
      continue;
    }
    const nlohmann::json& s = *r.summary;
    auto better = [&](const Row* best, const char* key, bool larger) {
      if (best == nullptr) return true;
      const double mine = JsonNumber(s, key, 0), theirs = JsonNumber(*best->summary, key, 0);
      return larger ? mine > theirs : mine < theirs;
    };
    if (better(fastest, "samples_per_sec", true)) fastest = &r;
    if (better(most_accurate, "final_test_accuracy", true)) most_accurate = &r;
    const nlohmann::json& to = JsonField(s, "seconds_to_target");
    if (to.is_number() &&
        (first_to_target == nullptr ||
         to.get<double>() < JsonNumber(*first_to_target->summary, "seconds_to_target", 0))) {
      first_to_target = &r;
    }
    const double rss = JsonNumber(JsonField(s, "peak_rss_bytes"), "total", 0);
    if (rss > 0 && (leanest == nullptr ||
                    rss < JsonNumber(JsonField(*leanest->summary, "peak_rss_bytes"), "total", 0))) {
      leanest = &r;
    }
  }
  std::string out = "<section class=\"cards\">";
  if (fastest != nullptr) {
    absl::StrAppend(&out, Card("Highest throughput",
                               FormatShort(JsonNumber(*fastest->summary, "samples_per_sec", 0)),
                               "samples/s", Who(*fastest), fastest->color));
  }
  const std::string target_text = target > 0 ? absl::StrFormat("%g%%", target * 100) : "the target";
  if (first_to_target != nullptr) {
    absl::StrAppend(
        &out, Card(absl::StrCat("First to ", target_text, " test accuracy"),
                   FormatSeconds(JsonNumber(*first_to_target->summary, "seconds_to_target", 0)), "",
                   Who(*first_to_target), first_to_target->color));
  } else if (target > 0) {
    absl::StrAppend(&out, Card(absl::StrCat("First to ", target_text, " test accuracy"),
                               "not reached", "", "no strategy reached it in this run", "#9ca3af"));
  }
  if (most_accurate != nullptr) {
    // Synchronous strategies on the same data and seed often tie exactly.
    const double best = JsonNumber(*most_accurate->summary, "final_test_accuracy", 0);
    int ties = 0;
    for (const Row& r : rows) {
      ties +=
          &r != most_accurate && r.ok && JsonNumber(*r.summary, "final_test_accuracy", -1) == best;
    }
    std::string who = Who(*most_accurate);
    if (ties > 0) absl::StrAppend(&who, " and ", ties, ties == 1 ? " other" : " others");
    absl::StrAppend(
        &out, Card("Best final test accuracy", FormatPercent(best), "", who, most_accurate->color));
  }
  if (leanest != nullptr) {
    absl::StrAppend(
        &out,
        Card("Least memory (all processes)",
             FormatBytes(JsonNumber(JsonField(*leanest->summary, "peak_rss_bytes"), "total", 0)),
             "", Who(*leanest), leanest->color));
  }
  if (failed > 0) {
    std::string names;
    for (const Row& r : rows) {
      if (!r.ok) absl::StrAppend(&names, names.empty() ? "" : ", ", Html(r.name));
    }
    absl::StrAppend(
        &out, Card("Did not finish", absl::StrCat(failed), failed == 1 ? "strategy" : "strategies",
                   absl::StrCat(names, " &mdash; see the table"), "#b91c1c", true));
  }
  absl::StrAppend(&out, "</section>");
  return out;
}

std::string Panel(absl::string_view title, absl::string_view hint, absl::string_view body,
                  bool wide = false) {
  return absl::StrCat("<section class=\"panel", wide ? " wide" : "", "\"><h2>", Html(title),
                      "</h2><p class=\"hint\">", hint, "</p>", body, "</section>");
}

std::string AccuracyChart(const std::vector<Row>& rows, double target) {
  LineChart chart;
  chart.id = "chart-accuracy";
  chart.x_label = "wall time since training began (s)";
  chart.y_label = "test accuracy";
  chart.format_y = [](double v) {
    const double pct = v * 100;
    return std::abs(pct - std::round(pct)) < 1e-6 ? absl::StrFormat("%.0f%%", pct)
                                                  : absl::StrFormat("%.1f%%", pct);
  };
  if (target > 0) {
    chart.reference_y = target;
    chart.reference_label = absl::StrCat("target ", FormatPercent(target));
  }
  for (const Row& r : rows) {
    if (!r.ok) continue;
    ChartSeries series{r.name, r.color, {}, {}};
    const nlohmann::json& curves = JsonField(*r.json, "curves");
    if (!curves.is_array()) continue;
    for (const nlohmann::json& e : curves) {
      const double x = JsonNumber(e, "elapsed_seconds", 0), y = JsonNumber(e, "test_accuracy", 0);
      series.points.push_back({x, y});
      series.point_titles.push_back(absl::StrFormat("%s, epoch %d: %.2f%% at %s", r.name,
                                                    static_cast<int>(JsonNumber(e, "epoch", 0)),
                                                    y * 100, FormatSeconds(x)));
    }
    chart.series.push_back(std::move(series));
  }
  return RenderLineChart(chart);
}

// Ticks at round numbers of the binary unit that suits the largest bar (KiB,
// MiB, ...), which the axis label names; tooltips in bytes.
void SetByteAxis(BarChart& chart) {
  double largest = 0;
  for (const BarRow& row : chart.rows) {
    double sum = 0;
    for (const BarSegment& s : row.segments) sum += s.value;
    largest = std::max(largest, sum);
  }
  static const char* const kUnits[] = {"bytes", "KiB", "MiB", "GiB"};
  int unit = 0;
  while (unit < 3 && largest >= 1024.0 * std::pow(1024.0, unit)) ++unit;
  chart.tick_unit = std::pow(1024.0, unit);
  absl::StrAppend(&chart.x_label, " (", kUnits[unit], ")");
  const double scale = chart.tick_unit;
  chart.format_x = [scale](double v) { return absl::StrFormat("%g", v / scale); };
}

// A bar chart row per strategy; failed strategies get their note instead of a bar.
BarChart BarsPerStrategy(absl::string_view id, absl::string_view x_label,
                         const std::vector<Row>& rows,
                         const std::function<BarRow(const Row&)>& make) {
  BarChart chart;
  chart.id = std::string(id);
  chart.x_label = std::string(x_label);
  for (const Row& r : rows) {
    if (!r.ok) {
      chart.rows.push_back({r.name, {}, "", "did not finish"});
      continue;
    }
    BarRow row = make(r);
    row.label = r.name;
    chart.rows.push_back(std::move(row));
  }
  return chart;
}

std::string ThroughputChart(const std::vector<Row>& rows) {
  // Speed-ups are relative to the baseline where it ran, else to the first row that did.
  double base = 0;
  std::string base_name;
  for (const Row& r : rows) {
    if (r.ok && (base == 0 || r.name == kSpeedupBaseline)) {
      base = JsonNumber(*r.summary, "samples_per_sec", 0);
      base_name = r.name;
      if (r.name == kSpeedupBaseline) break;
    }
  }
  BarChart chart = BarsPerStrategy(
      "chart-throughput", "samples per second (all workers)", rows, [&](const Row& r) {
        const double v = JsonNumber(*r.summary, "samples_per_sec", 0);
        BarRow row;
        row.segments = {{"samples/s", v, r.color}};
        row.value_text =
            base > 0 ? absl::StrFormat("%s  %.2f×", FormatShort(v), v / base) : FormatShort(v);
        return row;
      });
  chart.format_x = [](double v) { return FormatShort(v); };
  return RenderBarChart(chart);
}

std::string TimeSplitChart(const std::vector<Row>& rows) {
  BarChart chart =
      BarsPerStrategy("chart-time-split", "share of the chief's step time", rows, [](const Row& r) {
        const nlohmann::json& f = JsonField(*r.summary, "time_fractions");
        BarRow row;
        row.segments = {{"compute", JsonNumber(f, "compute", 0), kComputeColor},
                        {"communicate", JsonNumber(f, "communicate", 0), kCommunicateColor},
                        {"wait", JsonNumber(f, "wait", 0), kWaitColor},
                        {"input", JsonNumber(f, "input", 0), kInputColor}};
        return row;
      });
  chart.legend = {{"compute", kComputeColor},
                  {"communicate", kCommunicateColor},
                  {"wait for peers", kWaitColor},
                  {"wait for input", kInputColor}};
  chart.x_max = 1;
  chart.format_x = [](double v) { return absl::StrFormat("%.0f%%", v * 100); };
  chart.label_segments = true;
  return RenderBarChart(chart);
}

std::string BytesChart(const std::vector<Row>& rows) {
  BarChart chart =
      BarsPerStrategy("chart-bytes", "bytes per step, chief's process", rows, [](const Row& r) {
        BarRow row;
        const double sent = JsonNumber(*r.summary, "bytes_sent_per_step", 0);
        const double received = JsonNumber(*r.summary, "bytes_received_per_step", 0);
        row.segments = {{"sent", sent, kSentColor}, {"received", received, kReceivedColor}};
        row.value_text = FormatBytes(sent + received);
        return row;
      });
  chart.legend = {{"sent", kSentColor}, {"received", kReceivedColor}};
  SetByteAxis(chart);
  return RenderBarChart(chart);
}

std::string MemoryChart(const std::vector<Row>& rows) {
  BarChart chart = BarsPerStrategy(
      "chart-memory", "peak resident memory, all processes", rows, [](const Row& r) {
        const nlohmann::json& rss = JsonField(*r.summary, "peak_rss_bytes");
        const nlohmann::json& per_task = JsonField(rss, "per_task");
        BarRow row;
        int i = 0;
        // One segment per process, alternating shades of the strategy's colour.
        for (auto it = per_task.begin(); per_task.is_object() && it != per_task.end(); ++it, ++i) {
          row.segments.push_back({it.key(), it->is_number() ? it->get<double>() : 0,
                                  absl::StrCat(r.color, i % 2 == 0 ? "" : "b3")});
        }
        const size_t n = row.segments.size();
        row.value_text =
            n > 1 ? absl::StrCat(FormatBytes(JsonNumber(rss, "total", 0)), " in ", n, " proc.")
                  : FormatBytes(JsonNumber(rss, "total", 0));
        return row;
      });
  SetByteAxis(chart);
  chart.value_width = 150;
  return RenderBarChart(chart);
}

std::string Table(const std::vector<Row>& rows, double target) {
  std::string out = absl::StrCat(
      "<div class=\"table-wrap\"><table id=\"figures\"><thead><tr><th>Strategy</th><th "
      "class=\"left\">How it ran</th>"
      "<th>Samples/s</th><th>Wall time</th><th>Training time</th><th>Time to ",
      target > 0 ? absl::StrFormat("%g%%", target * 100) : "target",
      "</th><th>Final test acc.</th><th>Bytes/step sent · recv.</th><th>Compute</th>"
      "<th>Comm.</th><th>Wait</th><th>Input</th><th>Peak RSS max · total</th>"
      "</tr></thead><tbody>");
  for (const Row& r : rows) {
    const nlohmann::json& row = *r.json;
    std::string outputs =
        absl::StrCat("<a href=\"", Html(JsonString(row, "model_dir")), "/\">model dir</a>");
    const std::string trace = JsonString(row, "trace");
    if (!trace.empty()) absl::StrAppend(&outputs, " · <a href=\"", Html(trace), "\">trace</a>");
    absl::StrAppend(&out, "<tr data-strategy=\"", Html(r.name), "\" data-status=\"",
                    r.ok ? "ok" : "failed", "\"><td>", Who(r), "<div class=\"links\">", outputs,
                    "</div></td><td class=\"left how\">",
                    Html(JsonString(JsonField(row, "launch"), "description")), "</td>");
    if (!r.ok) {
      absl::StrAppend(&out,
                      "<td class=\"failed\" colspan=\"11\"><strong>did not finish</strong> after ",
                      FormatSeconds(JsonNumber(row, "wall_seconds", 0)), "<pre>",
                      Html(JsonString(row, "error", "unknown error")), "</pre></td></tr>");
      continue;
    }
    const nlohmann::json& s = *r.summary;
    const nlohmann::json& f = JsonField(s, "time_fractions");
    const nlohmann::json& to = JsonField(s, "seconds_to_target");
    const nlohmann::json& rss = JsonField(s, "peak_rss_bytes");
    absl::StrAppend(&out, "<td>", FormatThousands(JsonNumber(s, "samples_per_sec", 0)), "</td><td>",
                    FormatSeconds(JsonNumber(s, "wall_seconds", 0)), "</td><td>",
                    FormatSeconds(JsonNumber(s, "train_seconds", 0)), "</td><td>",
                    to.is_number() ? FormatSeconds(to.get<double>()) : "not reached", "</td><td>",
                    FormatPercent(JsonNumber(s, "final_test_accuracy", 0)), "</td><td>",
                    FormatBytes(JsonNumber(s, "bytes_sent_per_step", 0)), " · ",
                    FormatBytes(JsonNumber(s, "bytes_received_per_step", 0)), "</td><td>",
                    FormatPercent(JsonNumber(f, "compute", 0)), "</td><td>",
                    FormatPercent(JsonNumber(f, "communicate", 0)), "</td><td>",
                    FormatPercent(JsonNumber(f, "wait", 0)), "</td><td>",
                    FormatPercent(JsonNumber(f, "input", 0)), "</td><td>",
                    FormatBytes(JsonNumber(rss, "max", 0)), " · ",
                    FormatBytes(JsonNumber(rss, "total", 0)), "</td></tr>");
  }
  absl::StrAppend(&out, "</tbody></table></div>");
  return out;
}

constexpr char kNotes[] = R"html(
<dl>
<dt>Samples/s</dt><dd>Global examples trained per second of training time (evaluation excluded), counted
by the chief: every worker's examples, not one worker's.</dd>
<dt>Wall time and time to target</dt><dd>Wall time runs from starting the strategy's processes to the last
one's exit (start-up, data loading and shutdown included). The accuracy chart and the time to the target
use the chief's clock from the first training step, evaluations included: the first epoch whose test
accuracy reaches the job's <code>training.target_accuracy</code>.</dd>
<dt>Compute, communicate, wait</dt><dd>Each step of the chief's first replica is split into time computing
(forward, backward, optimizer), time communicating that was not hidden behind computation (moving and
summing gradients), and time blocked on a peer (another replica or worker, or a parameter server) that had
not sent its part yet. The three add up to the step: a large <em>wait</em> means someone else is slower
(stragglers, too few cores for the tasks), a large <em>communicate</em> means the data path is the
bottleneck.</dd>
<dt>Bytes per step</dt><dd>Payload bytes the chief's process sent and received per step through its
transports (shared memory, TCP or gRPC). Strategies that run in one process move gradients through memory
and show zero.</dd>
<dt>Peak RSS</dt><dd>The largest resident set of each process, as the kernel reported it when the process
exited; the total adds every process of the strategy.</dd>
<dt>Going deeper</dt><dd><code>tensorboard --logdir DIR</code> shows every strategy's loss and accuracy
curves (each model directory holds its event files); a strategy's <code>trace.json</code> opens in
<a href="https://ui.perfetto.dev">ui.perfetto.dev</a> or <code>chrome://tracing</code> and shows every
task's steps and collectives on one time axis.</dd>
</dl>)html";

// The page's only script, inline: once laid out, each chart records how many
// data marks it has and how many the browser drew with a non-empty box
// (data-marks, data-drawn), so a headless browser's DOM shows that the charts
// rendered. The page reads the same without it.
constexpr char kRenderCheck[] = R"js(
<script>
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    var marks = svg.querySelectorAll(".series, .point, .bar"), drawn = 0;
    marks.forEach(function (m) { var b = m.getBBox(); if (b.width > 0 || b.height > 0) drawn++; });
    svg.setAttribute("data-marks", marks.length);
    svg.setAttribute("data-drawn", drawn);
  });
});
</script>)js";

}  // namespace

std::string RenderCompareHtml(const nlohmann::json& report) {
  const nlohmann::json& job = JsonField(report, "job");
  const nlohmann::json& machine = JsonField(report, "machine");
  const double target = JsonNumber(job, "target_accuracy", 0);
  std::vector<Row> rows;
  const nlohmann::json& strategies = JsonField(report, "strategies");
  if (strategies.is_array()) {
    int index = 0;
    for (const nlohmann::json& row : strategies) {
      const std::string name = JsonString(row, "strategy", "?");
      rows.push_back({&row, name, StrategyColor(name, index++), JsonString(row, "status") == "ok",
                      &JsonField(row, "summary")});
    }
  }
  const std::string job_name = JsonString(job, "name", "job");
  std::string html = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>meshtrain compare: ",
      Html(job_name), "</title><style>", kStyle, "</style></head><body><main>");

  std::string epochs = absl::StrCat(static_cast<int64_t>(JsonNumber(job, "epochs", 0)), " epochs");
  if (JsonNumber(job, "max_steps", 0) > 0) {
    absl::StrAppend(&epochs, " (at most ", static_cast<int64_t>(JsonNumber(job, "max_steps", 0)),
                    " steps)");
  }
  absl::StrAppend(&html, "<header><h1>Distribution strategies compared on <em>", Html(job_name),
                  "</em></h1>", "<p class=\"sub\">", rows.size(),
                  " strategies, run one after the other with the same data, seed ",
                  static_cast<int64_t>(JsonNumber(job, "seed", 0)), " and global batch ",
                  static_cast<int64_t>(JsonNumber(job, "global_batch_size", 0)), " · ",
                  Html(epochs), "</p>", "<p class=\"sub\">Model: ", Html(JsonString(job, "model")),
                  " · optimizer: ", Html(JsonString(job, "optimizer")),
                  " · dataset: ", Html(JsonString(job, "dataset")), "</p>",
                  "<p class=\"sub\">Machine: ", Html(JsonString(machine, "host", "?")), " · ",
                  static_cast<int>(JsonNumber(machine, "cores", 0)), " cores · ",
                  Html(JsonString(machine, "cpu", "?")), " · ",
                  FormatBytes(JsonNumber(machine, "memory_bytes", 0)), " RAM · ",
                  Html(JsonString(machine, "os", "?")), " · load ",
                  absl::StrFormat("%.2f", JsonNumber(machine, "load_average_start", 0)),
                  " at the start, ",
                  absl::StrFormat("%.2f", JsonNumber(machine, "load_average_end", 0)),
                  " at the end · ", Html(JsonString(report, "created")), "</p></header>");
  absl::StrAppend(&html, Cards(rows, target));
  absl::StrAppend(
      &html, Panel("Test accuracy against wall time",
                   "One point per epoch, evaluated by the chief. Further left is faster; higher is "
                   "more accurate. The dashed line is the job's target.",
                   AccuracyChart(rows, target), /*wide=*/true));
  absl::StrAppend(
      &html, "<div class=\"grid\">",
      Panel("Throughput", "Samples per second of training time, and the speed-up over one_device.",
            ThroughputChart(rows)),
      Panel("Where a step's time goes",
            "The chief's step split into computing, communication not hidden behind it, and "
            "waiting for peers.",
            TimeSplitChart(rows)),
      Panel("Bytes on the wire per step", "Payload the chief's process sent and received per step.",
            BytesChart(rows)),
      Panel("Peak memory",
            "Largest resident set of each process, stacked over the strategy's processes.",
            MemoryChart(rows)),
      "</div>");
  absl::StrAppend(&html,
                  Panel("Figures", "Every number above, per strategy.", Table(rows, target), true));
  absl::StrAppend(&html, "<section class=\"panel notes\"><h2>How to read this</h2>", kNotes,
                  "</section>");
  absl::StrAppend(
      &html, "<footer>Written by <code>", Html(JsonString(report, "command")),
      "</code>. The figures are in <code>report.json</code> next to this page.</footer>");
  absl::StrAppend(&html, "</main>", kRenderCheck, "</body></html>\n");
  return html;
}

}  // namespace meshtrain

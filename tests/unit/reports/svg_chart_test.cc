#include "reports/svg_chart.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(NiceTicksTest, RoundStepsCoveringTheRange) {
  EXPECT_EQ(NiceTicks(0, 10, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(NiceTicks(0, 9.3, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  const std::vector<double> acc = NiceTicks(0.8312, 0.8803, 6);
  EXPECT_LE(acc.front(), 0.8312);
  EXPECT_GE(acc.back(), 0.8803);
  EXPECT_NEAR(acc[1] - acc[0], 0.01, 1e-12);
  EXPECT_EQ(NiceTicks(0, 123000, 4), (std::vector<double>{0, 50000, 100000, 150000}));
  // A flat range still gets an axis.
  EXPECT_GE(NiceTicks(5, 5, 4).size(), 2u);
  EXPECT_EQ(NiceTicks(0, 0, 4).front(), -1);
}

TEST(XmlEscapeTest, EscapesMarkup) {
  EXPECT_EQ(XmlEscape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST(LineChartTest, OnePathPerSeriesAndOnePointPerValue) {
  LineChart chart;
  chart.id = "chart-accuracy";
  chart.series = {{"one_device", "#111", {{1, 0.8}, {2, 0.85}, {3, 0.87}}, {"a", "b", "c"}},
                  {"mirrored <x>", "#222", {{0.5, 0.82}, {1.5, 0.86}}, {}}};
  chart.reference_y = 0.87;
  chart.reference_label = "target";
  const std::string svg = RenderLineChart(chart);
  EXPECT_TRUE(absl::StartsWith(svg, "<svg"));
  EXPECT_TRUE(absl::EndsWith(svg, "</svg>"));
  EXPECT_TRUE(absl::StrContains(svg, "id=\"chart-accuracy\""));
  EXPECT_EQ(Count(svg, "class=\"series\""), 2);
  EXPECT_EQ(Count(svg, "class=\"point\""), 5);
  EXPECT_EQ(Count(svg, "data-series=\"mirrored &lt;x&gt;\""), 4);  // group, path, two points
  EXPECT_TRUE(absl::StrContains(svg, "<title>b</title>"));
  EXPECT_TRUE(absl::StrContains(svg, "class=\"reference\""));
  EXPECT_FALSE(absl::StrContains(svg, "mirrored <x>"));
}

TEST(LineChartTest, NoDataSaysSo) {
  LineChart chart;
  chart.id = "empty";
  EXPECT_TRUE(absl::StrContains(RenderLineChart(chart), "no data to plot"));
}

TEST(BarChartTest, StackedSegmentsNotesAndLegend) {
  BarChart chart;
  chart.id = "chart-time-split";
  chart.rows = {{"a", {{"compute", 0.7, "#1"}, {"wait", 0.3, "#2"}}, "70%", ""},
                {"b", {}, "", "did not finish"}};
  chart.legend = {{"compute", "#1"}, {"wait", "#2"}};
  chart.x_max = 1;
  chart.label_segments = true;
  chart.format_x = [](double v) { return std::to_string(static_cast<int>(v * 100)) + "%"; };
  const std::string svg = RenderBarChart(chart);
  EXPECT_EQ(Count(svg, "class=\"bar\""), 2);
  EXPECT_TRUE(absl::StrContains(svg, "data-segment=\"wait\" data-value=\"0.3\""));
  EXPECT_TRUE(absl::StrContains(svg, "did not finish"));
  EXPECT_TRUE(absl::StrContains(svg, "class=\"legend\""));
  EXPECT_TRUE(absl::StrContains(svg, ">70%</text>"));  // a segment's label, inside it
}

TEST(BarChartTest, TicksAtRoundMultiplesOfTheUnit) {
  BarChart chart;
  chart.id = "bytes";
  chart.rows = {{"a", {{"sent", 3.0 * 1024 * 1024, "#1"}}, "3 MiB", ""}};
  chart.tick_unit = 1024 * 1024;
  chart.format_x = [](double v) { return std::to_string(static_cast<int>(v / (1024 * 1024))); };
  const std::string svg = RenderBarChart(chart);
  for (const char* tick : {">0</text>", ">1</text>", ">2</text>", ">3</text>"}) {
    EXPECT_TRUE(absl::StrContains(svg, tick)) << tick;
  }
}

}  // namespace
}  // namespace meshtrain

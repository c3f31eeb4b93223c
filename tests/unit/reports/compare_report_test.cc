#include "reports/compare_report.h"

#include <algorithm>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "reports/compare_plan.h"
#include "reports/report_html.h"

namespace meshtrain {
namespace {

// A summary.json as the chief writes it (the fields the report reads).
nlohmann::json Summary(double samples_per_sec, double accuracy, nlohmann::json to_target) {
  return {
      {"samples_per_sec", samples_per_sec},
      {"train_seconds", 4.5},
      {"test_accuracy", accuracy},
      {"train_loss", 0.31},
      {"target_accuracy", 0.87},
      {"seconds_to_target", to_target},
      {"bytes_sent_per_step", 1066440.0},
      {"bytes_received_per_step", 1066440.0},
      {"time_fractions", {{"compute", 0.7}, {"communicate", 0.1}, {"wait", 0.15}, {"input", 0.05}}},
      {"num_replicas", 2},
      {"final_step", 470},
      {"epochs", 2},
      {"history",
       {{{"epoch", 1}, {"elapsed_seconds", 1.5}, {"test_accuracy", 0.84}},
        {{"epoch", 2}, {"elapsed_seconds", 3.0}, {"test_accuracy", accuracy}}}}};
}

nlohmann::json Header() {
  return {{"job",
           {{"name", "fashion_mnist_mlp"},
            {"epochs", 2},
            {"target_accuracy", 0.87},
            {"seed", 1234},
            {"global_batch_size", 256}}},
          {"machine", {{"host", "vm"}, {"cores", 2}}},
          {"command", "meshtrain compare --out x"},
          {"created", "now"}};
}

std::vector<CompareRun> Runs() {
  CompareRun ok;
  ok.strategy = "multi_worker_mirrored";
  ok.launch = "2 worker processes";
  ok.processes = 2;
  ok.ok = true;
  ok.wall_seconds = 6.25;
  ok.model_dir = "multi_worker_mirrored";
  ok.trace = "multi_worker_mirrored/trace.json";
  ok.summary = Summary(123456, 0.8801, 2.5);
  ok.peak_rss_bytes = {{"worker:0", 100 << 20}, {"worker:1", 120 << 20}};
  CompareRun alone = ok;
  alone.strategy = "one_device";
  alone.processes = 1;
  alone.summary = Summary(100000, 0.86, nullptr);
  alone.peak_rss_bytes = {{"local", 90 << 20}};
  CompareRun failed;
  failed.strategy = "parameter_server";
  failed.launch = "2 workers + 1 ps";
  failed.error = "worker:0 exited with status 1: strategy 'parameter_server' is <unknown>";
  failed.wall_seconds = 0.5;
  return {alone, ok, failed};
}

TEST(CompareReportTest, RowsCarryTheSummaryFiguresAndCurves) {
  const nlohmann::json report = BuildCompareReport(Header(), Runs());
  EXPECT_EQ(report["format"], "meshtrain-compare/1");
  EXPECT_EQ(report["job"]["name"], "fashion_mnist_mlp");
  ASSERT_EQ(report["strategies"].size(), 3u);
  const nlohmann::json& row = report["strategies"][1];
  EXPECT_EQ(row["strategy"], "multi_worker_mirrored");
  EXPECT_EQ(row["status"], "ok");
  EXPECT_TRUE(row["error"].is_null());
  const nlohmann::json& s = row["summary"];
  EXPECT_EQ(s["samples_per_sec"], 123456);
  EXPECT_EQ(s["wall_seconds"], 6.25);
  EXPECT_EQ(s["seconds_to_target"], 2.5);
  EXPECT_EQ(s["final_test_accuracy"], 0.8801);
  EXPECT_EQ(s["bytes_per_step"], 2 * 1066440.0);
  EXPECT_DOUBLE_EQ(s["time_fractions"]["compute"].get<double>() +
                       s["time_fractions"]["communicate"].get<double>() +
                       s["time_fractions"]["wait"].get<double>() +
                       s["time_fractions"]["input"].get<double>(),
                   1.0);
  EXPECT_EQ(s["peak_rss_bytes"]["max"], 120 << 20);
  EXPECT_EQ(s["peak_rss_bytes"]["total"], 220 << 20);
  EXPECT_EQ(s["peak_rss_bytes"]["per_task"]["worker:1"], 120 << 20);
  EXPECT_EQ(row["curves"].size(), 2u);
  EXPECT_TRUE(report["strategies"][0]["summary"]["seconds_to_target"].is_null());
  const nlohmann::json& bad = report["strategies"][2];
  EXPECT_EQ(bad["status"], "failed");
  EXPECT_TRUE(absl::StrContains(bad["error"].get<std::string>(), "parameter_server"));
  EXPECT_TRUE(bad["curves"].empty());
}

TEST(CompareReportTest, TableHasALinePerStrategy) {
  const std::string table = RenderCompareTable(BuildCompareReport(Header(), Runs()));
  EXPECT_TRUE(absl::StrContains(table, "to 0.87")) << table;
  EXPECT_TRUE(absl::StrContains(table, "multi_worker_mirrored     123,456")) << table;
  EXPECT_TRUE(absl::StrContains(table, "2.5 s")) << table;
  EXPECT_TRUE(absl::StrContains(table, "2.0 MiB")) << table;
  EXPECT_TRUE(absl::StrContains(table, "parameter_server       failed: worker:0 exited")) << table;
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 4);
}

TEST(CompareHtmlTest, SelfContainedPageWithEveryChart) {
  const std::string html = RenderCompareHtml(BuildCompareReport(Header(), Runs()));
  EXPECT_TRUE(absl::StartsWith(html, "<!DOCTYPE html>"));
  for (const char* id :
       {"chart-accuracy", "chart-throughput", "chart-time-split", "chart-bytes", "chart-memory"}) {
    EXPECT_TRUE(absl::StrContains(html, absl::StrCat("id=\"", id, "\""))) << id;
  }
  EXPECT_TRUE(absl::StrContains(html, "id=\"figures\""));
  // Nothing to fetch: no scripts, stylesheets or images from elsewhere.
  EXPECT_FALSE(absl::StrContains(html, "<script src"));
  EXPECT_FALSE(absl::StrContains(html, "url("));
  EXPECT_FALSE(absl::StrContains(html, "<link"));
  EXPECT_FALSE(absl::StrContains(html, "src="));
  // Error text from a process is escaped, not markup.
  EXPECT_TRUE(absl::StrContains(html, "is &lt;unknown&gt;"));
  EXPECT_FALSE(absl::StrContains(html, "is <unknown>"));
  // The headline cards pick the right strategies.
  EXPECT_TRUE(absl::StrContains(html, "123k"));
  EXPECT_TRUE(absl::StrContains(html, "Did not finish"));
}

TEST(CompareHtmlTest, StrategiesKeepTheirColours) {
  EXPECT_EQ(StrategyColor("mirrored", 0), StrategyColor("mirrored", 3));
  EXPECT_NE(StrategyColor("mirrored", 0), StrategyColor("one_device", 0));
  EXPECT_NE(StrategyColor("x", 0), StrategyColor("y", 1));
}

}  // namespace
}  // namespace meshtrain

#include "summaries/trace_files.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/base/trace.h"

namespace meshtrain {
namespace {

ClusterSpec TwoWorkersOnePs() {
  return ClusterSpec({{"worker", {"127.0.0.1:1", "127.0.0.1:2"}}, {"ps", {"127.0.0.1:3"}}});
}

std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return nlohmann::json::parse(s.str());
}

TEST(TraceFilesTest, PartNamesAndPids) {
  const ClusterSpec cluster = TwoWorkersOnePs();
  EXPECT_EQ(TaskTracePath("/t/trace.json", TaskId{"worker", 1}), "/t/trace.json.worker-1.json");
  std::set<int> pids;
  for (const TaskId& t : cluster.AllTasks()) pids.insert(TracePid(cluster, t));
  EXPECT_EQ(pids.size(), 3u);
}

TEST(TraceFilesTest, MergesEveryTasksPartOnOneAxisAndRemovesThem) {
  const ClusterSpec cluster = TwoWorkersOnePs();
  const std::string file = FreshDir("trace_merge") + "/trace.json";
  const absl::Time t0 = absl::Now();
  for (const TaskId& task : {TaskId{"worker", 0}, TaskId{"worker", 1}}) {
    Tracer tracer;
    tracer.Record("allreduce", "collective", t0, t0 + absl::Milliseconds(task.index + 1));
    ASSERT_TRUE(
        tracer.WriteChromeJson(TaskTracePath(file, task), TracePid(cluster, task), task.ToString())
            .ok());
  }
  ASSERT_TRUE(MergeTaskTraces(file, cluster).ok());
  const nlohmann::json merged = ReadJson(file);
  std::set<std::string> processes;
  int spans = 0;
  for (const nlohmann::json& e : merged["traceEvents"]) {
    if (e["name"] == "process_name") processes.insert(e["args"]["name"].get<std::string>());
    if (e["ph"] == "X") {
      ++spans;
      EXPECT_EQ(e["ts"].get<int64_t>(), absl::ToUnixMicros(t0));
    }
  }
  EXPECT_EQ(processes, (std::set<std::string>{"worker:0", "worker:1"}));
  EXPECT_EQ(spans, 2);
  EXPECT_EQ(merged["otherData"]["missing_tasks"], nlohmann::json::array({"ps:0"}));
  EXPECT_FALSE(std::filesystem::exists(TaskTracePath(file, TaskId{"worker", 0})));
}

TEST(TraceFilesTest, NoPartsIsNotFoundAndACorruptPartIsDataLoss) {
  const ClusterSpec cluster = TwoWorkersOnePs();
  const std::string file = FreshDir("trace_merge_bad") + "/trace.json";
  EXPECT_EQ(MergeTaskTraces(file, cluster).code(), absl::StatusCode::kNotFound);
  std::ofstream(TaskTracePath(file, TaskId{"worker", 0})) << "{\"traceEvents\": [";
  absl::Status s = MergeTaskTraces(file, cluster);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("worker:0"), absl::string_view::npos) << s;
}

}  // namespace
}  // namespace meshtrain

#include "runtime/base/trace.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace meshtrain {
namespace {

TEST(TracerTest, SpansBecomeCompleteEventsOnTheirThread) {
  Tracer tracer;
  tracer.NameThread("main \"thread\"");
  {
    TraceSpan span(&tracer, "step", "step");
    span.SetArg(0, "step", 41);
    span.SetArg(1, "bytes", 1024);
  }
  std::thread other([&] {
    tracer.NameThread("replica 1");
    TraceSpan span(&tracer, "allreduce", "collective");
  });
  other.join();
  const std::vector<TraceEvent> events = tracer.Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_STREQ(events[0].name, "step");
  EXPECT_EQ(events[0].args[0].value, 41);
  EXPECT_NE(events[0].tid, events[1].tid);
  EXPECT_GE(events[1].start_us, events[0].start_us);

  // The JSON is what Perfetto reads: metadata naming the process and threads,
  // then "X" events with microsecond times.
  const nlohmann::json trace = nlohmann::json::parse(tracer.ToChromeJson(3, "worker:2"));
  const nlohmann::json& list = trace["traceEvents"];
  int names = 0, spans = 0;
  for (const nlohmann::json& e : list) {
    EXPECT_EQ(e["pid"], 3);
    if (e["ph"] == "M") {
      ++names;
      if (e["name"] == "process_name") EXPECT_EQ(e["args"]["name"], "worker:2");
    } else {
      ++spans;
      EXPECT_EQ(e["ph"], "X");
      EXPECT_TRUE(e["ts"].is_number_integer());
      EXPECT_GE(e["dur"].get<int64_t>(), 0);
      if (e["name"] == "step") {
        EXPECT_EQ(e["args"]["step"], 41);
        EXPECT_EQ(e["args"]["bytes"], 1024);
        EXPECT_EQ(e["cat"], "step");
      } else {
        EXPECT_FALSE(e.contains("args"));
      }
    }
  }
  EXPECT_EQ(names, 3);  // the process and two threads (one with quotes in its name)
  EXPECT_EQ(spans, 2);
}

TEST(TracerTest, FullBufferKeepsTheNewestAndCountsTheDropped) {
  Tracer tracer(4);
  const absl::Time t0 = absl::FromUnixMicros(1000);
  for (int i = 0; i < 10; ++i) {
    tracer.Record("e", "c", t0 + absl::Microseconds(i), t0 + absl::Microseconds(i + 1), {"i", i});
  }
  const std::vector<TraceEvent> events = tracer.Events();
  ASSERT_EQ(events.size(), 4u);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(events[k].args[0].value, 6 + k);  // oldest first
  EXPECT_EQ(tracer.dropped(), 6);
  EXPECT_EQ(nlohmann::json::parse(tracer.ToChromeJson(0, "p"))["otherData"]["dropped_events"], 6);
}

TEST(TracerTest, NullTracerRecordsNothing) {
  TraceSpan span(nullptr, "step", "step");  // must not crash or allocate a tracer
  span.SetArg(0, "step", 1);
}

TEST(TracerTest, ConcurrentSpansAreAllKept) {
  Tracer tracer;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) TraceSpan span(&tracer, "x", "y");
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(tracer.Events().size(), 4000u);
  EXPECT_EQ(tracer.dropped(), 0);
}

}  // namespace
}  // namespace meshtrain

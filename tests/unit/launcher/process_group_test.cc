#include "launcher/process_group.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

// Runs `fn` with stdout redirected to a file; returns what was printed.
template <typename Fn>
std::string CaptureStdout(Fn fn) {
  std::fflush(stdout);
  char path[] = "/tmp/meshtrain_pg_XXXXXX";
  int fd = ::mkstemp(path);
  int saved = ::dup(STDOUT_FILENO);
  ::dup2(fd, STDOUT_FILENO);
  fn();
  std::fflush(stdout);
  ::dup2(saved, STDOUT_FILENO);
  ::close(saved);
  ::close(fd);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  ::unlink(path);
  return text.str();
}

ProcessSpec Shell(std::string name, std::string script, int max_restarts = 0) {
  return ProcessSpec{std::move(name), {"/bin/sh", "-c", std::move(script)}, {}, max_restarts, {}};
}

TEST(ProcessGroupTest, PrefixesEveryLineWithItsTask) {
  ProcessGroup group({});
  absl::StatusOr<GroupResult> result;
  std::string out = CaptureStdout([&] {
    result = group.Run(
        {Shell("worker:0", "echo one; printf 'two\\nthree'"), Shell("worker:1", "echo four")});
  });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_THAT(out, HasSubstr("[worker:0] one\n"));
  EXPECT_THAT(out, HasSubstr("[worker:0] two\n"));
  EXPECT_THAT(out, HasSubstr("[worker:0] three\n"));
  EXPECT_THAT(out, HasSubstr("[worker:1] four\n"));
}

TEST(ProcessGroupTest, PassesEnvironment) {
  ProcessGroup group({});
  ProcessSpec spec = Shell("chief:0", "echo \"$TF_CONFIG\"");
  spec.env = {{"TF_CONFIG", "{\"x\":1}"}};
  absl::StatusOr<GroupResult> result;
  std::string out = CaptureStdout([&] { result = group.Run({spec}); });
  ASSERT_TRUE(result.ok());
  EXPECT_THAT(out, HasSubstr("[chief:0] {\"x\":1}"));
}

TEST(ProcessGroupTest, FirstFailureEndsTheGroupWithItsStatus) {
  ProcessGroup group({.grace_period = absl::Seconds(5)});
  // worker:1 would run for a minute; the failure of worker:0 must stop it.
  auto result = group.Run({Shell("worker:0", "exit 3"), Shell("worker:1", "exec sleep 60")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 3);
  EXPECT_EQ(result->first_failure, "worker:0");
  EXPECT_EQ(result->processes[1].exit_code, 128 + SIGTERM);
}

TEST(ProcessGroupTest, RestartsAFailedTaskUpToTheLimit) {
  char dir[] = "/tmp/meshtrain_pg_restart_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string counter = std::string(dir) + "/runs";
  // Fails on its first two runs, succeeds on the third.
  const std::string script = "echo x >> " + counter + "; [ $(wc -l < " + counter + ") -ge 3 ]";
  int restarts_seen = 0;
  ProcessGroup group({.on_restart = [&](const std::string&, int) { ++restarts_seen; }});
  auto result = group.Run({Shell("worker:0", script, /*max_restarts=*/2)});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(result->processes[0].restarts, 2);
  EXPECT_EQ(restarts_seen, 2);

  ::unlink(counter.c_str());
  ProcessGroup strict({});
  auto failed = strict.Run({Shell("worker:0", script, /*max_restarts=*/1)});
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->exit_code, 1);
  EXPECT_EQ(failed->processes[0].restarts, 1);
  ::unlink(counter.c_str());
  ::rmdir(dir);
}

TEST(ProcessGroupTest, KillsAfterTheGracePeriod) {
  char dir[] = "/tmp/meshtrain_pg_grace_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string ready = std::string(dir) + "/ignoring";
  ProcessGroup group({.grace_period = absl::Milliseconds(300)});
  // worker:1 ignores SIGTERM, so only SIGKILL ends it; worker:0 fails only once
  // worker:1 ignores it, so the SIGTERM cannot arrive first.
  auto result = group.Run(
      {Shell("worker:0", "while [ ! -e " + ready + " ]; do sleep 0.01; done; exit 2"),
       Shell("worker:1", "trap '' TERM; touch " + ready + "; while :; do sleep 0.05; done")});
  ::unlink(ready.c_str());
  ::rmdir(dir);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_EQ(result->processes[1].exit_code, 128 + SIGKILL);
}

// A preempted task ("restart me") is restarted even with no restarts left for
// failures; a failure after that still fails the group.
TEST(ProcessGroupTest, ARestartMeExitIsRestartedWithoutUsingMaxRestarts) {
  char dir[] = "/tmp/meshtrain_pg_restart_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string marker = std::string(dir) + "/ran";
  ProcessSpec preempted =
      Shell("worker:0", "if [ -e " + marker + " ]; then exit 0; fi; touch " + marker + "; exit 75");
  preempted.restart_exit_codes = {75};
  ProcessSpec failing = Shell("worker:1", "exit 75");  // not marked: an ordinary failure
  ProcessGroup group({});
  auto result = group.Run({preempted});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(result->processes[0].restarts, 1);
  ProcessGroup second({});  // one Run per group
  auto failed = second.Run({failing});
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->exit_code, 75);
  EXPECT_EQ(failed->processes[0].restarts, 0);
  ::unlink(marker.c_str());
  ::rmdir(dir);
}

// A usage error would only repeat: it ends the group at once, restarts left.
TEST(ProcessGroupTest, AFinalExitIsNeverRestarted) {
  ProcessSpec usage_error = Shell("worker:0", "exit 2", /*max_restarts=*/3);
  usage_error.final_exit_codes = {2};
  int restarts_seen = 0;
  ProcessGroup group({.on_restart = [&](const std::string&, int) { ++restarts_seen; }});
  auto result = group.Run({usage_error});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_EQ(result->first_failure, "worker:0");
  EXPECT_EQ(result->processes[0].restarts, 0);
  EXPECT_EQ(restarts_seen, 0);
  // The same exit without the mark uses up the restarts.
  ProcessGroup plain({});
  auto restarted = plain.Run({Shell("worker:0", "exit 2", /*max_restarts=*/3)});
  ASSERT_TRUE(restarted.ok());
  EXPECT_EQ(restarted->processes[0].restarts, 3);
}

// Once the chief has completed the job, a task that fails is not restarted
// (it would wait for a cluster that is gone): the failure ends the group.
TEST(ProcessGroupTest, NothingIsRestartedAfterTheGroupCompleted) {
  char dir[] = "/tmp/meshtrain_pg_done_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string done = std::string(dir) + "/chief_done";
  ProcessSpec chief = Shell("worker:0", "touch " + done);
  chief.completes_group = true;
  // worker:1 fails only after the chief has exited.
  ProcessSpec late =
      Shell("worker:1", "while [ ! -e " + done + " ]; do sleep 0.01; done; sleep 0.2; exit 3",
            /*max_restarts=*/2);
  ProcessGroup group({.deadline = absl::Now() + absl::Seconds(30)});
  auto result = group.Run({chief, late});
  ::unlink(done.c_str());
  ::rmdir(dir);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 3);
  EXPECT_EQ(result->first_failure, "worker:1");
  EXPECT_EQ(result->processes[1].restarts, 0);
}

TEST(ProcessGroupTest, AnOptionalProcessFailsAlone) {
  ProcessSpec evaluator = Shell("evaluator:0", "exit 3");
  evaluator.optional = true;
  ProcessGroup group({});
  // worker:0 outlives the evaluator's failure and ends the group normally.
  auto result = group.Run({evaluator, Shell("worker:0", "sleep 0.3; exit 0")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_TRUE(result->first_failure.empty());
  EXPECT_EQ(result->processes[0].exit_code, 3);
  EXPECT_EQ(result->processes[1].exit_code, 0);
}

TEST(ProcessGroupTest, MissingProgramIsAnError) {
  ProcessGroup group({});
  auto result = group.Run({ProcessSpec{"worker:0", {"/nonexistent/meshtrain"}, {}, 0, {}}});
  EXPECT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("worker:0"));
}

TEST(ProcessGroupTest, LinesGoToTheCallbackWhenSet) {
  std::vector<std::string> lines;
  ProcessGroupOptions options;
  options.on_line = [&](const std::string& name, absl::string_view line, bool is_stderr) {
    lines.push_back(absl::StrCat(name, is_stderr ? " err: " : " out: ", line));
  };
  ProcessGroup group(std::move(options));
  absl::StatusOr<GroupResult> result;
  std::string out = CaptureStdout([&] {
    result = group.Run({Shell("worker:0", "echo one; echo oops >&2; printf 'no newline'")});
  });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(out, "");  // nothing printed by the group itself
  EXPECT_THAT(lines, ::testing::UnorderedElementsAre("worker:0 out: one", "worker:0 err: oops",
                                                     "worker:0 out: no newline"));
}

TEST(ProcessGroupTest, DeadlineStopsTheGroup) {
  ProcessGroupOptions options;
  options.grace_period = absl::Seconds(5);
  options.deadline = absl::Now() + absl::Milliseconds(200);
  ProcessGroup group(std::move(options));
  const absl::Time start = absl::Now();
  auto result = group.Run({Shell("worker:0", "exec sleep 60")});
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->timed_out);
  EXPECT_NE(result->exit_code, 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(ProcessGroupTest, ReportsEachProcesssPeakMemory) {
  ProcessGroup group({});
  // The second child writes 64 MiB.
  auto result = group.Run(
      {Shell("small", "true"), Shell("large", "exec python3 -c \"b = b'x' * (64 << 20)\"")});
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->processes.size(), 2u);
  EXPECT_GT(result->processes[0].peak_rss_bytes, 0);
  EXPECT_GT(result->processes[1].peak_rss_bytes, int64_t{64} << 20);
}

}  // namespace
}  // namespace meshtrain

// ProcessGroup: the local launcher's supervisor. It starts one child process per
// task, prefixes each line a child prints with its task ("[worker:1] ..."),
// forwards SIGINT/SIGTERM to every child (SIGKILL after a grace period),
// restarts a failed child up to a limit, and reports how the group ended.
//
// Protocol of Run():
//   1. Start every child (posix_spawn, stdout/stderr piped, TF_CONFIG etc. in env).
//   2. Loop on poll(): child output, child exits (pidfds), SIGINT/SIGTERM
//      (a handler writing to a pipe).
//   3. A child exiting 0 is done. A child exiting with one of its
//      restart_exit_codes (a preempted task: "restart me") is restarted, not
//      counted against max_restarts; one exiting with one of its
//      final_exit_codes (a usage error) never is, nor one exiting after a
//      process that completes_group has exited 0. A child exiting otherwise is restarted
//      while it has restarts left; else it is the group's first failure, and
//      the others get SIGTERM, then SIGKILL after the grace period.
//   4. A signal to the launcher is forwarded to every child (same escalation),
//      and so is the deadline's passing.
//   5. Run returns when no child is left: the first failure's status, or 0.
// Not thread-safe; one Run per object.
#ifndef MESHTRAIN_LAUNCHER_PROCESS_GROUP_H_
#define MESHTRAIN_LAUNCHER_PROCESS_GROUP_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace meshtrain {

struct ProcessSpec {
  std::string name;               // "worker:1": the line prefix and in messages
  std::vector<std::string> argv;  // argv[0] is the program path
  std::vector<std::pair<std::string, std::string>> env;  // added to the launcher's environment
  int max_restarts = 0;
  // Pin the process (all its threads) to this core; -1: not pinned.
  int cpu = -1;
  // Exits that end this process's part without failing the group (besides 0).
  std::vector<int> benign_exit_codes;
  // Exits after which the process is always restarted (unless the group is
  // stopping), without using up max_restarts.
  std::vector<int> restart_exit_codes;
  // Exits after which the process is never restarted, restarts left or not:
  // a usage error (status 2) would only repeat.
  std::vector<int> final_exit_codes;
  // Its failure (once out of restarts) is reported but does not stop the
  // group (the evaluator: nothing else depends on it).
  bool optional = false;
  // Its exiting 0 completes the group's work (the chief: it ends training and
  // writes the last checkpoint): from then on no process is restarted, as a
  // restarted one would wait for a cluster that is gone.
  bool completes_group = false;
};

struct ProcessOutcome {
  std::string name;
  int exit_code = 0;  // 128 + signal when killed by a signal
  int restarts = 0;   // all restarts, restart_exit_codes' included
  absl::Duration uptime;
  int64_t peak_rss_bytes = 0;  // largest resident set of any of its incarnations (wait4)
};

struct GroupResult {
  int exit_code = 0;          // 0, or the first failing process's exit code
  std::string first_failure;  // its name, if any
  bool timed_out = false;     // the deadline passed and the group was stopped
  int signal = 0;             // SIGINT/SIGTERM the launcher received and forwarded, if any
  std::vector<ProcessOutcome> processes;
};

struct ProcessGroupOptions {
  absl::Duration grace_period = absl::Seconds(10);  // SIGTERM -> SIGKILL
  bool prefix_output = true;
  // At the deadline every child is stopped (SIGTERM, then SIGKILL after the
  // grace period) and the group fails with timed_out set.
  absl::Time deadline = absl::InfiniteFuture();
  // Called on every restart (name, attempt), e.g. to log or to count.
  std::function<void(const std::string&, int)> on_restart;
  // When set, each complete line a child prints (without its newline) goes
  // here instead of to the launcher's stdout/stderr: (process name, line,
  // whether it came from stderr). Called on Run()'s thread.
  std::function<void(const std::string& name, absl::string_view line, bool is_stderr)> on_line;
};

class ProcessGroup {
 public:
  explicit ProcessGroup(ProcessGroupOptions options) : options_(std::move(options)) {}
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  // Runs `specs` to the end as described above. Fails only if a child cannot be
  // started at all (then nothing is left running).
  absl::StatusOr<GroupResult> Run(const std::vector<ProcessSpec>& specs);

 private:
  ProcessGroupOptions options_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_LAUNCHER_PROCESS_GROUP_H_

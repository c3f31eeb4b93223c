#include "launcher/launch_command.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "launcher/flag_set.h"
#include "launcher/local_cluster.h"
#include "launcher/process_group.h"
#include "launcher/train_flags.h"
#include "runtime/base/logging.h"
#include "summaries/trace_files.h"
#include "training/preemption.h"

namespace meshtrain {
namespace {

constexpr char kUsage[] =
    "meshtrain launch --workers N [--ps M] [--chief] [--evaluator] --config JOB.json "
    "--model-dir DIR [train flags]";
constexpr char kDescription[] =
    "Starts a cluster on this machine: one meshtrain process per task, each with its own\n"
    "TF_CONFIG on a free port of 127.0.0.1. Output lines are prefixed with their task\n"
    "([worker:1]); Ctrl-C and SIGTERM go to every task (SIGKILL after --grace-period);\n"
    "the exit status is that of the first task that failed. Every flag of\n"
    "'meshtrain train' is accepted and passed to each task. Without --strategy, a cluster\n"
    "with ps tasks runs parameter_server and one with several workers\n"
    "multi_worker_mirrored.";

}  // namespace

int RunLaunchCommand(const std::vector<std::string>& args) {
  FlagSet flag_set("launch", kUsage, kDescription);
  int64_t workers = 2, ps = 0, max_restarts = 0;
  bool chief = false, evaluator = false;
  absl::Duration grace = absl::Seconds(10);
  const std::string group = "cluster shape";
  flag_set.AddInt("workers", &workers, "worker tasks", group);
  flag_set.AddInt("ps", &ps, "parameter-server tasks", group);
  flag_set.AddBool("chief", &chief, "add a chief task (else worker 0 is the chief)", group);
  flag_set.AddBool("evaluator", &evaluator, "add an evaluator task", group);
  flag_set.AddInt("max-restarts", &max_restarts,
                  "restart a failed task up to K times (same TF_CONFIG, new incarnation; not after "
                  "exit 2, a usage error)",
                  group);
  flag_set.AddDuration("grace-period", &grace, "SIGTERM to SIGKILL when stopping tasks", group);
  TrainFlags train;
  RegisterTrainFlags(flag_set, train);
  if (std::optional<int> exit = ParseCommandFlags(flag_set, args)) return *exit;
  if (train.config.empty()) {
    std::fprintf(stderr,
                 "meshtrain launch: --config is required (e.g. configs/fashion_mnist_mlp.json)\n");
    return 2;
  }
  if (workers < 0 || ps < 0 || max_restarts < 0 || (workers == 0 && !chief)) {
    std::fprintf(
        stderr,
        "meshtrain launch: need --workers >= 1 (or --chief), --ps >= 0, --max-restarts >= 0\n");
    return 2;
  }
  absl::StatusOr<ClusterSpec> cluster =
      MakeLocalCluster({static_cast<int>(workers), static_cast<int>(ps), chief, evaluator});
  absl::StatusOr<std::string> exe = SelfExecutable();
  if (!cluster.ok() || !exe.ok()) {
    std::fprintf(stderr, "meshtrain launch: %s\n",
                 std::string((cluster.ok() ? exe.status() : cluster.status()).message()).c_str());
    return 1;
  }
  std::vector<std::string> task_args = {"train"};
  const std::vector<std::string> forwarded = flag_set.SetFlagsAsArgs(TrainFlagNames());
  task_args.insert(task_args.end(), forwarded.begin(), forwarded.end());
  if (!flag_set.IsSet("strategy")) {
    const int training = static_cast<int>(workers) + (chief ? 1 : 0);
    if (ps > 0) {
      task_args.push_back("--strategy=parameter_server");
    } else if (training > 1) {
      task_args.push_back("--strategy=multi_worker_mirrored");
    }
  }
  MESHTRAIN_LOG(INFO) << "launching " << cluster->AllTasks().size() << " tasks: "
                      << absl::StrJoin(cluster->AllTasks(), ", ",
                                       [](std::string* out, const TaskId& t) {
                                         absl::StrAppend(out, t.ToString());
                                       });
  ProcessGroup processes({.grace_period = grace});
  std::vector<ProcessSpec> specs =
      MakeTaskProcesses(*cluster, *exe, task_args, static_cast<int>(max_restarts));
  absl::StatusOr<GroupResult> result = processes.Run(specs);
  if (!result.ok()) {
    std::fprintf(stderr, "meshtrain launch: %s\n", std::string(result.status().message()).c_str());
    return 1;
  }
  if (!train.task.trace.empty()) {
    absl::Status merged = MergeTaskTraces(train.task.trace, *cluster);
    if (merged.ok()) {
      MESHTRAIN_LOG(INFO) << "trace of every task written to " << train.task.trace;
    } else {
      MESHTRAIN_LOG(WARNING) << merged;
    }
  }
  // Stopped by a signal and every task checkpointed and asked to be restarted
  // (or had finished): the launcher asks the same of whatever started it.
  const bool all_preempted =
      std::all_of(result->processes.begin(), result->processes.end(), [](const ProcessOutcome& p) {
        return p.exit_code == 0 || p.exit_code == kPreemptedExitCode;
      });
  if (result->first_failure.empty() && result->exit_code > 128 && all_preempted) {
    std::fprintf(stderr,
                 "meshtrain launch: stopped by a signal; every task checkpointed: exiting with "
                 "status %d (restart me)\n",
                 kPreemptedExitCode);
    return kPreemptedExitCode;
  }
  if (result->exit_code != 0) {
    std::fprintf(stderr, "meshtrain launch: %s exited with status %d\n",
                 result->first_failure.empty() ? "the cluster" : result->first_failure.c_str(),
                 result->exit_code);
  }
  return result->exit_code;
}

}  // namespace meshtrain

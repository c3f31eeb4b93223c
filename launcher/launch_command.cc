#include "launcher/launch_command.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "launcher/flag_set.h"
#include "launcher/local_cluster.h"
#include "launcher/process_group.h"
#include "launcher/train_flags.h"
#include "runtime/base/file_system.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/cluster/tf_config.h"
#include "strategies/strategy_builder.h"
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

struct LaunchFlags {
  int64_t workers = 2;
  int64_t ps = 0;
  int64_t max_restarts = 0;
  bool chief = false;
  bool evaluator = false;
  absl::Duration grace = absl::Seconds(10);
  std::string join;  // a task to add to the running cluster of --model-dir
  TrainFlags train;
};

void RegisterLaunchFlags(FlagSet& flag_set, LaunchFlags& v) {
  const std::string group = "cluster shape";
  flag_set.AddInt("workers", &v.workers, "worker tasks", group);
  flag_set.AddInt("ps", &v.ps, "parameter-server tasks", group);
  flag_set.AddBool("chief", &v.chief, "add a chief task (else worker 0 is the chief)", group);
  flag_set.AddBool("evaluator", &v.evaluator, "add an evaluator task", group);
  flag_set.AddInt("max-restarts", &v.max_restarts,
                  "restart a failed task up to K times (same TF_CONFIG, new incarnation; not after "
                  "exit 2, a usage error)",
                  group);
  flag_set.AddDuration("grace-period", &v.grace, "SIGTERM to SIGKILL when stopping tasks", group);
  flag_set.AddString("join", &v.join,
                     "TASK (worker:2): start only this task, in the running elastic cluster that "
                     "another `meshtrain launch --model-dir DIR` started (its DIR/cluster.json); "
                     "it joins at the next generation",
                     group);
  RegisterTrainFlags(flag_set, v.train);
}

// The usage error in the flags, if any.
std::optional<std::string> CheckLaunchFlags(const LaunchFlags& v) {
  if (v.train.config.empty()) return "--config is required (e.g. configs/fashion_mnist_mlp.json)";
  if (v.workers < 0 || v.ps < 0 || v.max_restarts < 0 || (v.workers == 0 && !v.chief)) {
    return "need --workers >= 1 (or --chief), --ps >= 0, --max-restarts >= 0";
  }
  if (!v.join.empty() && v.train.task.model_dir.empty()) {
    return "--join needs the --model-dir of the running cluster (its cluster.json)";
  }
  return std::nullopt;
}

// `meshtrain train` and the train flags set on the launcher's command line,
// with the cluster's default strategy unless one was named.
std::vector<std::string> TaskArgs(const FlagSet& flag_set, const LaunchFlags& v) {
  std::vector<std::string> args = {"train"};
  const std::vector<std::string> forwarded = flag_set.SetFlagsAsArgs(TrainFlagNames());
  args.insert(args.end(), forwarded.begin(), forwarded.end());
  const std::string strategy = DefaultStrategyForCluster(
      static_cast<int>(v.workers) + (v.chief ? 1 : 0), static_cast<int>(v.ps));
  if (!flag_set.IsSet("strategy") && !strategy.empty()) args.push_back("--strategy=" + strategy);
  return args;
}

constexpr char kClusterFile[] = "cluster.json";

// The cluster a launch with --model-dir `dir` started (its TF_CONFIG's cluster).
absl::StatusOr<ClusterSpec> ReadRunningCluster(const std::string& dir) {
  const std::string path = JoinPath(dir, kClusterFile);
  absl::StatusOr<std::string> text = DefaultFileSystem().ReadFile(path);
  if (!text.ok()) {
    return absl::NotFoundError(absl::StrCat("--join: cannot read ", path, " (",
                                            text.status().message(),
                                            "); start the cluster with `meshtrain launch "
                                            "--model-dir ",
                                            dir, "` first"));
  }
  absl::StatusOr<ClusterConfig> config = ParseTfConfig(*text);
  if (!config.ok()) {
    return absl::DataLossError(absl::StrCat(
        "--join: ", path, " is not a launch's cluster file: ", config.status().message()));
  }
  return config->cluster;
}

// Writes the cluster where `launch --join` finds it (a TF_CONFIG naming the chief).
absl::Status WriteClusterFile(const ClusterSpec& cluster, const std::string& dir) {
  ClusterConfig config;
  config.cluster = cluster;
  config.task = cluster.Chief();
  MESHTRAIN_RETURN_IF_ERROR(DefaultFileSystem().CreateDir(dir));
  const std::string text = ToTfConfigJson(config);
  return WriteFileAtomically(DefaultFileSystem(), JoinPath(dir, kClusterFile), {text});
}

// What this launch starts: with --join only that task; else every task but
// the training workers past elastic.initial_workers (they join later).
absl::StatusOr<std::vector<ProcessSpec>> ChooseProcesses(const ClusterSpec& cluster,
                                                         std::vector<ProcessSpec> all,
                                                         const LaunchFlags& flags,
                                                         const ElasticConfig& elastic) {
  std::vector<std::string> skipped;
  if (!flags.join.empty()) {
    for (const TaskId& t : cluster.AllTasks()) {
      if (t.ToString() != flags.join) skipped.push_back(t.ToString());
    }
    if (skipped.size() == all.size()) {
      return absl::InvalidArgumentError(absl::StrCat("--join ", flags.join,
                                                     ": the running cluster has no such task; "
                                                     "name one of its tasks, e.g. worker:1"));
    }
  } else {
    const std::vector<TaskId> workers = cluster.TrainingWorkers();
    if (elastic.enabled && elastic.initial_workers > 0) {
      for (size_t i = elastic.initial_workers; i < workers.size(); ++i) {
        skipped.push_back(workers[i].ToString());
      }
    }
    if (!flags.train.task.model_dir.empty()) {
      MESHTRAIN_RETURN_IF_ERROR(WriteClusterFile(cluster, flags.train.task.model_dir));
    }
  }
  std::erase_if(all, [&](const ProcessSpec& p) {
    return std::find(skipped.begin(), skipped.end(), p.name) != skipped.end();
  });
  // A joining task is this launch's whole group: its failure is the launch's.
  if (!flags.join.empty()) all.front().optional = false;
  if (flags.join.empty() && !skipped.empty()) {
    MESHTRAIN_LOG(INFO) << "elastic: " << absl::StrJoin(skipped, ", ")
                        << " not started: each joins later with `meshtrain launch --join TASK "
                           "--model-dir DIR` and the same flags";
  }
  return all;
}

// The launcher's exit status for how the group ended.
int ExitStatus(const GroupResult& result) {
  // Stopped by a signal and every task checkpointed and asked to be restarted
  // (or had finished): the launcher asks the same of whatever started it.
  const bool all_preempted =
      std::all_of(result.processes.begin(), result.processes.end(), [](const ProcessOutcome& p) {
        return p.exit_code == 0 || p.exit_code == kPreemptedExitCode;
      });
  if (result.first_failure.empty() && result.exit_code > 128 && all_preempted) {
    std::fprintf(stderr,
                 "meshtrain launch: stopped by a signal; every task checkpointed: exiting with "
                 "status %d (restart me)\n",
                 kPreemptedExitCode);
    return kPreemptedExitCode;
  }
  if (result.exit_code != 0) {
    std::fprintf(stderr, "meshtrain launch: %s exited with status %d\n",
                 result.first_failure.empty() ? "the cluster" : result.first_failure.c_str(),
                 result.exit_code);
  }
  return result.exit_code;
}

}  // namespace

int RunLaunchCommand(const std::vector<std::string>& args) {
  FlagSet flag_set("launch", kUsage, kDescription);
  LaunchFlags flags;
  RegisterLaunchFlags(flag_set, flags);
  if (std::optional<int> exit = ParseCommandFlags(flag_set, args)) return *exit;
  if (std::optional<std::string> usage = CheckLaunchFlags(flags)) {
    std::fprintf(stderr, "meshtrain launch: %s\n", usage->c_str());
    return kUsageExitCode;
  }
  absl::StatusOr<ClusterSpec> cluster =
      flags.join.empty()
          ? MakeLocalCluster({static_cast<int>(flags.workers), static_cast<int>(flags.ps),
                              flags.chief, flags.evaluator})
          : ReadRunningCluster(flags.train.task.model_dir);
  absl::StatusOr<std::string> exe = SelfExecutable();
  if (!cluster.ok() || !exe.ok()) {
    std::fprintf(stderr, "meshtrain launch: %s\n",
                 std::string((cluster.ok() ? exe.status() : cluster.status()).message()).c_str());
    return 1;
  }
  MESHTRAIN_LOG(INFO) << "launching " << cluster->AllTasks().size() << " tasks: "
                      << absl::StrJoin(cluster->AllTasks(), ", ",
                                       [](std::string* out, const TaskId& t) {
                                         absl::StrAppend(out, t.ToString());
                                       });
  // The job's elastic setting (its config or the flags): the tasks check it.
  const absl::StatusOr<JobConfig> job = LoadJobWithOverrides(flag_set, flags.train);
  const bool elastic = job.ok() && job->elastic.enabled;
  absl::StatusOr<std::vector<ProcessSpec>> specs =
      ChooseProcesses(*cluster,
                      MakeTaskProcesses(*cluster, *exe, TaskArgs(flag_set, flags),
                                        static_cast<int>(flags.max_restarts),
                                        /*rpc_layer=*/"", elastic),
                      flags, job.ok() ? job->elastic : ElasticConfig{});
  if (!specs.ok()) {
    std::fprintf(stderr, "meshtrain launch: %s\n", std::string(specs.status().message()).c_str());
    return kUsageExitCode;
  }
  ProcessGroup processes({.grace_period = flags.grace});
  absl::StatusOr<GroupResult> result = processes.Run(*std::move(specs));
  if (!result.ok()) {
    std::fprintf(stderr, "meshtrain launch: %s\n", std::string(result.status().message()).c_str());
    return 1;
  }
  if (!flags.train.task.trace.empty()) {
    absl::Status merged = MergeTaskTraces(flags.train.task.trace, *cluster);
    if (merged.ok()) {
      MESHTRAIN_LOG(INFO) << "trace of every task written to " << flags.train.task.trace;
    } else {
      MESHTRAIN_LOG(WARNING) << merged;
    }
  }
  return ExitStatus(*result);
}

}  // namespace meshtrain

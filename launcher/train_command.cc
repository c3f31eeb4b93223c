#include "launcher/train_command.h"

#include <cstdio>

#include "launcher/flag_set.h"
#include "launcher/train_flags.h"
#include "runtime/base/logging.h"
#include "training/preemption.h"
#include "training/train_task.h"

namespace meshtrain {
namespace {

constexpr char kTrainUsage[] = "meshtrain train --config JOB.json [--model-dir DIR] [flags]";
constexpr char kTrainDescription[] =
    "Runs this process's task of a training job. With TF_CONFIG it joins the cluster as the\n"
    "task TF_CONFIG names; else as a task of a Slurm step (srun), of mpirun, or of a\n"
    "torchrun-style job (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), in that order; else it\n"
    "trains alone. `meshtrain check-config` says which and why.\n"
    "Flags override single fields of the job config.";

}  // namespace

int RunTrainCommand(const std::vector<std::string>& args) {
  const absl::Time process_start = absl::Now();
  FlagSet flag_set("train", kTrainUsage, kTrainDescription);
  TrainFlags flags;
  RegisterTrainFlags(flag_set, flags);
  RegisterClusterEngineFlags(flag_set, flags.task);
  if (std::optional<int> exit = ParseCommandFlags(flag_set, args)) return *exit;
  if (flags.quiet) SetMinLogSeverity(LogSeverity::kWarning);
  absl::StatusOr<JobConfig> job = LoadJobWithOverrides(flag_set, flags);
  if (!job.ok()) {
    std::fprintf(stderr, "meshtrain train: %s\n", std::string(job.status().message()).c_str());
    return kUsageExitCode;
  }
  absl::StatusOr<std::unique_ptr<PreemptionWatcher>> preemption = PreemptionWatcher::Start();
  if (!preemption.ok()) {
    MESHTRAIN_LOG(ERROR) << preemption.status();
    return 1;
  }
  flags.task.job_label = flags.config;
  absl::Status status = RunTrainingTask(*job, flags.task, preemption->get(), process_start);
  if (IsPreempted(status)) {
    MESHTRAIN_LOG(WARNING) << status.message() << "; exiting with status " << kPreemptedExitCode
                           << " (restart me)";
    return kPreemptedExitCode;
  }
  if (!status.ok()) {
    MESHTRAIN_LOG(ERROR) << status;
    return 1;
  }
  return 0;
}

}  // namespace meshtrain

#include "launcher/train_command.h"

#include <cstdio>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "launcher/flag_set.h"
#include "launcher/job_data.h"
#include "launcher/summary.h"
#include "launcher/train_flags.h"
#include "launcher/training_loop.h"
#include "nlohmann/json.hpp"
#include "runtime/base/abort_signal.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/model/model.h"
#include "runtime/optim/optimizer.h"
#include "strategies/strategy_factory.h"

namespace meshtrain {
namespace {

constexpr char kTrainUsage[] = "meshtrain train --config JOB.json [--model-dir DIR] [flags]";
constexpr char kTrainDescription[] =
    "Runs this process's task of a training job. Without TF_CONFIG (and outside mpirun) it\n"
    "trains alone; with TF_CONFIG it joins the cluster as the task TF_CONFIG names.\n"
    "Flags override single fields of the job config.";

void PrintEpoch(const EpochRecord& e, int64_t total_epochs, bool evaluated) {
  std::string test = evaluated ? absl::StrFormat("  test_loss %.4f  test_acc %.4f", e.test_loss,
                                                 e.test_accuracy)
                               : "";
  std::printf("epoch %lld/%lld  loss %.4f  acc %.4f%s  %.0f samples/s  %.2fs (elapsed %.1fs)\n",
              static_cast<long long>(e.epoch), static_cast<long long>(total_epochs), e.train_loss,
              e.train_accuracy, test.c_str(), e.samples_per_sec, e.train_seconds,
              e.elapsed_seconds);
  std::fflush(stdout);
}

int ThreadsFor(const TrainFlags& flags) {
  if (flags.threads > 0) return static_cast<int>(flags.threads);
  return std::max(1u, std::thread::hardware_concurrency());
}

absl::Status TrainWorker(const JobConfig& job, const TrainFlags& flags,
                         const ClusterConfig& cluster) {
  MESHTRAIN_ASSIGN_OR_RETURN(JobData data, LoadJobData(job.data, job.training.seed));
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Optimizer> optimizer, Optimizer::Create(job.optimizer));
  AbortSignal abort;
  StrategyEnvironment env;
  env.cluster = &cluster;
  env.optimizer = optimizer.get();
  env.seed = job.training.seed;
  env.threads = ThreadsFor(flags);
  env.abort = &abort;
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Strategy> strategy, CreateStrategy(job.strategy, env));
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Model> model,
                             CreateModel(job.model, data.shape, *strategy));
  MESHTRAIN_RETURN_IF_ERROR(strategy->Build());

  const bool chief = cluster.is_chief();
  TrainingOptions options;
  options.epochs = job.training.epochs;
  options.max_steps = job.training.max_steps;
  options.global_batch_size = job.training.global_batch_size;
  options.seed = job.training.seed;
  options.shuffle = job.data.shuffle;
  options.drop_remainder = job.data.drop_remainder;
  options.evaluate = chief;
  options.target_accuracy = job.training.target_accuracy;
  options.prefetch_depth = static_cast<int>(flags.prefetch);
  if (chief) {
    options.on_epoch = [&](const EpochRecord& e) { PrintEpoch(e, job.training.epochs, true); };
    options.on_progress = [](int64_t epoch, int64_t step, int64_t steps, double loss) {
      std::printf("  epoch %lld: step %lld/%lld  loss %.4f\n", static_cast<long long>(epoch),
                  static_cast<long long>(step), static_cast<long long>(steps), loss);
      std::fflush(stdout);
    };
  }
  MESHTRAIN_LOG(INFO) << "training " << (job.name.empty() ? flags.config : job.name) << " ("
                      << model->name() << ", " << strategy->name() << ", "
                      << strategy->num_replicas_in_sync() << " replica(s), global batch "
                      << job.training.global_batch_size << ", " << env.threads << " thread(s))";
  MESHTRAIN_ASSIGN_OR_RETURN(TrainingReport report,
                             RunTraining(*strategy, *model, data.train, &data.test, options));
  if (chief) {
    std::printf("done: %lld steps, test accuracy %.4f, %.0f samples/s, %.1fs\n",
                static_cast<long long>(report.final_step), report.test_accuracy,
                report.samples_per_sec, report.wall_seconds);
    std::fflush(stdout);
  }
  if (chief && !flags.model_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(flags.model_dir, ec);
    if (ec) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot create --model-dir ", flags.model_dir, ": ", ec.message()));
    }
    nlohmann::json summary = MakeSummary(job, report, cluster.cluster.num_training_workers(),
                                         cluster.cluster.num_tasks(kPsJob));
    summary["strategy"] = strategy->name();
    summary["threads"] = env.threads;
    strategy->Describe(summary);
    MESHTRAIN_ASSIGN_OR_RETURN(std::string checksum, strategy->ParameterChecksum());
    summary["param_checksums"] = {{cluster.task.ToString(), checksum}};
    MESHTRAIN_RETURN_IF_ERROR(WriteJsonFile(flags.model_dir + "/summary.json", summary));
  }
  return absl::OkStatus();
}

}  // namespace

int RunTrainCommand(const std::vector<std::string>& args) {
  FlagSet flag_set("train", kTrainUsage, kTrainDescription);
  TrainFlags flags;
  RegisterTrainFlags(flag_set, flags);
  absl::StatusOr<std::vector<std::string>> rest = flag_set.Parse(args);
  if (!rest.ok()) {
    std::fprintf(stderr, "meshtrain train: %s\n", std::string(rest.status().message()).c_str());
    return 2;
  }
  if (flag_set.help_requested()) {
    std::fputs(flag_set.Help().c_str(), stdout);
    return 0;
  }
  if (!rest->empty()) {
    std::fprintf(stderr, "meshtrain train: unexpected argument '%s'; see meshtrain train --help\n",
                 (*rest)[0].c_str());
    return 2;
  }
  if (flags.quiet) SetMinLogSeverity(LogSeverity::kWarning);
  absl::StatusOr<JobConfig> job = LoadJobWithOverrides(flag_set, flags);
  if (!job.ok()) {
    std::fprintf(stderr, "meshtrain train: %s\n", std::string(job.status().message()).c_str());
    return 2;
  }
  const ClusterConfig cluster = ClusterConfig::Local();
  absl::Status status = TrainWorker(*job, flags, cluster);
  if (!status.ok()) {
    std::fprintf(stderr, "meshtrain train: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace meshtrain

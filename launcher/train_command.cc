#include "launcher/train_command.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "training/binary_metrics.h"
#include "training/evaluator.h"
#include "summaries/event_writer.h"
#include "launcher/flag_set.h"
#include "training/gpu_setup.h"
#include "training/job_data.h"
#include "training/preemption.h"
#include "training/ps_job.h"
#include "training/resilient_training.h"
#include "training/summary.h"
#include "training/tensorboard_observer.h"
#include "summaries/trace_files.h"
#include "launcher/train_flags.h"
#include "training/training_loop.h"
#include "training/worker_reports.h"
#include "nlohmann/json.hpp"
#include "runtime/base/abort_signal.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/trace.h"
#include "runtime/cluster/address.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/cluster/mpi_resolver.h"
#include "runtime/checkpoint/fault_injection_file_system.h"
#include "runtime/cluster/tf_config.h"
#include "runtime/model/model.h"
#include "runtime/optim/optimizer.h"
#include "runtime/ps/ps_bootstrap.h"
#include "runtime/ps/ps_service.h"
#include "runtime/rpc/fast_data_paths.h"
#include "runtime/rpc/mesh.h"

namespace meshtrain {
namespace {

constexpr char kTrainUsage[] = "meshtrain train --config JOB.json [--model-dir DIR] [flags]";
constexpr char kTrainDescription[] =
    "Runs this process's task of a training job. Without TF_CONFIG (and outside mpirun) it\n"
    "trains alone; with TF_CONFIG it joins the cluster as the task TF_CONFIG names; under\n"
    "mpirun (no TF_CONFIG) rank 0 is the chief and ranks exchange addresses through MPI.\n"
    "Flags override single fields of the job config.";

void PrintEpoch(const EpochRecord& e, int64_t total_epochs) {
  std::printf("epoch %lld/%lld  loss %.4f  acc %.4f  test_loss %.4f  test_acc %.4f  "
              "%.0f samples/s  %.2fs (elapsed %.1fs)\n",
              static_cast<long long>(e.epoch), static_cast<long long>(total_epochs), e.train_loss,
              e.train_accuracy, e.test_loss, e.test_accuracy, e.samples_per_sec, e.train_seconds,
              e.elapsed_seconds);
  std::fflush(stdout);
}

int CoresFor(const TrainFlags& flags, const ClusterConfig& cluster) {
  if (flags.threads > 0) return static_cast<int>(flags.threads);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (cluster.is_local()) return cores;
  // Tasks sharing this host share its cores; a task cannot know how many share
  // it, so count the cluster's tasks with this task's host.
  absl::StatusOr<HostPort> mine = ParseHostPort(cluster.cluster.address(cluster.task));
  int here = 0;
  for (const TaskId& t : cluster.cluster.AllTasks()) {
    if (t.job == kEvaluatorJob) continue;
    absl::StatusOr<HostPort> other = ParseHostPort(cluster.cluster.address(t));
    here += mine.ok() && other.ok() && other->host == mine->host;
  }
  return std::max(1, cores / std::max(1, here));
}

// Where checkpoints are written, and how the task survives failures.
absl::StatusOr<ResilienceOptions> ResilienceFromFlags(const TrainFlags& flags,
                                                      PreemptionWatcher* preemption) {
  if (flags.checkpoint_every_steps < 0 || flags.checkpoint_every_secs < 0 || flags.max_to_keep < 0) {
    return absl::InvalidArgumentError(
        "--checkpoint-every-steps, --checkpoint-every-secs and --max-to-keep must be >= 0");
  }
  ResilienceOptions options;
  options.model_dir = flags.model_dir;
  options.checkpoint_every_steps = flags.checkpoint_every_steps;
  options.checkpoint_every = absl::Seconds(flags.checkpoint_every_secs);
  options.max_to_keep = static_cast<int>(flags.max_to_keep);
  options.recovery_timeout = flags.recovery_timeout;
  options.startup_timeout = flags.startup_timeout;
  options.preemption = preemption;
  return options;
}

// The training part of a worker or chief task; `mesh` is null for a lone process.
absl::Status TrainWorker(const JobConfig& job, const TrainFlags& flags, const ClusterConfig& cluster,
                         Mesh* mesh, AbortSignal& abort, PreemptionWatcher* preemption,
                         absl::Time process_start) {
  MESHTRAIN_ASSIGN_OR_RETURN(JobData data, LoadJobData(job.data, job.training.seed));
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Optimizer> optimizer, Optimizer::Create(job.optimizer));
  MESHTRAIN_ASSIGN_OR_RETURN(const std::vector<Device> devices, ParseDeviceList(job.strategy.devices));
  MESHTRAIN_RETURN_IF_ERROR(ConfigureGpus(flags.logical_gpus, flags.gpu_memory_limit, devices));
  MESHTRAIN_ASSIGN_OR_RETURN(ResilienceOptions resilience, ResilienceFromFlags(flags, preemption));
  std::unique_ptr<FaultInjectionFileSystem> slow_fs;
  if (flags.test_checkpoint_sync_delay > absl::ZeroDuration()) {
    slow_fs = std::make_unique<FaultInjectionFileSystem>(
        DefaultFileSystem(), FaultInjectionOptions{.sync_delay = flags.test_checkpoint_sync_delay});
    resilience.fs = slow_fs.get();
  }

  const bool chief = cluster.is_chief();
  TrainingTask task;
  task.job = &job;
  task.cluster = &cluster;
  task.mesh = mesh;
  task.abort = &abort;
  task.data = &data;
  task.optimizer = optimizer.get();
  task.threads = CoresFor(flags, cluster);
  task.rpc_layer = flags.rpc_layer.empty() ? cluster.rpc_layer : flags.rpc_layer;
  task.process_start = process_start;
  std::unique_ptr<Tracer> tracer = flags.trace.empty() ? nullptr : std::make_unique<Tracer>();
  task.tracer = tracer.get();
  if (mesh != nullptr && job.strategy.name == "parameter_server") {
    MESHTRAIN_ASSIGN_OR_RETURN(PsJobOptions ps_options, MakePsJobOptions(job, cluster, task.rpc_layer, flags.startup_timeout));
    task.extend_environment = [mesh, ps_options, &job](StrategyEnvironment& env) {
      env.connect_ps = [mesh, ps_options](const std::vector<VariableSpec>& specs) {
        return ConnectToParameterServers(*mesh, specs, ps_options);
      };
      env.warmup_steps = job.strategy.warmup_steps;
    };
  }
  TrainingOptions& options = task.training;
  options.epochs = job.training.epochs;
  options.max_steps = job.training.max_steps;
  options.global_batch_size = job.training.global_batch_size;
  options.seed = job.training.seed;
  options.shuffle = job.data.shuffle;
  options.drop_remainder = job.data.drop_remainder;
  options.evaluate = chief;
  options.target_accuracy = job.training.target_accuracy;
  options.prefetch_depth = static_cast<int>(flags.prefetch);
  options.tracer = tracer.get();
  std::unique_ptr<EventWriter> events;
  std::unique_ptr<TensorBoardObserver> tensorboard;
  if (chief && !flags.model_dir.empty()) {
    MESHTRAIN_ASSIGN_OR_RETURN(events, EventWriter::Create(flags.model_dir));
    tensorboard = std::make_unique<TensorBoardObserver>(events.get(), job.optimizer.learning_rate,
                                                        options.evaluate);
    options.observers.push_back(tensorboard.get());
  }
  if (chief) {
    options.on_epoch = [&](const EpochRecord& e) { PrintEpoch(e, job.training.epochs); };
    options.on_progress = [](int64_t epoch, int64_t step, int64_t steps, double loss) {
      std::printf("  epoch %lld: step %lld/%lld  loss %.4f\n", static_cast<long long>(epoch),
                  static_cast<long long>(step), static_cast<long long>(steps), loss);
      std::fflush(stdout);
    };
  }
  MESHTRAIN_LOG(INFO) << "training " << (job.name.empty() ? flags.config : job.name) << " ("
                      << job.model.type << ", " << job.strategy.name << ", global batch "
                      << job.training.global_batch_size << ", " << task.threads << " thread(s))";
  MESHTRAIN_ASSIGN_OR_RETURN(ResilientRun run, RunResilientTraining(task, resilience));
  const TrainingReport& report = run.report;
  Strategy& strategy = *run.life.strategy;
  if (tracer != nullptr) {
    const std::string path = cluster.is_local() ? flags.trace : TaskTracePath(flags.trace, cluster.task);
    MESHTRAIN_RETURN_IF_ERROR(tracer->WriteChromeJson(path, TracePid(cluster.cluster, cluster.task),
                                                      cluster.task.ToString()));
  }

  if (!chief) return absl::OkStatus();
  std::printf("done: %lld steps, test accuracy %.4f, %.0f samples/s, %.1fs\n",
              static_cast<long long>(report.final_step), report.test_accuracy,
              report.samples_per_sec, report.wall_seconds);
  std::fflush(stdout);
  if (flags.model_dir.empty()) return absl::OkStatus();
  std::error_code ec;
  std::filesystem::create_directories(flags.model_dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create --model-dir ", flags.model_dir, ": ", ec.message()));
  }
  nlohmann::json summary = MakeSummary(job, report, cluster.cluster.num_training_workers(),
                                       cluster.cluster.num_tasks(kPsJob));
  summary["strategy"] = strategy.name();
  summary["threads"] = task.threads;
  strategy.Describe(summary);
  nlohmann::json checksums = nlohmann::json::object();
  nlohmann::json peak_rss = nlohmann::json::object();
  for (const auto& [worker, r] : run.reports) {
    checksums[worker] = r.checksum;
    peak_rss[worker] = r.peak_rss_bytes;
    summary["samples_per_sec_by_worker"][worker] = r.samples_per_sec();
    if (!flags.model_dir.empty()) {
      summary["restored_from_step_by_worker"][worker] =
          r.restored_from_step >= 0 ? nlohmann::json(r.restored_from_step) : nlohmann::json();
    }
  }
  summary["param_checksums"] = checksums;
  summary["peak_rss_bytes"] = peak_rss;
  // Every worker's own rate, summed: what the cluster trained per second,
  // whether or not its workers stepped together.
  summary["samples_per_sec"] = ClusterSamplesPerSec(run.reports);
  if (data.shape.num_classes == 0) {
    MESHTRAIN_ASSIGN_OR_RETURN(BinaryMetrics binary,
                               EvaluateBinary(strategy, *run.life.model, data.train, data.test));
    summary["test_auc"] = binary.auc;
    summary["base_rate"] = binary.base_rate;
    summary["baseline_test_loss"] = binary.baseline_test_loss;
    std::printf("test loss %.4f vs %.4f for the base rate %.3f; AUC %.4f\n", report.test_loss,
                binary.baseline_test_loss, binary.base_rate, binary.auc);
    std::fflush(stdout);
  }
  summary.update(run.fault_tolerance);
  return WriteJsonFile(flags.model_dir + "/summary.json", summary);
}

// Resolves this process's place: TF_CONFIG, else mpirun (then the server is
// started first, on a port of its choosing), else a lone process.
absl::StatusOr<ClusterConfig> ResolveCluster(const TrainFlags& flags,
                                             const ServerOptions& server_options,
                                             std::unique_ptr<Server>* server,
                                             std::unique_ptr<MpiSession>* mpi) {
  MESHTRAIN_ASSIGN_OR_RETURN(ClusterConfig config, ClusterConfigFromEnvironment());
  if (!config.is_local() || !RunningUnderMpi()) return config;
  MESHTRAIN_ASSIGN_OR_RETURN(MpiPlacement placement, MpiPlacementFromEnvironment());
  MESHTRAIN_ASSIGN_OR_RETURN(*server, Server::Create(server_options));
  MESHTRAIN_ASSIGN_OR_RETURN(int port, (*server)->Start("0.0.0.0:0"));
  MESHTRAIN_ASSIGN_OR_RETURN(*mpi, MpiSession::Init());
  const std::string address = JoinHostPort(MpiHostForPeers(placement), port);
  return ClusterConfigFromMpi(**mpi, address, static_cast<int>(flags.mpi_ps));
}

absl::StatusOr<std::unique_ptr<Mesh>> JoinMesh(const ClusterConfig& cluster, const JobConfig& job,
                                               const TrainFlags& flags,
                                               std::unique_ptr<Server> server,
                                               const ServerOptions& server_options,
                                               AbortSignal& abort) {
  MeshOptions options;
  options.server_options = server_options;
  // Synchronous strategies: any task that dies or restarts mid-step makes
  // everyone recover (docs/fault_tolerance.md); with parameter servers a
  // worker other than the chief trains on its own and restarts alone.
  if (job.strategy.name == "parameter_server") {
    for (const TaskId& worker : cluster.cluster.TrainingWorkers()) {
      if (worker != cluster.cluster.Chief()) options.independent_tasks.insert(worker);
    }
  }
  options.config = cluster;
  options.startup_timeout = flags.startup_timeout;
  options.heartbeat_timeout = flags.heartbeat_timeout;
  options.heartbeat_interval = std::min(absl::Seconds(1), flags.heartbeat_timeout / 4);
  options.abort = &abort;
  options.server = std::move(server);
  MESHTRAIN_RETURN_IF_ERROR(RegisterFastDataPaths(options.data_paths));
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Mesh> mesh, Mesh::Create(std::move(options)));
  MESHTRAIN_RETURN_IF_ERROR(mesh->Start());
  return mesh;
}

absl::Status RunTask(const JobConfig& job, const TrainFlags& flags, PreemptionWatcher* preemption,
                     absl::Time process_start) {
  // A parameter_server job's ps tasks serve their variables on their mesh
  // server; every task registers the service (the role is not known yet under
  // mpirun), but only a ps task activates it. It outlives the server.
  PsService ps_service;
  const bool parameter_server = job.strategy.name == "parameter_server";
  ServerOptions server_options;
  if (parameter_server) server_options.services.push_back(ps_service.grpc_service());
  std::unique_ptr<Server> server;
  std::unique_ptr<MpiSession> mpi;
  MESHTRAIN_ASSIGN_OR_RETURN(ClusterConfig cluster,
                             ResolveCluster(flags, server_options, &server, &mpi));
  AbortSignal abort;
  if (cluster.is_local()) {
    return TrainWorker(job, flags, cluster, nullptr, abort, preemption, process_start);
  }

  SetLogTag(cluster.task.ToString());
  if (cluster.task.job == kEvaluatorJob) {
    // No mesh: nothing else notices the evaluator, alive or dead.
    EvaluatorOptions options;
    options.model_dir = flags.model_dir;
    options.idle_timeout = flags.eval_timeout;
    options.preemption = preemption;
    return RunEvaluator(job, options);
  }
  if (preemption != nullptr) preemption->InterruptWaits(&abort);  // start-up waits end on SIGTERM
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Mesh> mesh,
                             JoinMesh(cluster, job, flags, std::move(server), server_options, abort));
  absl::Status status;
  if (cluster.is_training_worker()) {
    status = TrainWorker(job, flags, cluster, mesh.get(), abort, preemption, process_start);
    if (status.ok() && cluster.is_chief()) status = mesh->coordination().RequestShutdown();
    if (status.ok() && !cluster.is_chief()) {
      status = mesh->coordination().WaitForShutdown(absl::Now() + absl::Minutes(5));
    }
  } else if (parameter_server && cluster.task.job == kPsJob) {
    // Without checkpoints there is nothing to recover from: fail instead.
    const absl::Duration recovery = flags.model_dir.empty() ? absl::ZeroDuration() : flags.recovery_timeout;
    status = RunParameterServerTask(*mesh, ps_service, flags.startup_timeout, recovery, preemption);
  } else {
    status = mesh->coordination().WaitForShutdown(absl::InfiniteFuture());
  }
  if (!status.ok() && !abort.aborted()) {
    // The first error of the cluster aborts every other task at once.
    (void)mesh->coordination().ReportError(status);
  }
  if (!status.ok() && !IsPreempted(status) && abort.aborted() &&
      !absl::StrContains(status.message(), abort.status().message())) {
    // Another task failed first: say so, since this task's own error is often
    // only the echo (a neighbour that gave up).
    status = Annotate(status, absl::StrCat(abort.status().message(), "; on ", cluster.task.ToString()));
  }
  mesh->Stop();
  return status;
}

}  // namespace

int RunTrainCommand(const std::vector<std::string>& args) {
  const absl::Time process_start = absl::Now();
  FlagSet flag_set("train", kTrainUsage, kTrainDescription);
  TrainFlags flags;
  RegisterTrainFlags(flag_set, flags);
  if (std::optional<int> exit = ParseCommandFlags(flag_set, args)) return *exit;
  if (flags.quiet) SetMinLogSeverity(LogSeverity::kWarning);
  absl::StatusOr<JobConfig> job = LoadJobWithOverrides(flag_set, flags);
  if (!job.ok()) {
    std::fprintf(stderr, "meshtrain train: %s\n", std::string(job.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<PreemptionWatcher>> preemption = PreemptionWatcher::Start();
  if (!preemption.ok()) {
    MESHTRAIN_LOG(ERROR) << preemption.status();
    return 1;
  }
  absl::Status status = RunTask(*job, flags, preemption->get(), process_start);
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

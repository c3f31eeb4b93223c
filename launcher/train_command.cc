#include "launcher/train_command.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "launcher/event_writer.h"
#include "launcher/flag_set.h"
#include "launcher/job_data.h"
#include "launcher/summary.h"
#include "launcher/tensorboard_observer.h"
#include "launcher/trace_files.h"
#include "launcher/train_flags.h"
#include "launcher/training_loop.h"
#include "launcher/worker_reports.h"
#include "nlohmann/json.hpp"
#include "runtime/base/abort_signal.h"
#include "runtime/base/logging.h"
#include "runtime/base/trace.h"
#include "runtime/base/status_macros.h"
#include "runtime/cluster/address.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/cluster/mpi_resolver.h"
#include "runtime/cluster/tf_config.h"
#include "runtime/collective/ring_communicator.h"
#include "runtime/model/model.h"
#include "runtime/optim/optimizer.h"
#include "runtime/rpc/fast_data_paths.h"
#include "runtime/rpc/mesh.h"
#include "strategies/strategy_factory.h"

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

// The training part of a worker or chief task; `mesh` is null for a lone process.
absl::Status TrainWorker(const JobConfig& job, const TrainFlags& flags, const ClusterConfig& cluster,
                         Mesh* mesh, AbortSignal& abort) {
  MESHTRAIN_ASSIGN_OR_RETURN(JobData data, LoadJobData(job.data, job.training.seed));
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Optimizer> optimizer, Optimizer::Create(job.optimizer));

  StrategyEnvironment env;
  env.cluster = &cluster;
  env.optimizer = optimizer.get();
  env.seed = job.training.seed;
  env.threads = CoresFor(flags, cluster);
  env.abort = &abort;
  std::unique_ptr<Tracer> tracer = flags.trace.empty() ? nullptr : std::make_unique<Tracer>();
  env.tracer = tracer.get();
  std::unique_ptr<Transport> transport;
  std::unique_ptr<Communicator> communicator;
  const std::vector<TaskId> workers = cluster.cluster.TrainingWorkers();
  if (mesh != nullptr && job.strategy.name == "multi_worker_mirrored" && workers.size() > 1) {
    const std::string rpc_layer = flags.rpc_layer.empty() ? cluster.rpc_layer : flags.rpc_layer;
    MESHTRAIN_ASSIGN_OR_RETURN(transport, mesh->CreateTransport(workers, rpc_layer, "gradients"));
    communicator = std::make_unique<RingCommunicator>(transport.get());
    env.cross_worker = communicator.get();
    env.communication = absl::StrCat("ring over ", transport->kind());
  }
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
                      << model->name() << ", " << strategy->name() << ", "
                      << strategy->num_replicas_in_sync() << " replica(s) in sync, global batch "
                      << job.training.global_batch_size << ", " << env.threads << " thread(s))";
  MESHTRAIN_ASSIGN_OR_RETURN(TrainingReport report,
                             RunTraining(*strategy, *model, data.train, &data.test, options));
  MESHTRAIN_ASSIGN_OR_RETURN(std::string checksum, strategy->ParameterChecksum());

  if (tracer != nullptr) {
    const std::string path = cluster.is_local() ? flags.trace : TaskTracePath(flags.trace, cluster.task);
    MESHTRAIN_RETURN_IF_ERROR(tracer->WriteChromeJson(path, TracePid(cluster.cluster, cluster.task),
                                                      cluster.task.ToString()));
  }

  // Every worker's parameters and memory meet at the chief (summary.json).
  MESHTRAIN_ASSIGN_OR_RETURN(
      auto reports, ExchangeWorkerReports(mesh, cluster, {checksum, PeakRssBytes()}, absl::Minutes(2)));
  if (!chief) return absl::OkStatus();
  nlohmann::json checksums = nlohmann::json::object();
  nlohmann::json peak_rss = nlohmann::json::object();
  for (const auto& [task, r] : reports) {
    checksums[task] = r.checksum;
    peak_rss[task] = r.peak_rss_bytes;
  }
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
  summary["strategy"] = strategy->name();
  summary["threads"] = env.threads;
  strategy->Describe(summary);
  summary["param_checksums"] = checksums;
  summary["peak_rss_bytes"] = peak_rss;
  return WriteJsonFile(flags.model_dir + "/summary.json", summary);
}

// Resolves this process's place: TF_CONFIG, else mpirun (then the server is
// started first, on a port of its choosing), else a lone process.
absl::StatusOr<ClusterConfig> ResolveCluster(const TrainFlags& flags, std::unique_ptr<Server>* server,
                                             std::unique_ptr<MpiSession>* mpi) {
  MESHTRAIN_ASSIGN_OR_RETURN(ClusterConfig config, ClusterConfigFromEnvironment());
  if (!config.is_local() || !RunningUnderMpi()) return config;
  MESHTRAIN_ASSIGN_OR_RETURN(MpiPlacement placement, MpiPlacementFromEnvironment());
  MESHTRAIN_ASSIGN_OR_RETURN(*server, Server::Create());
  MESHTRAIN_ASSIGN_OR_RETURN(int port, (*server)->Start("0.0.0.0:0"));
  MESHTRAIN_ASSIGN_OR_RETURN(*mpi, MpiSession::Init());
  const std::string address = JoinHostPort(MpiHostForPeers(placement), port);
  return ClusterConfigFromMpi(**mpi, address, static_cast<int>(flags.mpi_ps));
}

absl::StatusOr<std::unique_ptr<Mesh>> JoinMesh(const ClusterConfig& cluster, const TrainFlags& flags,
                                               std::unique_ptr<Server> server, AbortSignal& abort) {
  MeshOptions options;
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

absl::Status RunTask(const JobConfig& job, const TrainFlags& flags) {
  std::unique_ptr<Server> server;
  std::unique_ptr<MpiSession> mpi;
  MESHTRAIN_ASSIGN_OR_RETURN(ClusterConfig cluster, ResolveCluster(flags, &server, &mpi));
  AbortSignal abort;
  if (cluster.is_local()) return TrainWorker(job, flags, cluster, nullptr, abort);

  SetLogTag(cluster.task.ToString());
  if (cluster.task.job == kEvaluatorJob) {
    return absl::UnimplementedError("the evaluator role needs checkpoints (see docs/fault_tolerance.md)");
  }
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Mesh> mesh, JoinMesh(cluster, flags, std::move(server), abort));
  absl::Status status;
  if (cluster.is_training_worker()) {
    status = TrainWorker(job, flags, cluster, mesh.get(), abort);
    if (status.ok() && cluster.is_chief()) status = mesh->coordination().RequestShutdown();
    if (status.ok() && !cluster.is_chief()) {
      status = mesh->coordination().WaitForShutdown(absl::Now() + absl::Minutes(5));
    }
  } else {
    status = mesh->coordination().WaitForShutdown(absl::InfiniteFuture());
  }
  if (!status.ok() && !abort.aborted()) {
    // The first error of the cluster aborts every other task at once.
    (void)mesh->coordination().ReportError(status);
  }
  mesh->Stop();
  return status;
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
  absl::Status status = RunTask(*job, flags);
  if (!status.ok()) {
    MESHTRAIN_LOG(ERROR) << status;
    return 1;
  }
  return 0;
}

}  // namespace meshtrain

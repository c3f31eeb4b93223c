#include "training/train_task.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/base/abort_signal.h"
#include "runtime/base/logging.h"
#include "runtime/base/quote.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/trace.h"
#include "runtime/checkpoint/fault_injection_file_system.h"
#include "runtime/cluster/address.h"
#include "runtime/cluster/cluster_source.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/cluster/env_lookup.h"
#include "runtime/cluster/mpi_resolver.h"
#include "runtime/cluster/slurm_resolver.h"
#include "runtime/cluster/tf_config.h"
#include "runtime/cluster/torchrun_resolver.h"
#include "runtime/model/model.h"
#include "runtime/optim/optimizer.h"
#include "runtime/rpc/fast_data_paths.h"
#include "runtime/rpc/mesh.h"
#include "strategies/strategy_builder.h"
#include "summaries/event_writer.h"
#include "summaries/trace_files.h"
#include "training/binary_metrics.h"
#include "training/evaluator.h"
#include "training/gpu_setup.h"
#include "training/job_data.h"
#include "training/resilient_training.h"
#include "training/serving_task.h"
#include "training/summary.h"
#include "training/tensorboard_observer.h"
#include "training/training_loop.h"
#include "training/worker_reports.h"

namespace meshtrain {
namespace {

void PrintEpoch(const EpochRecord& e, int64_t total_epochs) {
  std::printf(
      "epoch %lld/%lld  loss %.4f  acc %.4f  test_loss %.4f  test_acc %.4f  "
      "%.0f samples/s  %.2fs (elapsed %.1fs)\n",
      static_cast<long long>(e.epoch), static_cast<long long>(total_epochs), e.train_loss,
      e.train_accuracy, e.test_loss, e.test_accuracy, e.samples_per_sec, e.train_seconds,
      e.elapsed_seconds);
  std::fflush(stdout);
}

void PrintProgress(const ProgressRecord& p) {
  std::printf(
      "  epoch %lld: step %lld/%lld  loss %.4f  %.1f ms/step (%.1f communicating, %.1f waiting "
      "for input)\n",
      static_cast<long long>(p.epoch), static_cast<long long>(p.step),
      static_cast<long long>(p.steps_per_epoch), p.loss, absl::ToDoubleMilliseconds(p.step_time),
      absl::ToDoubleMilliseconds(p.communicate_time), absl::ToDoubleMilliseconds(p.input_time));
  std::fflush(stdout);
}

int CoresFor(const TaskOptions& options, const ClusterConfig& cluster) {
  if (options.threads > 0) return static_cast<int>(options.threads);
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

// Every training worker reads input: each worker of a synchronous strategy
// (its replicas split its batch) and each parameter-server worker.
InputWorker InputWorkerOf(const ClusterConfig& cluster) {
  if (cluster.is_local()) return InputWorker{};
  return InputWorker{cluster.cluster.num_training_workers(), cluster.worker_rank()};
}

// The elastic section (or flags) against the strategy and the input policy.
absl::Status CheckElastic(const JobConfig& job, const StrategyBuilder& strategies) {
  const ElasticConfig& e = job.elastic;
  if (!e.enabled) return absl::OkStatus();
  if (e.rejoin_grace < absl::ZeroDuration() || e.min_workers < 1 || e.max_workers < 0 ||
      (e.max_workers > 0 && e.max_workers < e.min_workers) || e.initial_workers < 0 ||
      (e.initial_workers > 0 && e.initial_workers < e.min_workers)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "elastic: rejoin_grace ", absl::FormatDuration(e.rejoin_grace), ", min_workers ",
        e.min_workers, ", max_workers ", e.max_workers, ", initial_workers ", e.initial_workers,
        ": the grace must be >= 0, min_workers >= 1, max_workers and initial_workers 0 (all) or "
        ">= min_workers"));
  }
  // multi_worker_mirrored goes on without a worker (5.9); parameter_server
  // without a ps (its workers already train on alone, 5.5), whose partitions
  // are restored from the checkpoint onto the others (5.10).
  const RecoveryPolicy policy = strategies.recovery_policy();
  if (!policy.replicated_state && !policy.independent_workers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "elastic: strategy ", job.strategy.name,
        " does not go on without a task; only multi_worker_mirrored (its workers each hold the "
        "whole state) and parameter_server (a ps's partitions move to the others) do; remove "
        "--elastic and the config's elastic section"));
  }
  return absl::OkStatus();
}

// Where checkpoints are written, and how the task survives failures.
absl::StatusOr<ResilienceOptions> MakeResilienceOptions(const TaskOptions& options,
                                                        PreemptionWatcher* preemption) {
  if (options.checkpoint_every_steps < 0 || options.checkpoint_every_secs < 0 ||
      options.max_to_keep < 0) {
    return absl::InvalidArgumentError(
        "--checkpoint-every-steps, --checkpoint-every-secs and --max-to-keep must be >= 0");
  }
  if (options.restore != "latest" && options.restore != "none") {
    return absl::InvalidArgumentError(
        absl::StrCat("--restore ", QuoteForMessage(options.restore),
                     " is not one of latest, none; use latest to resume from the newest valid "
                     "checkpoint, none to start from the initial values"));
  }
  ResilienceOptions resilience;
  resilience.model_dir = options.model_dir;
  resilience.restore_existing = options.restore == "latest";
  resilience.checkpoint_every_steps = options.checkpoint_every_steps;
  resilience.checkpoint_every = absl::Seconds(options.checkpoint_every_secs);
  resilience.max_to_keep = static_cast<int>(options.max_to_keep);
  resilience.recovery_timeout = options.recovery_timeout;
  resilience.startup_timeout = options.startup_timeout;
  resilience.preemption = preemption;
  return resilience;
}

// The loop's options for this task: the chief evaluates, prints progress and
// writes TensorBoard events (`tensorboard`, may be null).
TrainingOptions MakeLoopOptions(const JobConfig& job, const TaskOptions& options, bool chief,
                                const TrainSharding& sharding, Tracer* tracer,
                                TensorBoardObserver* tensorboard) {
  TrainingOptions loop;
  if (sharding.decision.policy == AutoShardPolicy::kFile) {
    loop.own_files = OwnFilesOptions{sharding.worker.num_workers, sharding.worker.index};
  }
  loop.epochs = job.training.epochs;
  loop.max_steps = job.training.max_steps;
  loop.global_batch_size = job.training.global_batch_size;
  loop.seed = job.training.seed;
  loop.shuffle = job.data.shuffle;
  loop.drop_remainder = job.data.drop_remainder;
  loop.uneven_batches = job.elastic.enabled;
  loop.evaluate = chief;
  loop.target_accuracy = job.training.target_accuracy;
  loop.prefetch_depth = static_cast<int>(options.prefetch);
  loop.input_threads = static_cast<int>(options.input_threads);
  loop.augment = job.data.augment;
  loop.progress_interval = options.progress_interval;
  loop.tracer = tracer;
  if (tensorboard != nullptr) loop.observers.push_back(tensorboard);
  if (chief) {
    const int64_t epochs = job.training.epochs;
    loop.on_epoch = [epochs](const EpochRecord& e) { PrintEpoch(e, epochs); };
    loop.on_progress = PrintProgress;
  }
  return loop;
}

// The chief's summary.json: the run's figures, the strategy's own fields and
// every worker's checksum, memory and rate.
absl::Status WriteRunSummary(const JobConfig& job, const TaskOptions& options,
                             const ClusterConfig& cluster, const JobData& data, int threads,
                             const ResilientRun& run) {
  std::error_code ec;
  std::filesystem::create_directories(options.model_dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create --model-dir ", options.model_dir, ": ", ec.message()));
  }
  const TrainingReport& report = run.report;
  Strategy& strategy = *run.life.strategy;
  // The last generation's workers: an elastic cluster may have ended with fewer.
  const int workers = run.reports.empty() ? cluster.cluster.num_training_workers()
                                          : static_cast<int>(run.reports.size());
  nlohmann::json summary = MakeSummary(job, report, workers, cluster.cluster.num_tasks(kPsJob));
  summary["strategy"] = strategy.name();
  summary["threads"] = threads;
  strategy.Describe(summary);
  nlohmann::json checksums = nlohmann::json::object();
  nlohmann::json peak_rss = nlohmann::json::object();
  for (const auto& [worker, r] : run.reports) {
    checksums[worker] = r.checksum;
    peak_rss[worker] = r.peak_rss_bytes;
    summary["samples_per_sec_by_worker"][worker] = r.samples_per_sec();
    summary["restored_from_step_by_worker"][worker] =
        r.restored_from_step >= 0 ? nlohmann::json(r.restored_from_step) : nlohmann::json();
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
  summary["final_checkpoint"] =
      run.final_checkpoint.ok() ? "committed" : std::string(run.final_checkpoint.message());
  return WriteJsonFile(options.model_dir + "/summary.json", summary);
}

// What a training task brings besides the strategy and its mesh; owns what
// TrainingTask borrows.
struct WorkerState {
  JobData data;
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<FaultInjectionFileSystem> slow_fs;  // --test-checkpoint-sync-delay
  std::unique_ptr<Tracer> tracer;                     // --trace
  std::unique_ptr<EventWriter> events;                // the chief's, with --model-dir
  std::unique_ptr<TensorBoardObserver> tensorboard;
};

// The training part of a worker or chief task; `mesh` is null for a lone process.
absl::Status TrainWorker(const JobConfig& job, const TaskOptions& options,
                         const ClusterConfig& cluster, StrategyBuilder& strategies, Mesh* mesh,
                         AbortSignal& abort, PreemptionWatcher* preemption,
                         absl::Time process_start) {
  WorkerState state;
  MESHTRAIN_ASSIGN_OR_RETURN(state.data,
                             LoadJobData(job.data, job.training.seed, InputWorkerOf(cluster)));
  MESHTRAIN_LOG(INFO) << state.data.sharding.Describe(state.data.train.size());
  if (job.elastic.enabled && state.data.sharding.decision.policy == AutoShardPolicy::kFile) {
    return absl::InvalidArgumentError(
        "elastic: the input is sharded by file (auto_shard file, or auto with at least as many "
        "files as workers): each worker reads its own files, which a departed worker would take "
        "with it; set data.auto_shard to data");
  }
  // The linear scaling rule is resolved here, where the global batch is final,
  // so every strategy (and the parameter servers, through the plan) gets the
  // scaled rate.
  MESHTRAIN_ASSIGN_OR_RETURN(
      const OptimizerConfig optimizer,
      ScaleLearningRateForBatch(job.optimizer, job.training.global_batch_size));
  MESHTRAIN_ASSIGN_OR_RETURN(state.optimizer, Optimizer::Create(optimizer));
  MESHTRAIN_ASSIGN_OR_RETURN(const std::vector<Device> devices,
                             ParseDeviceList(job.strategy.devices));
  MESHTRAIN_RETURN_IF_ERROR(ConfigureGpus(options.logical_gpus, options.gpu_memory_limit, devices));
  MESHTRAIN_ASSIGN_OR_RETURN(ResilienceOptions resilience,
                             MakeResilienceOptions(options, preemption));
  // Only replicated state is held and shared (5.9); a parameter_server
  // cluster's elasticity is the coordination service's (a ps left behind,
  // 5.10), and it restores from the checkpoint on disk as ever.
  resilience.elastic = job.elastic.enabled && strategies.recovery_policy().replicated_state;
  resilience.keep_per_replica_batch = job.elastic.keep == "per_replica_batch";
  if (options.test_checkpoint_sync_delay > absl::ZeroDuration()) {
    state.slow_fs = std::make_unique<FaultInjectionFileSystem>(
        DefaultFileSystem(),
        FaultInjectionOptions{.sync_delay = options.test_checkpoint_sync_delay});
    resilience.fs = state.slow_fs.get();
  }
  const bool chief = cluster.is_chief();
  if (!options.trace.empty()) state.tracer = std::make_unique<Tracer>();
  if (chief && !options.model_dir.empty()) {
    absl::StatusOr<std::unique_ptr<EventWriter>> events = EventWriter::Create(options.model_dir);
    if (events.ok()) {
      state.events = std::move(*events);
      state.tensorboard = std::make_unique<TensorBoardObserver>(
          state.events.get(), state.optimizer->schedule(), /*evaluate=*/chief);
    } else if (absl::IsResourceExhausted(events.status())) {
      // A full disk (a resume on it, say): the checkpoints matter, the
      // TensorBoard curves do not.
      MESHTRAIN_LOG(WARNING) << events.status() << "; training goes on without TensorBoard "
                             << "events: free space in " << options.model_dir
                             << " or point --model-dir elsewhere";
    } else {
      return events.status();
    }
  }

  TrainingTask task;
  task.job = &job;
  task.cluster = &cluster;
  task.mesh = mesh;
  task.abort = &abort;
  task.data = &state.data;
  task.optimizer = state.optimizer.get();
  task.strategies = &strategies;
  task.threads = CoresFor(options, cluster);
  task.rpc_layer = options.rpc_layer.empty() ? cluster.rpc_layer : options.rpc_layer;
  task.process_start = process_start;
  task.tracer = state.tracer.get();
  task.training = MakeLoopOptions(job, options, chief, state.data.sharding, state.tracer.get(),
                                  state.tensorboard.get());
  if (!options.test_record_examples.empty()) {
    task.training.record_examples = absl::StrCat(options.test_record_examples, "/examples-",
                                                 cluster.task.job, "-", cluster.task.index, ".txt");
  }
  MESHTRAIN_LOG(INFO) << "training " << (job.name.empty() ? options.job_label : job.name) << " ("
                      << job.model.type << ", " << job.strategy.name << ", global batch "
                      << job.training.global_batch_size << ", " << task.threads << " thread(s))";
  MESHTRAIN_ASSIGN_OR_RETURN(ResilientRun run, RunResilientTraining(task, resilience));
  if (state.tracer != nullptr) {
    const std::string path =
        cluster.is_local() ? options.trace : TaskTracePath(options.trace, cluster.task);
    MESHTRAIN_RETURN_IF_ERROR(state.tracer->WriteChromeJson(
        path, TracePid(cluster.cluster, cluster.task), cluster.task.ToString()));
  }
  if (!chief) return absl::OkStatus();
  std::printf("done: %lld steps, test accuracy %.4f, %.0f samples/s, %.1fs\n",
              static_cast<long long>(run.report.final_step), run.report.test_accuracy,
              run.report.samples_per_sec, run.report.wall_seconds);
  std::fflush(stdout);
  if (options.model_dir.empty()) return absl::OkStatus();
  const absl::Status summary =
      WriteRunSummary(job, options, cluster, state.data, task.threads, run);
  if (absl::IsResourceExhausted(summary)) {
    MESHTRAIN_LOG(WARNING) << "summary.json: " << summary << "; the run's results are in this log";
  } else if (!summary.ok()) {
    return summary;
  }
  return run.final_checkpoint;
}

// This task's host in its cluster ("" when its address does not parse; the
// mesh reports that).
std::string OwnHost(const ClusterConfig& cluster) {
  absl::StatusOr<HostPort> own = ParseHostPort(cluster.cluster.address(cluster.task));
  return own.ok() ? own->host : std::string();
}

// Under mpirun: the server starts first, on a port of its choosing, and the
// ranks exchange addresses through MPI.
absl::StatusOr<ClusterConfig> ResolveMpiCluster(const TaskOptions& options,
                                                const ServerOptions& server_options,
                                                std::unique_ptr<Server>* server,
                                                std::unique_ptr<MpiSession>* mpi) {
  MESHTRAIN_ASSIGN_OR_RETURN(MpiPlacement placement, MpiPlacementFromEnvironment());
  const std::string host = MpiHostForPeers(placement);
  const std::string bind_host =
      options.bind_host.empty() ? DefaultBindHost(host) : options.bind_host;
  MESHTRAIN_ASSIGN_OR_RETURN(*server, Server::Create(server_options));
  MESHTRAIN_ASSIGN_OR_RETURN(int port, (*server)->Start(JoinHostPort(bind_host, 0)));
  MESHTRAIN_ASSIGN_OR_RETURN(*mpi, MpiSession::Init());
  const std::string address = JoinHostPort(host, port);
  return ClusterConfigFromMpi(**mpi, address, static_cast<int>(options.mpi_ps));
}

absl::StatusOr<ClusterConfig> ResolveSlurmCluster(const TaskOptions& options,
                                                  const EnvLookup& env) {
  MESHTRAIN_ASSIGN_OR_RETURN(SlurmPlacement placement, SlurmPlacementFromEnvironment(env));
  SlurmOptions slurm;
  slurm.port_base = static_cast<int>(options.port_base);
  slurm.roles = RankRoles{static_cast<int>(options.ps), options.evaluator};
  return ClusterConfigFromSlurm(placement, slurm);
}

// Under torchrun-style variables: as under mpirun, but the ranks exchange
// addresses through rank 0 at MASTER_ADDR:MASTER_PORT.
absl::StatusOr<ClusterConfig> ResolveTorchrunCluster(const TaskOptions& options,
                                                     const ServerOptions& server_options,
                                                     const EnvLookup& env,
                                                     std::unique_ptr<Server>* server) {
  MESHTRAIN_ASSIGN_OR_RETURN(TorchrunPlacement placement, TorchrunPlacementFromEnvironment(env));
  MESHTRAIN_ASSIGN_OR_RETURN(*server, Server::Create(server_options));
  MESHTRAIN_ASSIGN_OR_RETURN(int port, (*server)->Start("0.0.0.0:0"));
  const RankRoles roles{static_cast<int>(options.ps), options.evaluator};
  return ClusterConfigFromTorchrun(placement, port, roles, options.startup_timeout, env);
}

// Resolves this process's place in the order of cluster_source.h.
absl::StatusOr<ClusterConfig> ResolveCluster(const TaskOptions& options,
                                             const ClusterSourceChoice& choice,
                                             const EnvLookup& env,
                                             const ServerOptions& server_options,
                                             std::unique_ptr<Server>* server,
                                             std::unique_ptr<MpiSession>* mpi) {
  if (choice.source != ClusterSource::kLocal) MESHTRAIN_LOG(INFO) << choice.reason;
  if ((options.ps != 0 || options.evaluator) && choice.source != ClusterSource::kSlurm &&
      choice.source != ClusterSource::kTorchrun) {
    MESHTRAIN_LOG(WARNING) << "--ps and --evaluator split the ranks of Slurm and torchrun-style "
                              "jobs only; ignored here ("
                           << choice.reason << ")";
  }
  switch (choice.source) {
    case ClusterSource::kTfConfig:
      return ClusterConfigFromEnvironment();
    case ClusterSource::kSlurm:
      return ResolveSlurmCluster(options, env);
    case ClusterSource::kMpi:
      return ResolveMpiCluster(options, server_options, server, mpi);
    case ClusterSource::kTorchrun:
      return ResolveTorchrunCluster(options, server_options, env, server);
    case ClusterSource::kLocal:
      break;
  }
  return ClusterConfig::Local();
}

absl::StatusOr<std::unique_ptr<Mesh>> JoinMesh(
    const ClusterConfig& cluster, const StrategyBuilder& strategies, const ElasticConfig& elastic,
    const TaskOptions& task_options, std::unique_ptr<Server> server,
    const ServerOptions& server_options, MeshSecurity security, AbortSignal& abort) {
  MeshOptions options;
  options.server_options = server_options;
  options.security = std::move(security);
  options.independent_tasks = strategies.recovery_policy().IndependentTasks(cluster.cluster);
  options.elastic = {.enabled = elastic.enabled,
                     .rejoin_grace = elastic.rejoin_grace,
                     .min_workers = static_cast<int>(elastic.min_workers),
                     .max_workers = static_cast<int>(elastic.max_workers),
                     .initial_workers = static_cast<int>(elastic.initial_workers)};
  options.config = cluster;
  options.startup_timeout = task_options.startup_timeout;
  options.heartbeat_timeout = task_options.heartbeat_timeout;
  options.stuck_floor = task_options.stuck_timeout;
  // Four a second: the stuck rule (docs/fault_tolerance.md) must hear of a
  // silent task within 2 s and tell every other task with the next reply.
  options.heartbeat_interval =
      std::min(absl::Milliseconds(250), task_options.heartbeat_timeout / 4);
  options.abort = &abort;
  options.bind_host = task_options.bind_host;
  options.server = std::move(server);
  MESHTRAIN_RETURN_IF_ERROR(RegisterFastDataPaths(options.data_paths));
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Mesh> mesh, Mesh::Create(std::move(options)));
  MESHTRAIN_RETURN_IF_ERROR(mesh->Start());
  return mesh;
}

// A task's role on the joined mesh (steps 3 of train_task.h).
absl::Status RunRole(const JobConfig& job, const TaskOptions& options, const ClusterConfig& cluster,
                     StrategyBuilder& strategies, Mesh& mesh, AbortSignal& abort,
                     PreemptionWatcher* preemption, absl::Time process_start) {
  if (cluster.is_training_worker()) {
    const absl::Status trained =
        TrainWorker(job, options, cluster, strategies, &mesh, abort, preemption, process_start);
    if (cluster.is_chief() && absl::IsResourceExhausted(trained)) {
      // Training finished; only the final checkpoint did not fit: the others
      // stop normally, and this task exits non-zero.
      (void)mesh.coordination().RequestShutdown();
      return trained;
    }
    MESHTRAIN_RETURN_IF_ERROR(trained);
    if (cluster.is_chief()) return mesh.coordination().RequestShutdown();
    return mesh.coordination().WaitForShutdown(absl::Now() + absl::Minutes(5));
  }
  if (strategies.Serves(cluster.task)) {
    // Without checkpoints there is nothing to recover from: fail instead.
    const absl::Duration recovery =
        options.model_dir.empty() ? absl::ZeroDuration() : options.recovery_timeout;
    return RunServingTask(mesh, strategies, options.startup_timeout, recovery, preemption);
  }
  return mesh.coordination().WaitForShutdown(absl::InfiniteFuture());
}

}  // namespace

absl::Status RunTrainingTask(const JobConfig& job, const TaskOptions& options,
                             PreemptionWatcher* preemption, absl::Time process_start) {
  // Every task registers the strategy's services (under mpirun the role is
  // not known yet); the builder outlives the server.
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<StrategyBuilder> strategies,
                             StrategyBuilder::Create(job.strategy, options.model_dir));
  MESHTRAIN_RETURN_IF_ERROR(CheckElastic(job, *strategies));
  ServerOptions server_options;
  strategies->RegisterServices(server_options);
  const EnvLookup env = ProcessEnvironment();
  const ClusterSourceChoice choice = ChooseClusterSource(env);
  // Under mpirun and torchrun-style launches the server starts before the
  // task knows its name: it serves with the shared pair.
  const bool serves_first =
      choice.source == ClusterSource::kMpi || choice.source == ClusterSource::kTorchrun;
  MeshSecurity security;
  if (serves_first) {
    MESHTRAIN_ASSIGN_OR_RETURN(security, LoadTaskSecurity(options.security, env, ""));
    server_options.credentials = security.credentials;
  }
  std::unique_ptr<Server> server;
  std::unique_ptr<MpiSession> mpi;
  MESHTRAIN_ASSIGN_OR_RETURN(ClusterConfig cluster,
                             ResolveCluster(options, choice, env, server_options, &server, &mpi));
  AbortSignal abort;
  if (cluster.is_local()) {
    return TrainWorker(job, options, cluster, *strategies, nullptr, abort, preemption,
                       process_start);
  }

  SetLogTag(cluster.task.ToString());
  if (cluster.task.job == kEvaluatorJob) {
    // No mesh: nothing else notices the evaluator, alive or dead.
    EvaluatorOptions evaluator;
    evaluator.model_dir = options.model_dir;
    evaluator.idle_timeout = options.eval_timeout;
    evaluator.preemption = preemption;
    return RunEvaluator(job, evaluator);
  }
  if (!serves_first) {
    MESHTRAIN_ASSIGN_OR_RETURN(security,
                               LoadTaskSecurity(options.security, env, cluster.task.ToString()));
  }
  const std::string bind_host = !options.bind_host.empty()
                                    ? options.bind_host
                                    : (serves_first && choice.source == ClusterSource::kTorchrun
                                           ? std::string("0.0.0.0")
                                           : DefaultBindHost(OwnHost(cluster)));
  if (const std::string warning = ExposureWarning(security, bind_host); !warning.empty()) {
    MESHTRAIN_LOG(WARNING) << warning;
  }
  if (security.enabled()) {
    MESHTRAIN_LOG(INFO) << "security: mutual TLS with " << security.credentials->source
                        << "; tcp data path between hosts "
                        << (security.data_path_encryption ? "encrypted (" : "authenticated only (")
                        << security.data_path_tls->cipher_suites().substr(
                               0, security.data_path_tls->cipher_suites().find(':'))
                        << ")";
  }
  if (preemption != nullptr) preemption->InterruptWaits(&abort);  // start-up waits end on SIGTERM
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Mesh> mesh,
                             JoinMesh(cluster, *strategies, job.elastic, options, std::move(server),
                                      server_options, std::move(security), abort));
  absl::Status status =
      RunRole(job, options, cluster, *strategies, *mesh, abort, preemption, process_start);
  if (!status.ok() && !abort.aborted()) {
    // The first error of the cluster aborts every other task at once.
    (void)mesh->coordination().ReportError(status);
  }
  if (!status.ok() && !IsPreempted(status) && abort.aborted() &&
      !absl::StrContains(status.message(), abort.status().message())) {
    // Another task failed first: say so, since this task's own error is often
    // only the echo (a neighbour that gave up).
    status =
        Annotate(status, absl::StrCat(abort.status().message(), "; on ", cluster.task.ToString()));
  }
  mesh->Stop();
  return status;
}

}  // namespace meshtrain

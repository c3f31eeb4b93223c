#include "runtime/ps/ps_bootstrap.h"

#include <algorithm>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/ps/dense_link.h"
#include "runtime/ps/parameter_shards.h"
#include "runtime/rpc/coordination_client.h"
#include "runtime/rpc/peer_directory.h"

namespace meshtrain {
namespace {

// Keys of one generation of the cluster: a recovery starts the ps tasks
// afresh, and nobody may read the previous life's plan or readiness.
std::string PlanKey(int64_t generation) { return absl::StrCat("ps/g", generation, "/plan"); }
std::string ReadyKey(int64_t generation, int ps) {
  return absl::StrCat("ps/g", generation, "/ready/", ps);
}

// Equal on both ends of the link (Mesh::CreateTransport's contract) and new
// for every generation and every life of the worker, so a restarted worker's
// link never meets a byte of its previous life's.
std::string LinkName(int ps, int worker, int64_t generation, uint64_t worker_incarnation) {
  return absl::StrFormat("ps%d-link-w%d-g%d-%016x", ps, worker, generation, worker_incarnation);
}

// How often a link thread looks for a restarted worker's new incarnation.
constexpr absl::Duration kRelinkPoll = absl::Milliseconds(50);
// How often a serving ps calls its poll function.
constexpr absl::Duration kServePollPeriod = absl::Milliseconds(100);

std::string DescribePartitioning(const PartitionOptions& p) {
  std::string text;
  if (p.max_shard_bytes > 0) absl::StrAppend(&text, "max_shard_bytes ", p.max_shard_bytes);
  if (p.fixed_shards > 0) {
    absl::StrAppend(&text, text.empty() ? "" : ", ", "fixed_shards ", p.fixed_shards,
                    " (min_shard_bytes ", p.min_shard_bytes, ")");
  }
  return text.empty() ? "none" : text;
}

// The threads of step 3: one per worker, each opening and then serving its
// link. A link that breaks (its worker died) is opened again for the worker's
// next incarnation when it restarts and registers; one whose worker left is
// done.
class LinkThreads {
 public:
  void Start(Mesh& mesh, std::shared_ptr<ParameterShards> shards, const std::string& data_path) {
    const std::vector<TaskId> workers = mesh.cluster().TrainingWorkers();
    {
      absl::MutexLock lock(&mu_);
      running_ = static_cast<int>(workers.size());
    }
    for (int w = 0; w < static_cast<int>(workers.size()); ++w) {
      threads_.emplace_back([this, &mesh, shards, data_path, w, worker = workers[w]] {
        ServeWorker(mesh, *shards, data_path, w, worker);
        absl::MutexLock lock(&mu_);
        --running_;
      });
    }
  }

  // Step 5: joins the threads; those still serving after `grace` are ended.
  void Stop(Mesh& mesh, ParameterShards* shards, absl::Duration grace) {
    bool done;
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;  // threads waiting for a restarted worker give up
      done = mu_.AwaitWithTimeout(absl::Condition(
                                      +[](int* running) { return *running == 0; }, &running_),
                                  grace);
    }
    if (!done) {
      if (grace > absl::ZeroDuration()) {
        MESHTRAIN_LOG(WARNING) << "stopping with dense links open (a worker never left)";
      }
      if (shards != nullptr) shards->Stop();
      mesh.abort_signal().Abort(absl::UnavailableError(
          absl::StrCat(mesh.task().ToString(), " stopped while workers were still connected")));
    }
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  // Serves every life of training rank `w` in this generation, until it
  // leaves, the task aborts or Stop().
  void ServeWorker(Mesh& mesh, ParameterShards& shards, const std::string& data_path, int w,
                   const TaskId& worker) {
    uint64_t served = 0;
    while (!mesh.abort_signal().aborted()) {
      uint64_t incarnation = 0;
      {
        absl::MutexLock lock(&mu_);
        while (!stopping_ && !mesh.abort_signal().aborted()) {
          incarnation = mesh.peers().incarnation(worker);
          if (incarnation != 0 && incarnation != served) break;
          mu_.AwaitWithTimeout(absl::Condition(&stopping_), kRelinkPoll);
        }
        if (stopping_ || mesh.abort_signal().aborted()) return;
      }
      served = incarnation;
      const absl::Status status = Serve(mesh, shards, data_path, w, worker, incarnation);
      if (status.ok() || mesh.abort_signal().aborted()) return;
      MESHTRAIN_LOG(WARNING) << "dense link of " << worker.ToString() << " ended: " << status
                             << "; serving it again when it restarts";
    }
  }

  static absl::Status Serve(Mesh& mesh, ParameterShards& shards, const std::string& data_path,
                            int w, const TaskId& worker, uint64_t incarnation) {
    MESHTRAIN_ASSIGN_OR_RETURN(
        std::unique_ptr<Transport> transport,
        mesh.CreateTransport({mesh.task(), worker}, data_path,
                             LinkName(shards.ps_index(), w, mesh.generation(), incarnation)));
    MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<DenseLinkServer> server,
                               DenseLinkServer::Create(&shards, w, std::move(transport)));
    return server->Serve();
  }

  absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

// The plan's ps tasks are this generation's members, in order.
absl::Status CheckPlanMembers(const PsPlan& plan, const std::vector<TaskId>& members) {
  std::vector<int> indices;
  for (const TaskId& t : members) indices.push_back(t.index);
  const std::vector<int> planned = plan.Tasks();
  if (planned != indices) {
    return absl::FailedPreconditionError(
        absl::StrCat("the chief's plan places variables on ps tasks [", absl::StrJoin(planned, ","),
                     "], this generation's are [", absl::StrJoin(indices, ","), "]"));
  }
  return absl::OkStatus();
}

// Elastic (docs/fault_tolerance.md 5.10): the chief's log line saying which
// partitions left the departed ps tasks, where they live now, and what is lost.
absl::Status DescribeMoves(const ClusterSpec& cluster, const std::vector<VariableSpec>& specs,
                           const PsJobOptions& options, const PsPlan& plan) {
  PlacementOptions all = options.placement;
  all.num_ps = cluster.num_tasks(kPsJob);
  MESHTRAIN_ASSIGN_OR_RETURN(Placement full, PlaceVariables(specs, all));
  std::vector<std::string> departed;
  for (int ps = 0; ps < all.num_ps; ++ps) {
    if (plan.SlotOf(ps) < 0) departed.push_back(absl::StrCat("ps:", ps));
  }
  std::vector<std::string> moved;
  for (const Partition& p : full.partitions()) {
    if (plan.SlotOf(p.ps) >= 0) continue;
    std::vector<std::string> now;
    for (const Partition& q : plan.placement.partitions()) {
      if (q.variable != p.variable) continue;
      if (q.row_begin < p.row_begin + p.rows && p.row_begin < q.row_begin + q.rows) {
        now.push_back(absl::StrCat("ps:", plan.TaskOf(q.ps)));
      }
    }
    std::sort(now.begin(), now.end());
    now.erase(std::unique(now.begin(), now.end()), now.end());
    moved.push_back(absl::StrCat(specs[p.variable].name, " part ", p.index, " (rows ", p.row_begin,
                                 "..", p.row_begin + p.rows, ", ", p.bytes, " bytes) ps:", p.ps,
                                 " -> ", absl::StrJoin(now, "+")));
  }
  MESHTRAIN_LOG(WARNING) << "elastic: generation without " << absl::StrJoin(departed, ", ")
                         << ": placement recomputed over " << plan.placement.num_ps()
                         << " ps task(s); partitions moved: " << absl::StrJoin(moved, "; ")
                         << ". Every ps restores its partitions from the newest checkpoint: the "
                            "updates applied since that checkpoint are lost (the departed ps held "
                            "the only copy of its partitions; the others roll back to the same "
                            "cut)";
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PsPlan> BuildPsPlan(const std::vector<VariableSpec>& specs,
                                   const ClusterSpec& cluster,
                                   const std::vector<TaskId>& ps_members,
                                   const PsJobOptions& options) {
  if (ps_members.empty()) {
    return absl::FailedPreconditionError("parameter_server: no ps task is a member of the cluster");
  }
  PsPlan plan;
  plan.specs = specs;
  PlacementOptions placement = options.placement;
  placement.num_ps = static_cast<int>(ps_members.size());
  MESHTRAIN_ASSIGN_OR_RETURN(plan.placement, PlaceVariables(specs, placement));
  for (const TaskId& ps : ps_members) plan.ps_tasks.push_back(ps.index);
  plan.optimizer = options.optimizer;
  plan.seed = options.seed;
  plan.rules = options.rules;
  plan.rules.num_workers = cluster.num_training_workers();
  MESHTRAIN_RETURN_IF_ERROR(ValidateUpdateRules(plan.rules));
  plan.data_path = options.data_path.empty() ? "auto" : options.data_path;
  plan.wire_dtype = options.wire_dtype;
  return plan;
}

absl::StatusOr<std::unique_ptr<PsClient>> ConnectToParameterServers(
    Mesh& mesh, const std::vector<VariableSpec>& specs, const PsJobOptions& options) {
  const ClusterSpec& cluster = mesh.cluster();
  const absl::Time deadline = absl::Now() + options.startup_timeout;
  CoordinationClient& coordination = mesh.coordination();
  PsPlan plan;
  const std::vector<TaskId> members = mesh.PsMembers();
  if (mesh.is_chief()) {
    MESHTRAIN_ASSIGN_OR_RETURN(plan, BuildPsPlan(specs, cluster, members, options));
    if (static_cast<int>(members.size()) < cluster.num_tasks(kPsJob)) {
      MESHTRAIN_RETURN_IF_ERROR(DescribeMoves(cluster, specs, options, plan));
    }
    std::printf("placement: %s over %d ps task(s), partitioning: %s\n%s\n",
                std::string(PlacementPolicyName(options.placement.policy)).c_str(),
                plan.placement.num_ps(),
                DescribePartitioning(options.placement.partitioning).c_str(),
                plan.placement.Describe(plan.specs, plan.ps_tasks).c_str());
    std::fflush(stdout);
    MESHTRAIN_RETURN_IF_ERROR(coordination.KvSet(PlanKey(mesh.generation()), plan.ToJson()));
  } else {
    MESHTRAIN_ASSIGN_OR_RETURN(std::string text,
                               coordination.KvGet(PlanKey(mesh.generation()), deadline));
    MESHTRAIN_ASSIGN_OR_RETURN(plan, PsPlan::FromJson(text));
    MESHTRAIN_RETURN_IF_ERROR(plan.CheckModel(specs));
  }
  MESHTRAIN_RETURN_IF_ERROR(CheckPlanMembers(plan, members));
  const int num_ps = plan.placement.num_ps();
  PsClientOptions client;
  client.worker = mesh.config().worker_rank();
  client.abort = &mesh.abort_signal();
  client.timeout = options.request_timeout;
  client.channels = mesh.channel_options();
  for (int ps = 0; ps < num_ps; ++ps) {
    const TaskId task{std::string(kPsJob), plan.TaskOf(ps)};
    absl::Status ready = coordination.KvGet(ReadyKey(mesh.generation(), ps), deadline).status();
    if (!ready.ok()) {
      return Annotate(ready, absl::StrCat("waiting for ", DescribeTask(cluster, task),
                                          " to create its variables"));
    }
    client.ps_addresses.push_back(cluster.address(task));
    client.ps_names.push_back(DescribeTask(cluster, task));
    if (plan.data_path != "grpc") {
      MESHTRAIN_ASSIGN_OR_RETURN(
          std::unique_ptr<Transport> link,
          mesh.CreateTransport({task, mesh.task()}, plan.data_path,
                               LinkName(ps, client.worker, mesh.generation(), mesh.incarnation())));
      client.dense_links.push_back(std::move(link));
    }
  }
  client.plan = std::move(plan);
  return PsClient::Create(std::move(client));
}

absl::Status ServeParameterServer(Mesh& mesh, PsService& service, absl::Duration startup_timeout,
                                  const std::function<absl::Status()>& poll) {
  CoordinationClient& coordination = mesh.coordination();
  MESHTRAIN_ASSIGN_OR_RETURN(std::string text, coordination.KvGet(PlanKey(mesh.generation()),
                                                                  absl::Now() + startup_timeout));
  MESHTRAIN_ASSIGN_OR_RETURN(PsPlan plan, PsPlan::FromJson(text));
  MESHTRAIN_RETURN_IF_ERROR(CheckPlanMembers(plan, mesh.PsMembers()));
  // The placement slot this task holds (its index unless ps tasks departed).
  const int index = plan.SlotOf(mesh.task().index);
  if (index < 0) {
    return absl::FailedPreconditionError(absl::StrCat("the chief's plan for generation ",
                                                      mesh.generation(), " places nothing on ",
                                                      mesh.task().ToString()));
  }
  const absl::Time start = absl::Now();
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<ParameterShards> created,
                             ParameterShards::Create(plan, index, &mesh.abort_signal()));
  std::shared_ptr<ParameterShards> shards(std::move(created));
  const PsStats initial = shards->stats();
  MESHTRAIN_LOG(INFO) << mesh.task().ToString() << " holds " << initial.partitions
                      << " partition(s), " << initial.value_bytes << " bytes of values and "
                      << initial.slot_bytes << " of optimizer slots (initialised in "
                      << absl::FormatDuration(absl::Now() - start) << ")";
  service.Activate(shards);
  MESHTRAIN_RETURN_IF_ERROR(coordination.KvSet(ReadyKey(mesh.generation(), index), "1"));

  LinkThreads links;
  if (plan.data_path != "grpc") links.Start(mesh, shards, plan.data_path);
  absl::Status status;
  while (true) {
    status = coordination.WaitForShutdown(poll ? absl::Now() + kServePollPeriod
                                               : absl::InfiniteFuture());
    if (status.ok() || mesh.abort_signal().aborted() || !absl::IsDeadlineExceeded(status)) break;
    status = poll();
    if (!status.ok()) break;
  }
  // After a shutdown request the workers have left or are leaving; after an
  // error nobody waits for them.
  links.Stop(mesh, shards.get(), status.ok() ? absl::Seconds(10) : absl::ZeroDuration());
  shards->Stop();
  service.Deactivate();
  const PsStats stats = shards->stats();
  MESHTRAIN_LOG(INFO) << mesh.task().ToString() << ": " << stats.counts.pushes << " pushes, "
                      << stats.counts.applied << " applied, " << stats.counts.dropped_stale
                      << " dropped as stale, " << stats.counts.dropped_warmup
                      << " dropped in warm-up, " << stats.counts.scaled
                      << " with a scaled learning rate, mean staleness "
                      << stats.counts.mean_staleness();
  return status;
}

}  // namespace meshtrain

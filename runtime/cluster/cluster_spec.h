// ClusterSpec: which tasks make up a cluster and where they listen, in TensorFlow's
// terms (jobs "chief", "worker", "ps", "evaluator", each a list of host:port), and
// TaskId, one task of it. ClusterConfig adds which task this process is. The
// launcher writes these types and the runtime reads them. Value types.
#ifndef MESHTRAIN_RUNTIME_CLUSTER_CLUSTER_SPEC_H_
#define MESHTRAIN_RUNTIME_CLUSTER_CLUSTER_SPEC_H_

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace meshtrain {

inline constexpr absl::string_view kChiefJob = "chief";
inline constexpr absl::string_view kWorkerJob = "worker";
inline constexpr absl::string_view kPsJob = "ps";
inline constexpr absl::string_view kEvaluatorJob = "evaluator";

struct TaskId {
  std::string job;
  int index = 0;

  std::string ToString() const;  // "worker:1"
  bool is_training_worker() const { return job == kChiefJob || job == kWorkerJob; }
  bool operator==(const TaskId& o) const { return job == o.job && index == o.index; }
  bool operator!=(const TaskId& o) const { return !(*this == o); }
  bool operator<(const TaskId& o) const;
};

class ClusterSpec {
 public:
  ClusterSpec() = default;
  // `jobs` maps a job name to its tasks' addresses ("host:port"), index order.
  explicit ClusterSpec(std::map<std::string, std::vector<std::string>> jobs)
      : jobs_(std::move(jobs)) {}

  bool has_job(absl::string_view job) const;
  int num_tasks(absl::string_view job) const;  // 0 for an absent job
  const std::vector<std::string>& addresses(absl::string_view job) const;
  // The task's address; the task must exist.
  const std::string& address(const TaskId& task) const;
  const std::map<std::string, std::vector<std::string>>& jobs() const { return jobs_; }

  // Every task, jobs in the order chief, worker, ps, evaluator.
  std::vector<TaskId> AllTasks() const;

  // Training workers are the chief (if any) then the workers, as in
  // MultiWorkerMirroredStrategy: their rank is their position in this list.
  std::vector<TaskId> TrainingWorkers() const;
  int num_training_workers() const;
  // `task`'s position in TrainingWorkers(), or -1 for ps and evaluator tasks.
  int TrainingRank(const TaskId& task) const;
  // The chief task, or worker:0 where no chief is listed.
  TaskId Chief() const;

 private:
  std::map<std::string, std::vector<std::string>> jobs_;
};

// A ClusterSpec plus this process's place in it, as TF_CONFIG carries them.
struct ClusterConfig {
  ClusterSpec cluster;
  TaskId task;
  std::string rpc_layer;    // "" (default: grpc with the fast same-host data path), "grpc", ...
  std::string environment;  // passed through ("cloud", ...), unused by meshtrain
  int trial = 0;            // TF_CONFIG task.trial; informational

  bool is_chief() const { return task == cluster.Chief(); }
  bool is_training_worker() const;  // chief or worker
  // Rank among TrainingWorkers(), or -1 for ps and evaluator.
  int worker_rank() const;
  // A single-process cluster (no TF_CONFIG): one worker, itself the chief, with
  // no address; such a process serves nothing and joins no mesh.
  static ClusterConfig Local();
  bool is_local() const { return local; }

  bool local = false;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CLUSTER_CLUSTER_SPEC_H_

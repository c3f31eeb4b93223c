#include "runtime/cluster/cluster_spec.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "runtime/base/check.h"

namespace meshtrain {
namespace {

constexpr absl::string_view kJobOrder[] = {kChiefJob, kWorkerJob, kPsJob, kEvaluatorJob};

int JobRank(absl::string_view job) {
  for (int i = 0; i < 4; ++i) {
    if (kJobOrder[i] == job) return i;
  }
  return 4;
}

}  // namespace

std::string TaskId::ToString() const { return absl::StrCat(job, ":", index); }

bool TaskId::operator<(const TaskId& o) const {
  return std::make_tuple(JobRank(job), job, index) <
         std::make_tuple(JobRank(o.job), o.job, o.index);
}

bool ClusterSpec::has_job(absl::string_view job) const { return jobs_.count(std::string(job)) > 0; }

int ClusterSpec::num_tasks(absl::string_view job) const {
  auto it = jobs_.find(std::string(job));
  return it == jobs_.end() ? 0 : static_cast<int>(it->second.size());
}

const std::vector<std::string>& ClusterSpec::addresses(absl::string_view job) const {
  static const std::vector<std::string>* empty = new std::vector<std::string>;
  auto it = jobs_.find(std::string(job));
  return it == jobs_.end() ? *empty : it->second;
}

const std::string& ClusterSpec::address(const TaskId& task) const {
  const auto& list = addresses(task.job);
  MESHTRAIN_CHECK(task.index >= 0 && task.index < static_cast<int>(list.size()))
      << "no task " << task.ToString();
  return list[task.index];
}

std::vector<TaskId> ClusterSpec::AllTasks() const {
  std::vector<TaskId> tasks;
  for (const auto& [job, addrs] : jobs_) {
    for (int i = 0; i < static_cast<int>(addrs.size()); ++i) tasks.push_back(TaskId{job, i});
  }
  std::sort(tasks.begin(), tasks.end());
  return tasks;
}

std::vector<TaskId> ClusterSpec::TrainingWorkers() const {
  std::vector<TaskId> tasks;
  for (int i = 0; i < num_tasks(kChiefJob); ++i) tasks.push_back(TaskId{std::string(kChiefJob), i});
  for (int i = 0; i < num_tasks(kWorkerJob); ++i)
    tasks.push_back(TaskId{std::string(kWorkerJob), i});
  return tasks;
}

int ClusterSpec::num_training_workers() const {
  return num_tasks(kChiefJob) + num_tasks(kWorkerJob);
}

int ClusterSpec::TrainingRank(const TaskId& task) const {
  const std::vector<TaskId> workers = TrainingWorkers();
  for (int i = 0; i < static_cast<int>(workers.size()); ++i) {
    if (workers[i] == task) return i;
  }
  return -1;
}

TaskId ClusterSpec::Chief() const {
  if (num_tasks(kChiefJob) > 0) return TaskId{std::string(kChiefJob), 0};
  return TaskId{std::string(kWorkerJob), 0};
}

bool ClusterConfig::is_training_worker() const {
  return task.job == kChiefJob || task.job == kWorkerJob;
}

int ClusterConfig::worker_rank() const { return cluster.TrainingRank(task); }

ClusterConfig ClusterConfig::Local() {
  ClusterConfig config;
  std::map<std::string, std::vector<std::string>> jobs;
  jobs[std::string(kWorkerJob)] = {"local"};
  config.cluster = ClusterSpec(std::move(jobs));
  config.task = TaskId{std::string(kWorkerJob), 0};
  config.local = true;
  return config;
}

}  // namespace meshtrain

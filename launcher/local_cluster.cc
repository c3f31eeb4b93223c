#include "launcher/local_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "launcher/flag_set.h"
#include "runtime/cluster/tf_config.h"
#include "training/preemption.h"

namespace meshtrain {

absl::StatusOr<ClusterSpec> MakeLocalCluster(const LocalClusterShape& shape) {
  if (shape.workers < 0 || shape.ps < 0 || (shape.workers == 0 && !shape.chief)) {
    return absl::InvalidArgumentError(
        "a local cluster needs at least one worker (--workers) or --chief");
  }
  std::map<std::string, int> counts = {{std::string(kChiefJob), shape.chief ? 1 : 0},
                                       {std::string(kWorkerJob), shape.workers},
                                       {std::string(kPsJob), shape.ps},
                                       {std::string(kEvaluatorJob), shape.evaluator ? 1 : 0}};
  std::vector<int> held;
  std::map<std::string, std::vector<std::string>> jobs;
  absl::Status status;
  for (const auto& [job, count] : counts) {
    for (int i = 0; i < count && status.ok(); ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = 0;
      socklen_t len = sizeof(addr);
      if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
          ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        status = absl::UnavailableError(
            absl::StrCat("no free port on 127.0.0.1: ", std::strerror(errno)));
        if (fd >= 0) ::close(fd);
        break;
      }
      held.push_back(fd);
      jobs[job].push_back(absl::StrCat("127.0.0.1:", ntohs(addr.sin_port)));
    }
  }
  for (int fd : held) ::close(fd);
  if (!status.ok()) return status;
  return ClusterSpec(std::move(jobs));
}

std::vector<ProcessSpec> MakeTaskProcesses(const ClusterSpec& cluster, const std::string& exe,
                                           const std::vector<std::string>& args, int max_restarts,
                                           const std::string& rpc_layer, bool elastic) {
  std::vector<ProcessSpec> specs;
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  const int pinned = cluster.num_training_workers() + cluster.num_tasks(kPsJob);
  int next_cpu = 0;
  for (const TaskId& task : cluster.AllTasks()) {
    ClusterConfig config;
    config.cluster = cluster;
    config.task = task;
    config.rpc_layer = rpc_layer;
    ProcessSpec spec;
    spec.name = task.ToString();
    spec.argv.push_back(exe);
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.env = {{"TF_CONFIG", ToTfConfigJson(config)}};
    spec.max_restarts = max_restarts;
    if (pinned <= cores && task.job != kEvaluatorJob) spec.cpu = next_cpu++;
    spec.restart_exit_codes = {kPreemptedExitCode};
    spec.final_exit_codes = {kUsageExitCode};
    // Nothing waits for the evaluator: its failure is its own; nor, elastic,
    // for a worker other than the chief.
    spec.optional = task.job == kEvaluatorJob ||
                    (elastic && task.is_training_worker() && task != cluster.Chief()) ||
                    (elastic && task.job == kPsJob && cluster.num_tasks(kPsJob) > 1);
    spec.completes_group = task == cluster.Chief();
    specs.push_back(std::move(spec));
  }
  return specs;
}

absl::StatusOr<std::string> SelfExecutable() {
  char path[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0)
    return absl::InternalError(absl::StrCat("readlink /proc/self/exe: ", std::strerror(errno)));
  return std::string(path, static_cast<size_t>(n));
}

}  // namespace meshtrain

#include "tests/unit/rpc/test_cluster.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace meshtrain::testing {
namespace {

// A socket bound to 127.0.0.1:0 and never listening: its port refuses connections.
int ReservePort(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return -1;
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace

TaskId Task(absl::string_view job, int index) { return TaskId{std::string(job), index}; }

TestCluster::TestCluster(const std::map<std::string, int>& jobs, const std::set<TaskId>& absent) {
  std::map<std::string, std::vector<std::string>> addresses;
  for (const auto& [job, count] : jobs) {
    for (int i = 0; i < count; ++i) {
      const TaskId task{job, i};
      int port = 0;
      if (absent.count(task) > 0) {
        const int fd = ReservePort(&port);
        EXPECT_GE(fd, 0) << "cannot reserve a port for " << task.ToString();
        reserved_fds_.push_back(fd);
      } else {
        auto server = Server::Create();
        EXPECT_TRUE(server.ok()) << server.status();
        auto bound = (*server)->Start("127.0.0.1:0");
        EXPECT_TRUE(bound.ok()) << bound.status();
        port = bound.ok() ? *bound : 0;
        servers_.emplace(task, std::move(*server));
      }
      addresses[job].push_back(absl::StrCat("127.0.0.1:", port));
    }
  }
  spec_ = ClusterSpec(std::move(addresses));
}

TestCluster::~TestCluster() {
  for (int fd : reserved_fds_) close(fd);
}

MeshOptions TestCluster::Options(const TaskId& task, const TestSettings& settings) const {
  MeshOptions options;
  options.config.cluster = spec_;
  options.config.task = task;
  options.startup_timeout = settings.startup;
  options.heartbeat_interval = settings.heartbeat_interval;
  options.heartbeat_timeout = settings.heartbeat_timeout;
  options.grpc_max_piece_bytes = settings.grpc_max_piece_bytes;
  options.independent_tasks = settings.independent_tasks;
  options.rpc_timeout = absl::Seconds(10);
  options.bind_host = "127.0.0.1";
  return options;
}

std::unique_ptr<Mesh> TestCluster::MakeMesh(const TaskId& task, const TestSettings& settings) {
  MeshOptions options = Options(task, settings);
  auto it = servers_.find(task);
  if (it != servers_.end()) options.server = std::move(it->second);
  auto mesh = Mesh::Create(std::move(options));
  EXPECT_TRUE(mesh.ok()) << mesh.status();
  return mesh.ok() ? std::move(*mesh) : nullptr;
}

void TestCluster::ReleasePort(const TaskId& task) {
  auto it = servers_.find(task);
  if (it != servers_.end() && it->second != nullptr) it->second->Stop();
  servers_.erase(task);
}

std::vector<absl::Status> StartAll(const std::vector<Mesh*>& meshes) {
  std::vector<absl::Status> statuses(meshes.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < meshes.size(); ++i) {
    threads.emplace_back([&, i] { statuses[i] = meshes[i]->Start(); });
  }
  for (std::thread& t : threads) t.join();
  return statuses;
}

}  // namespace meshtrain::testing

// Where a task's listening sockets bind (docs/mesh.md, issue 20 item 3): a task
// whose ClusterSpec host is loopback listens on that host only, for gRPC and
// for the tcp data path; MeshOptions::bind_host (--bind-host) overrides. The
// sockets are found in /proc/net/tcp{,6} by the inodes of this process's fds.
#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/rpc/fast_data_paths.h"
#include "runtime/rpc/mesh.h"
#include "tests/unit/rpc/test_cluster.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::Task;
using ::meshtrain::testing::TestCluster;

struct Listening {
  std::string address;  // as /proc writes it: hex, IPv4 in network order reversed
  int port = 0;
};

std::set<std::string> SocketInodesOfThisProcess() {
  std::set<std::string> inodes;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return inodes;
  while (dirent* entry = readdir(dir)) {
    char target[256];
    const std::string path = absl::StrCat("/proc/self/fd/", entry->d_name);
    const ssize_t n = readlink(path.c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    const std::string link(target, n);
    if (absl::StartsWith(link, "socket:[")) inodes.insert(link.substr(8, link.size() - 9));
  }
  closedir(dir);
  return inodes;
}

// This process's TCP sockets in state LISTEN.
std::vector<Listening> ListeningSockets() {
  const std::set<std::string> mine = SocketInodesOfThisProcess();
  std::vector<Listening> result;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode;
      if (state != "0A" || !mine.contains(inode)) continue;
      const size_t colon = local.find(':');
      Listening l;
      l.address = local.substr(0, colon);
      int port = 0;
      if (absl::SimpleHexAtoi(local.substr(colon + 1), &port)) l.port = port;
      result.push_back(l);
    }
  }
  return result;
}

// 127.0.0.1 as IPv4 or as an IPv4-mapped IPv6 address.
bool IsLoopback127(const std::string& address) {
  return address == "0100007F" || address == "0000000000000000FFFF00000100007F";
}

bool IsAnyAddress(const std::string& address) {
  return address.find_first_not_of('0') == std::string::npos;
}

// A mesh for worker `index` that binds on its own; `bind_host` "" leaves
// MeshOptions' default (TestCluster names 127.0.0.1).
std::unique_ptr<Mesh> MeshBoundOn(TestCluster& cluster, int index, const std::string& bind_host) {
  cluster.ReleasePort(Task("worker", index));
  MeshOptions options = cluster.Options(Task("worker", index));
  options.bind_host = bind_host.empty() ? MeshOptions().bind_host : bind_host;
  options.host_identity = absl::StrCat("host-", index);  // no shm: the tcp data path
  EXPECT_TRUE(RegisterFastDataPaths(options.data_paths).ok());
  auto mesh = Mesh::Create(std::move(options));
  EXPECT_TRUE(mesh.ok()) << mesh.status();
  return mesh.ok() ? *std::move(mesh) : nullptr;
}

std::vector<Listening> OnPort(int port) {
  std::vector<Listening> found;
  for (const Listening& l : ListeningSockets()) {
    if (l.port == port) found.push_back(l);
  }
  return found;
}

TEST(BindHostTest, ALoopbackTaskListensOnLoopbackOnly) {
  TestCluster cluster({{"worker", 2}});
  std::vector<std::unique_ptr<Mesh>> meshes;
  for (int r = 0; r < 2; ++r) meshes.push_back(MeshBoundOn(cluster, r, ""));
  ASSERT_TRUE(meshes[0] != nullptr && meshes[1] != nullptr);
  for (const absl::Status& s : testing::StartAll({meshes[0].get(), meshes[1].get()})) {
    ASSERT_TRUE(s.ok()) << s;
  }
  std::set<int> grpc_ports;
  for (const auto& mesh : meshes) {
    grpc_ports.insert(mesh->port());
    const std::vector<Listening> found = OnPort(mesh->port());
    ASSERT_FALSE(found.empty()) << "nothing of this process listens on " << mesh->port();
    for (const Listening& l : found) EXPECT_TRUE(IsLoopback127(l.address)) << l.address;
  }

  // The tcp data path: rank 0 listens, then waits in the exchange for rank 1.
  const std::vector<TaskId> workers = cluster.spec().TrainingWorkers();
  absl::StatusOr<std::unique_ptr<Transport>> first;
  std::thread rank0([&] { first = meshes[0]->CreateTransport(workers, "tcp", "t"); });
  std::vector<Listening> data_listeners;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (data_listeners.empty() && absl::Now() < deadline) {
    for (const Listening& l : ListeningSockets()) {
      if (!grpc_ports.contains(l.port)) data_listeners.push_back(l);
    }
    if (data_listeners.empty()) absl::SleepFor(absl::Milliseconds(1));  // polls, with a deadline
  }
  absl::StatusOr<std::unique_ptr<Transport>> second =
      meshes[1]->CreateTransport(workers, "tcp", "t");
  rank0.join();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_FALSE(data_listeners.empty()) << "the tcp data path's listener was never seen";
  for (const Listening& l : data_listeners) EXPECT_TRUE(IsLoopback127(l.address)) << l.address;
}

TEST(BindHostTest, BindHostOverridesTheDefault) {
  TestCluster cluster({{"worker", 1}});
  std::unique_ptr<Mesh> mesh = MeshBoundOn(cluster, 0, "0.0.0.0");
  ASSERT_TRUE(mesh != nullptr);
  ASSERT_TRUE(mesh->Start().ok());
  const std::vector<Listening> found = OnPort(mesh->port());
  ASSERT_FALSE(found.empty());
  for (const Listening& l : found) EXPECT_TRUE(IsAnyAddress(l.address)) << l.address;
}

}  // namespace
}  // namespace meshtrain

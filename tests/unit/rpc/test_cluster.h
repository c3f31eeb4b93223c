// Test support for runtime/rpc: a cluster of meshes inside one test process,
// every task on 127.0.0.1 at a port picked by binding port 0 (never a fixed
// port). Tasks marked absent get a port that is bound but not listening, so
// nothing answers there for the life of the TestCluster. Not thread-safe.
#ifndef MESHTRAIN_TESTS_UNIT_RPC_TEST_CLUSTER_H_
#define MESHTRAIN_TESTS_UNIT_RPC_TEST_CLUSTER_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/rpc/mesh.h"
#include "runtime/rpc/server.h"

namespace meshtrain::testing {

// Short settings so that the suite runs in seconds.
struct TestSettings {
  absl::Duration startup = absl::Seconds(20);
  absl::Duration heartbeat_interval = absl::Milliseconds(100);
  absl::Duration heartbeat_timeout = absl::Seconds(1);
  size_t grpc_max_piece_bytes = kDefaultGrpcPieceBytes;
  std::set<TaskId> independent_tasks;
};

class TestCluster {
 public:
  // `jobs`: job name -> number of tasks. `absent` tasks never get a server.
  explicit TestCluster(const std::map<std::string, int>& jobs, const std::set<TaskId>& absent = {});
  ~TestCluster();

  const ClusterSpec& spec() const { return spec_; }
  std::string address(const TaskId& task) const { return spec_.address(task); }

  // A mesh for `task`, with the server started for it (two-phase start).
  std::unique_ptr<Mesh> MakeMesh(const TaskId& task, const TestSettings& settings = {});
  // Options for `task` without a server: Start() binds the ClusterSpec port,
  // once ReleasePort(task) gave it back.
  MeshOptions Options(const TaskId& task, const TestSettings& settings = {}) const;
  void ReleasePort(const TaskId& task);

 private:
  ClusterSpec spec_;
  std::map<TaskId, std::unique_ptr<Server>> servers_;
  std::vector<int> reserved_fds_;
};

// Starts every mesh at once (each Start() blocks until all joined).
std::vector<absl::Status> StartAll(const std::vector<Mesh*>& meshes);

TaskId Task(absl::string_view job, int index);

}  // namespace meshtrain::testing

#endif  // MESHTRAIN_TESTS_UNIT_RPC_TEST_CLUSTER_H_

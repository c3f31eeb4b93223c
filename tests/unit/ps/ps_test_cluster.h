// Test support for runtime/ps: variable specs, checkpoints of shards, and the ps tasks of a plan
// inside the test process, each a ParameterShards behind a PsService (confined to
// the cluster's temporary model directory) on its own gRPC server on
// 127.0.0.1 (port 0: a free one), as a ps task serves them. Clients reach them
// over gRPC, or over in-process dense links each served by a thread, as a ps
// task's link threads do. Not thread-safe; clients are used from any thread.
#ifndef MESHTRAIN_TESTS_UNIT_PS_PS_TEST_CLUSTER_H_
#define MESHTRAIN_TESTS_UNIT_PS_PS_TEST_CLUSTER_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtime/base/abort_signal.h"
#include "runtime/ps/parameter_shards.h"
#include "runtime/ps/ps_client.h"
#include "runtime/ps/ps_plan.h"
#include "runtime/ps/ps_service.h"
#include "runtime/rpc/server.h"
#include "tests/unit/checkpoint/temp_dir.h"

namespace meshtrain::testing {

// A float32 variable initialised uniform in [-0.5, 0.5].
VariableSpec Spec(std::string name, Shape shape, bool sparse = false);

// Writes a Snapshot() of each of `shards` as one part (as each ps task's
// SaveShards would) and commits them as checkpoint `step` of `model_dir`;
// returns the checkpoint's directory. Failures are test failures.
std::string CommitShards(const std::string& model_dir, int64_t step,
                         const std::vector<const ParameterShards*>& shards);

class PsTestCluster {
 public:
  explicit PsTestCluster(const PsPlan& plan);
  ~PsTestCluster();

  ParameterShards& shards(int ps) { return *shards_[ps]; }
  // The model directory every ps service saves into and restores from (a
  // fresh temporary directory, removed with the cluster).
  const std::string& model_dir() const { return model_dir_.path(); }
  std::string address(int ps) const;

  // A client for training rank `worker`; dense tensors over in-process links
  // when `links`, else over gRPC.
  std::unique_ptr<PsClient> Client(int worker, bool links);

 private:
  PsPlan plan_;
  TempDir model_dir_;
  AbortSignal abort_;  // raised at teardown to end link threads whose worker never left
  std::vector<std::unique_ptr<PsService>> services_;
  std::vector<std::shared_ptr<ParameterShards>> shards_;
  std::vector<std::unique_ptr<Server>> servers_;
  std::vector<std::thread> link_threads_;
};

}  // namespace meshtrain::testing

#endif  // MESHTRAIN_TESTS_UNIT_PS_PS_TEST_CLUSTER_H_

#include "tests/unit/ps/ps_test_cluster.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/checkpoint/checkpoint_commit.h"
#include "runtime/ps/dense_link.h"
#include "runtime/transport/in_process_transport.h"

namespace meshtrain::testing {

VariableSpec Spec(std::string name, Shape shape, bool sparse) {
  VariableSpec spec;
  spec.name = std::move(name);
  spec.shape = std::move(shape);
  spec.initializer = *Initializer::Parse("uniform:0.5");
  spec.sparse = sparse;
  return spec;
}

std::string CommitShards(const std::string& model_dir, int64_t step,
                         const std::vector<const ParameterShards*>& shards) {
  FileSystem& fs = DefaultFileSystem();
  absl::StatusOr<std::string> dir = PrepareCheckpointDir(fs, model_dir, step);
  EXPECT_TRUE(dir.ok()) << dir.status();
  if (!dir.ok()) return "";
  std::vector<PartRecord> parts;
  Manifest manifest;
  manifest.step = step;
  for (size_t i = 0; i < shards.size(); ++i) {
    const CheckpointSnapshot snapshot = shards[i]->Snapshot();
    manifest.slot_names = snapshot.slot_names;
    absl::StatusOr<PartRecord> part =
        WriteSnapshotPart(fs, *dir, absl::StrCat("part-", i, ".safetensors"), snapshot);
    EXPECT_TRUE(part.ok()) << part.status();
    if (part.ok()) parts.push_back(std::move(*part));
  }
  const absl::Status committed = CommitCheckpoint(fs, model_dir, manifest, parts, 0);
  EXPECT_TRUE(committed.ok()) << committed;
  return *dir;
}

PsTestCluster::PsTestCluster(const PsPlan& plan) : plan_(plan) {
  for (int ps = 0; ps < plan.placement.num_ps(); ++ps) {
    absl::StatusOr<std::unique_ptr<ParameterShards>> shards =
        ParameterShards::Create(plan, ps, &abort_);
    EXPECT_TRUE(shards.ok()) << shards.status();
    shards_.push_back(std::move(*shards));
    services_.push_back(std::make_unique<PsService>(PsServiceOptions{.model_dir = model_dir()}));
    services_.back()->Activate(shards_.back());
    ServerOptions options;
    options.services.push_back(services_.back()->grpc_service());
    std::unique_ptr<Server> server = *Server::Create(options);
    absl::StatusOr<int> port = server->Start("127.0.0.1:0");
    EXPECT_TRUE(port.ok()) << port.status();
    servers_.push_back(std::move(server));
  }
}

PsTestCluster::~PsTestCluster() {
  abort_.Abort(absl::CancelledError("test over"));
  for (std::thread& t : link_threads_) t.join();
  for (auto& server : servers_) server->Stop();
}

std::string PsTestCluster::address(int ps) const {
  return absl::StrCat("127.0.0.1:", servers_[ps]->port());
}

std::unique_ptr<PsClient> PsTestCluster::Client(int worker, bool links) {
  PsClientOptions options;
  options.plan = plan_;
  options.worker = worker;
  options.timeout = absl::Seconds(60);
  for (int ps = 0; ps < plan_.placement.num_ps(); ++ps) {
    options.ps_addresses.push_back(address(ps));
    options.ps_names.push_back(absl::StrCat("ps:", ps, " (", address(ps), ")"));
    if (!links) continue;
    std::vector<std::unique_ptr<Transport>> pair = CreateInProcessMesh(2, &abort_);
    ParameterShards* shards = shards_[ps].get();
    link_threads_.emplace_back([shards, worker, transport = std::move(pair[0])]() mutable {
      absl::StatusOr<std::unique_ptr<DenseLinkServer>> server =
          DenseLinkServer::Create(shards, worker, std::move(transport));
      if (server.ok()) (void)(*server)->Serve();
    });
    options.dense_links.push_back(std::move(pair[1]));
  }
  absl::StatusOr<std::unique_ptr<PsClient>> client = PsClient::Create(std::move(options));
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

}  // namespace meshtrain::testing

#include "runtime/rpc/data_path.h"

#include <thread>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/rpc/mesh.h"
#include "tests/unit/rpc/test_cluster.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::StartAll;
using ::meshtrain::testing::Task;
using ::meshtrain::testing::TestCluster;

DataPathFactory Unused() {
  return [](const DataPathContext&) -> absl::StatusOr<std::unique_ptr<Transport>> {
    return absl::UnimplementedError("not called by ChooseDataPath");
  };
}

TEST(DataPathTest, ChoiceFollowsHostsAndWhatIsRegistered) {
  DataPathRegistry none;
  DataPathRegistry both;
  ASSERT_TRUE(both.Register(kSharedMemoryDataPath, Unused()).ok());
  ASSERT_TRUE(both.Register(kTcpDataPath, Unused()).ok());
  DataPathRegistry tcp_only;
  ASSERT_TRUE(tcp_only.Register(kTcpDataPath, Unused()).ok());
  const std::vector<std::string> one_host = {"h1", "h1"};
  const std::vector<std::string> two_hosts = {"h1", "h2"};

  EXPECT_EQ(ChooseDataPath("", one_host, none)->path, "grpc");
  EXPECT_EQ(ChooseDataPath("auto", one_host, both)->path, "shm");
  EXPECT_EQ(ChooseDataPath("", two_hosts, both)->path, "tcp");
  EXPECT_EQ(ChooseDataPath("auto", one_host, tcp_only)->path, "tcp");
  EXPECT_EQ(ChooseDataPath("grpc", one_host, both)->path, "grpc");
  EXPECT_EQ(ChooseDataPath("tcp", one_host, both)->path, "tcp");
  EXPECT_TRUE(absl::IsInvalidArgument(ChooseDataPath("shm", two_hosts, both).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ChooseDataPath("rdma", one_host, both).status()));

  EXPECT_TRUE(absl::IsInvalidArgument(both.Register("grpc", Unused())));
  EXPECT_EQ(both.Register("tcp", Unused()).code(), absl::StatusCode::kAlreadyExists);
}

TEST(DataPathTest, AutoMixesSharedMemoryAndTcpWhenAHostHoldsSeveralTasks) {
  DataPathRegistry all;
  ASSERT_TRUE(all.Register(kSharedMemoryDataPath, Unused()).ok());
  ASSERT_TRUE(all.Register(kTcpDataPath, Unused()).ok());
  ASSERT_TRUE(all.Register(kMixedDataPath, Unused()).ok());
  DataPathRegistry no_shm;
  ASSERT_TRUE(no_shm.Register(kTcpDataPath, Unused()).ok());
  ASSERT_TRUE(no_shm.Register(kMixedDataPath, Unused()).ok());
  DataPathRegistry no_mixed;
  ASSERT_TRUE(no_mixed.Register(kSharedMemoryDataPath, Unused()).ok());
  ASSERT_TRUE(no_mixed.Register(kTcpDataPath, Unused()).ok());
  const std::vector<std::string> two_by_two = {"a", "a", "b", "b"};
  const std::vector<std::string> one_per_host = {"a", "b", "c"};

  absl::StatusOr<DataPathChoice> choice = ChooseDataPath("auto", two_by_two, all);
  ASSERT_TRUE(choice.ok()) << choice.status();
  EXPECT_EQ(choice->path, "shm+tcp");
  EXPECT_EQ(choice->reason,
            "the group spans 2 hosts, 2 of them with several tasks: shared memory inside a host, "
            "tcp between hosts");
  choice = ChooseDataPath("", {"a", "b", "a"}, all);  // one host with two tasks is enough
  EXPECT_EQ(choice->path, "shm+tcp");
  EXPECT_TRUE(absl::StrContains(choice->reason, "2 hosts, 1 of them")) << choice->reason;
  EXPECT_EQ(ChooseDataPath("auto", {"a", "a", "a"}, all)->path, "shm");
  EXPECT_EQ(ChooseDataPath("auto", one_per_host, all)->path, "tcp");
  EXPECT_EQ(ChooseDataPath("auto", two_by_two, no_shm)->path, "tcp");
  EXPECT_EQ(ChooseDataPath("auto", two_by_two, no_mixed)->path, "tcp");
  // Named explicitly, each path is taken as it is.
  EXPECT_EQ(ChooseDataPath("tcp", two_by_two, all)->path, "tcp");
  EXPECT_EQ(ChooseDataPath("shm+tcp", one_per_host, all)->path, "shm+tcp");
  EXPECT_EQ(ChooseDataPath("shm+tcp", {"a", "a"}, all)->path, "shm+tcp");
  EXPECT_TRUE(absl::IsInvalidArgument(ChooseDataPath("shm+tcp", two_by_two, no_mixed).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ChooseDataPath("shm", two_by_two, all).status()));
}

// A transport that only says who made it; enough to see the seam dispatch.
class RecordingTransport final : public Transport {
 public:
  explicit RecordingTransport(DataPathContext context) : context_(std::move(context)) {}
  int rank() const override { return context_.rank; }
  int world_size() const override { return static_cast<int>(context_.group.size()); }
  std::string PeerName(int rank) const override { return context_.group[rank].ToString(); }
  absl::string_view kind() const override { return "recording"; }
  absl::Status SendRecv(const SendRecvOp&) override {
    return absl::UnimplementedError("recording transport");
  }
  const DataPathContext& context() const { return context_; }

 private:
  DataPathContext context_;
};

TEST(DataPathTest, MeshHandsAutoToARegisteredPathWithTheGroupsHosts) {
  TestCluster cluster({{"worker", 2}});
  std::vector<std::unique_ptr<Mesh>> meshes;
  for (int r = 0; r < 2; ++r) {
    cluster.ReleasePort(Task("worker", r));
    MeshOptions options = cluster.Options(Task("worker", r));
    options.host_identity = "same-host";
    ASSERT_TRUE(
        options.data_paths
            .Register(kSharedMemoryDataPath,
                      [](const DataPathContext& c) -> absl::StatusOr<std::unique_ptr<Transport>> {
                        // The set-up exchange a real path would do.
                        if (c.rank == 0) {
                          auto s = c.coordination->KvSet(c.name + "/segment", "seg-0");
                          if (!s.ok()) return s;
                        } else {
                          auto v = c.coordination->KvGet(c.name + "/segment", c.deadline);
                          if (!v.ok()) return v.status();
                        }
                        return std::make_unique<RecordingTransport>(c);
                      })
            .ok());
    auto mesh = Mesh::Create(std::move(options));
    ASSERT_TRUE(mesh.ok()) << mesh.status();
    meshes.push_back(std::move(*mesh));
  }
  for (const absl::Status& s : StartAll({meshes[0].get(), meshes[1].get()}))
    ASSERT_TRUE(s.ok()) << s;

  std::vector<std::unique_ptr<Transport>> transports(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      auto t = meshes[r]->CreateTransport(cluster.spec().TrainingWorkers(), "auto", "fast");
      ASSERT_TRUE(t.ok()) << t.status();
      transports[r] = std::move(*t);
    });
  }
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < 2; ++r) {
    auto* recording = dynamic_cast<RecordingTransport*>(transports[r].get());
    ASSERT_NE(recording, nullptr);
    EXPECT_EQ(recording->context().rank, r);
    EXPECT_EQ(recording->context().host_identities,
              (std::vector<std::string>{"same-host", "same-host"}));
  }
  // rpc_layer=grpc still gets the gRPC transport.
  auto grpc = meshes[0]->CreateTransport(cluster.spec().TrainingWorkers(), "grpc", "slow");
  ASSERT_TRUE(grpc.ok());
  EXPECT_EQ(dynamic_cast<RecordingTransport*>(grpc->get()), nullptr);
}

}  // namespace
}  // namespace meshtrain

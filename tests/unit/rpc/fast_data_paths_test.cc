// The fast data paths as Mesh::CreateTransport builds them, through the
// coordination service's key-value exchange, with workers that claim fake
// host identities so that one machine plays several hosts: "auto" then picks
// "shm+tcp", whose shm and tcp parts both connect (real segments, real sockets),
// the tcp part with TLS when the mesh has security.
#include "runtime/rpc/fast_data_paths.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "runtime/base/status_macros.h"
#include "runtime/rpc/mesh.h"
#include "runtime/security/certificates.h"
#include "tests/unit/rpc/test_cluster.h"
#include "tests/unit/transport/run_on_ranks.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::AsBytes;
using ::meshtrain::testing::RankData;
using ::meshtrain::testing::RunOnRanks;
using ::meshtrain::testing::Task;
using ::meshtrain::testing::TestCluster;

// Started meshes for the workers of `cluster`, worker r claiming hosts[r],
// with `security` (may be null: plain).
std::vector<std::unique_ptr<Mesh>> StartMeshes(TestCluster& cluster,
                                               const std::vector<std::string>& hosts,
                                               const MeshSecurity* security = nullptr) {
  std::vector<std::unique_ptr<Mesh>> meshes;
  std::vector<Mesh*> raw;
  for (int r = 0; r < static_cast<int>(hosts.size()); ++r) {
    cluster.ReleasePort(Task("worker", r));
    MeshOptions options = cluster.Options(Task("worker", r));
    options.host_identity = hosts[r];
    if (security != nullptr) options.security = *security;
    EXPECT_TRUE(RegisterFastDataPaths(options.data_paths).ok());
    auto mesh = Mesh::Create(std::move(options));
    EXPECT_TRUE(mesh.ok()) << mesh.status();
    if (!mesh.ok()) return {};
    meshes.push_back(*std::move(mesh));
    raw.push_back(meshes.back().get());
  }
  for (const absl::Status& s : testing::StartAll(raw)) EXPECT_TRUE(s.ok()) << s;
  return meshes;
}

// Each rank sends right while adding what comes from its left, three rounds.
absl::Status RingRounds(Transport& t) {
  const int n = t.world_size(), r = t.rank();
  const int right = (r + 1) % n, left = (r + n - 1) % n;
  const size_t length = (size_t{1} << 18) + 3;  // 1 MiB and 12 bytes
  std::vector<float> mine = RankData(r, length);
  for (int round = 0; round < 3; ++round) {
    std::vector<float> got = RankData(100 + round, length), expect = got;
    const std::vector<float> theirs = RankData(left, length);
    for (size_t i = 0; i < length; ++i) expect[i] += theirs[i];
    MESHTRAIN_RETURN_IF_ERROR(t.SendRecv({.send_to = right,
                                          .send = AsBytes(mine),
                                          .recv_from = left,
                                          .recv = AsBytes(got),
                                          .action = RecvAction::kAddFloat32,
                                          .deadline = absl::Now() + absl::Seconds(30)}));
    if (got != expect) return absl::InternalError(absl::StrCat("rank ", r, " round ", round));
  }
  return absl::OkStatus();
}

class MixedDataPathTest : public ::testing::TestWithParam<std::vector<std::string>> {};

TEST_P(MixedDataPathTest, AutoConnectsEachNeighbourOverItsPath) {
  const std::vector<std::string>& hosts = GetParam();
  const int n = static_cast<int>(hosts.size());
  TestCluster cluster({{"worker", n}});
  std::vector<std::unique_ptr<Mesh>> meshes = StartMeshes(cluster, hosts);
  ASSERT_EQ(static_cast<int>(meshes.size()), n);
  std::vector<std::unique_ptr<Transport>> transports(n);
  auto statuses = RunOnRanks(n, [&](int r) -> absl::Status {
    MESHTRAIN_ASSIGN_OR_RETURN(
        transports[r],
        meshes[r]->CreateTransport(cluster.spec().TrainingWorkers(), "auto", "gradients"));
    return absl::OkStatus();
  });
  for (const absl::Status& s : statuses) ASSERT_TRUE(s.ok()) << s;
  for (int r = 0; r < n; ++r) {
    EXPECT_EQ(transports[r]->kind(), "shm+tcp");
    EXPECT_EQ(transports[r]->PeerName((r + 1) % n),
              absl::StrCat("worker:", (r + 1) % n, " (",
                           cluster.address(Task("worker", (r + 1) % n)), ")"));
  }
  statuses = RunOnRanks(n, [&](int r) { return RingRounds(*transports[r]); });
  for (const absl::Status& s : statuses) EXPECT_TRUE(s.ok()) << s;
  for (int r = 0; r < n; ++r) {
    EXPECT_EQ(transports[r]->stats().bytes_sent, 3 * int64_t{4} * ((1 << 18) + 3)) << "rank " << r;
  }
}

// The mesh's security reaches the tcp part: its links handshake TLS with the
// cluster's certificate, encrypting or not, and move the same bytes.
TEST(FastDataPathsTlsTest, TcpPartHandshakesWithTheMeshSecurity) {
  absl::StatusOr<PemPair> ca = MakeCertificateAuthority(1);
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<PemPair> pair = MakeTaskCertificate(*ca, {"cluster", {}}, 1);
  ASSERT_TRUE(pair.ok()) << pair.status();
  for (bool encrypt : {true, false}) {
    absl::StatusOr<MeshSecurity> security = MeshSecurity::FromCredentials(
        {ca->cert_pem, pair->cert_pem, pair->key_pem, "test"}, encrypt);
    ASSERT_TRUE(security.ok()) << security.status();
    const std::vector<std::string> hosts = {"a", "a", "b", "b"};
    TestCluster cluster({{"worker", 4}});
    std::vector<std::unique_ptr<Mesh>> meshes = StartMeshes(cluster, hosts, &*security);
    ASSERT_EQ(meshes.size(), hosts.size());
    std::vector<std::unique_ptr<Transport>> transports(hosts.size());
    auto statuses = RunOnRanks(4, [&](int r) -> absl::Status {
      MESHTRAIN_ASSIGN_OR_RETURN(
          transports[r],
          meshes[r]->CreateTransport(cluster.spec().TrainingWorkers(), "auto", "gradients"));
      return RingRounds(*transports[r]);
    });
    for (const absl::Status& s : statuses)
      EXPECT_TRUE(s.ok()) << "encrypt " << encrypt << ": " << s;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Hosts, MixedDataPathTest,
    ::testing::Values(std::vector<std::string>{"a", "a", "b", "b"},   // every rank: shm and tcp
                      std::vector<std::string>{"a", "a", "b"},        // rank 2: tcp only
                      std::vector<std::string>{"a", "b", "a", "b"}),  // no shm neighbour at all
    [](const ::testing::TestParamInfo<std::vector<std::string>>& info) {
      return absl::StrJoin(info.param, "");
    });

}  // namespace
}  // namespace meshtrain

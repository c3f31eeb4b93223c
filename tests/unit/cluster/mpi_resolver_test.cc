#include "runtime/cluster/mpi_resolver.h"

#include <unistd.h>

#include <climits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/cluster/scoped_env.h"
#include "tests/unit/cluster/source_file.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Clears every variable the resolver reads, then sets the given ones; restores
// all of them at the end of the test.
class MpiEnvTest : public ::testing::Test {
 protected:
  MpiEnvTest() {
    for (const char* name : {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                             "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE", "PMI_RANK",
                             "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS", "MESHTRAIN_HOST"}) {
      cleared_.push_back(std::make_unique<ScopedEnv>(name, std::nullopt));
    }
  }
  void Set(const char* name, const std::string& value) { setenv(name, value.c_str(), 1); }
  void SetOpenMpi(const std::string& rank, const std::string& size, const std::string& local_rank,
                  const std::string& local_size) {
    Set("OMPI_COMM_WORLD_RANK", rank);
    Set("OMPI_COMM_WORLD_SIZE", size);
    Set("OMPI_COMM_WORLD_LOCAL_RANK", local_rank);
    Set("OMPI_COMM_WORLD_LOCAL_SIZE", local_size);
  }
  void ExpectBad(absl::StatusCode code, const std::string& needle) {
    absl::StatusOr<MpiPlacement> placement = MpiPlacementFromEnvironment();
    ASSERT_FALSE(placement.ok());
    EXPECT_EQ(placement.status().code(), code) << placement.status();
    EXPECT_THAT(std::string(placement.status().message()), StartsWith("MPI environment: "));
    EXPECT_THAT(std::string(placement.status().message()), HasSubstr(needle));
  }

 private:
  std::vector<std::unique_ptr<ScopedEnv>> cleared_;
};

TEST_F(MpiEnvTest, NotUnderMpi) {
  EXPECT_FALSE(RunningUnderMpi());
  ExpectBad(absl::StatusCode::kFailedPrecondition, "not started by mpirun");
}

TEST_F(MpiEnvTest, ReadsOpenMpi) {
  SetOpenMpi("3", "4", "1", "2");
  EXPECT_TRUE(RunningUnderMpi());
  absl::StatusOr<MpiPlacement> placement = MpiPlacementFromEnvironment();
  ASSERT_TRUE(placement.ok()) << placement.status();
  EXPECT_EQ(placement->rank, 3);
  EXPECT_EQ(placement->size, 4);
  EXPECT_EQ(placement->local_rank, 1);
  EXPECT_EQ(placement->local_size, 2);
}

TEST_F(MpiEnvTest, ReadsHydraAndAssumesAloneOnTheHostWithoutLocalVariables) {
  Set("PMI_RANK", "2");
  Set("PMI_SIZE", "3");
  EXPECT_TRUE(RunningUnderMpi());
  absl::StatusOr<MpiPlacement> placement = MpiPlacementFromEnvironment();
  ASSERT_TRUE(placement.ok()) << placement.status();
  EXPECT_EQ(placement->rank, 2);
  EXPECT_EQ(placement->size, 3);
  EXPECT_EQ(placement->local_rank, 0);
  EXPECT_EQ(placement->local_size, 1);

  Set("MPI_LOCALRANKID", "2");
  Set("MPI_LOCALNRANKS", "3");
  placement = MpiPlacementFromEnvironment();
  ASSERT_TRUE(placement.ok()) << placement.status();
  EXPECT_EQ(placement->local_rank, 2);
  EXPECT_EQ(placement->local_size, 3);
}

TEST_F(MpiEnvTest, RejectsBadValuesNamingTheVariable) {
  SetOpenMpi("x", "4", "0", "1");
  ExpectBad(absl::StatusCode::kInvalidArgument, "OMPI_COMM_WORLD_RANK='x' is not an integer");
  SetOpenMpi("4", "4", "0", "1");
  ExpectBad(absl::StatusCode::kInvalidArgument,
            "OMPI_COMM_WORLD_RANK=4 is out of range for OMPI_COMM_WORLD_SIZE=4 (ranks 0..3)");
  SetOpenMpi("-1", "4", "0", "1");
  ExpectBad(absl::StatusCode::kInvalidArgument, "OMPI_COMM_WORLD_RANK=-1 is out of range");
  SetOpenMpi("0", "0", "0", "1");
  ExpectBad(absl::StatusCode::kInvalidArgument, "OMPI_COMM_WORLD_SIZE=0 must be at least 1");
  SetOpenMpi("0", "2", "0", "3");
  ExpectBad(absl::StatusCode::kInvalidArgument, "OMPI_COMM_WORLD_LOCAL_SIZE=3 must be in 1..");
  SetOpenMpi("0", "2", "2", "2");
  ExpectBad(absl::StatusCode::kInvalidArgument,
            "OMPI_COMM_WORLD_LOCAL_RANK=2 is out of range for OMPI_COMM_WORLD_LOCAL_SIZE=2");
  SetOpenMpi("0", "2", "0", "1");
  unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  ExpectBad(absl::StatusCode::kInvalidArgument,
            "OMPI_COMM_WORLD_LOCAL_RANK is set but OMPI_COMM_WORLD_LOCAL_SIZE is not");
}

TEST_F(MpiEnvTest, RejectsRankWithoutSize) {
  Set("OMPI_COMM_WORLD_RANK", "0");
  EXPECT_FALSE(RunningUnderMpi());
  ExpectBad(absl::StatusCode::kInvalidArgument,
            "OMPI_COMM_WORLD_RANK is set but OMPI_COMM_WORLD_SIZE is not");
}

TEST_F(MpiEnvTest, HostForPeers) {
  EXPECT_EQ(MpiHostForPeers(MpiPlacement{1, 4, 1, 4}), "127.0.0.1");
  char name[HOST_NAME_MAX + 1] = {};
  ASSERT_EQ(gethostname(name, sizeof(name) - 1), 0);
  EXPECT_EQ(MpiHostForPeers(MpiPlacement{1, 4, 1, 2}), name);
  Set("MESHTRAIN_HOST", "10.1.2.3");
  EXPECT_EQ(MpiHostForPeers(MpiPlacement{1, 4, 1, 4}), "10.1.2.3");
  EXPECT_EQ(MpiHostForPeers(MpiPlacement{1, 4, 1, 2}), "10.1.2.3");
}

TEST_F(MpiEnvTest, DocsListTheMessagesVerbatim) {
  const std::string doc = ReadSourceFile("docs/tf_config.md");
  ASSERT_FALSE(doc.empty());
  std::vector<absl::Status> errors;
  errors.push_back(MpiPlacementFromEnvironment().status());
  Set("OMPI_COMM_WORLD_RANK", "0");
  errors.push_back(MpiPlacementFromEnvironment().status());
  Set("OMPI_COMM_WORLD_SIZE", "two");
  errors.push_back(MpiPlacementFromEnvironment().status());
  Set("OMPI_COMM_WORLD_SIZE", "0");
  errors.push_back(MpiPlacementFromEnvironment().status());
  Set("OMPI_COMM_WORLD_SIZE", "2");
  Set("OMPI_COMM_WORLD_RANK", "2");
  errors.push_back(MpiPlacementFromEnvironment().status());
  Set("OMPI_COMM_WORLD_RANK", "1");
  Set("OMPI_COMM_WORLD_LOCAL_RANK", "1");
  errors.push_back(MpiPlacementFromEnvironment().status());
  Set("OMPI_COMM_WORLD_LOCAL_SIZE", "3");
  errors.push_back(MpiPlacementFromEnvironment().status());
  Set("OMPI_COMM_WORLD_LOCAL_SIZE", "1");
  errors.push_back(MpiPlacementFromEnvironment().status());
  const std::vector<std::string> two = {"10.0.0.1:2222", "10.0.0.2:2222"};
  errors.push_back(ClusterConfigFromRankAddresses(two, 0, -1).status());
  errors.push_back(ClusterConfigFromRankAddresses(two, 0, 2).status());
  errors.push_back(
      ClusterConfigFromRankAddresses(std::vector<std::string>{"10.0.0.1:2222", "node2"}, 0, 0)
          .status());
  errors.push_back(ClusterConfigFromRankAddresses(
                       std::vector<std::string>{"10.0.0.1:2222", "10.0.0.1:2222"}, 0, 0)
                       .status());
  for (const absl::Status& error : errors) {
    ASSERT_FALSE(error.ok());
    EXPECT_THAT(doc, HasSubstr("`" + std::string(error.message()) + "`"))
        << "docs/tf_config.md lacks: " << error.message();
  }
}

TEST(ClusterConfigFromRankAddressesTest, LastRanksAreParameterServers) {
  const std::vector<std::string> addresses = {"h:1", "h:2", "h:3", "h:4"};
  for (int rank = 0; rank < 4; ++rank) {
    absl::StatusOr<ClusterConfig> config = ClusterConfigFromRankAddresses(addresses, rank, 1);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->cluster.jobs(), (std::map<std::string, std::vector<std::string>>{
                                          {"worker", {"h:1", "h:2", "h:3"}}, {"ps", {"h:4"}}}));
    EXPECT_EQ(config->task, rank < 3 ? (TaskId{"worker", rank}) : (TaskId{"ps", 0}));
    EXPECT_EQ(config->is_chief(), rank == 0);
    EXPECT_EQ(config->cluster.address(config->task), addresses[rank]);
  }
}

TEST(ClusterConfigFromRankAddressesTest, NoParameterServers) {
  absl::StatusOr<ClusterConfig> config =
      ClusterConfigFromRankAddresses(std::vector<std::string>{"[::1]:7"}, 0, 0);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->cluster.has_job("ps"));
  EXPECT_EQ(config->task, (TaskId{"worker", 0}));
  EXPECT_TRUE(config->is_chief());
}

TEST(ClusterConfigFromRankAddressesTest, RejectsBadInputs) {
  const std::vector<std::string> two = {"h:1", "h:2"};
  EXPECT_THAT(ClusterConfigFromRankAddresses(two, 0, -1).status().message(),
              HasSubstr("num_ps -1 is negative"));
  absl::Status status = ClusterConfigFromRankAddresses(two, 0, 2).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      status.message(),
      "MPI cluster: num_ps 2 leaves no worker among 2 ranks; use at most 1 or start more ranks");
  status = ClusterConfigFromRankAddresses(std::vector<std::string>{"h:1", "h"}, 0, 0).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              StartsWith("MPI cluster: rank 1: address 'h' has no port"));
  status =
      ClusterConfigFromRankAddresses(std::vector<std::string>{"h:1", "h:2", "H:1"}, 0, 0).status();
  EXPECT_THAT(std::string(status.message()),
              StartsWith("MPI cluster: ranks 0 and 2 both reported address 'h:1'"));
}

// MPI in this process as a singleton (world size 1): MPI starts once per
// process, so everything that needs it is in this one test.
TEST(MpiSessionTest, SingletonGathersAndResolves) {
  absl::StatusOr<std::unique_ptr<MpiSession>> session = MpiSession::Init();
  ASSERT_TRUE(session.ok()) << session.status();
  MpiSession& mpi = **session;
  EXPECT_EQ(mpi.rank(), 0);
  EXPECT_EQ(mpi.size(), 1);

  absl::StatusOr<std::vector<std::string>> gathered = mpi.AllGather("hello");
  ASSERT_TRUE(gathered.ok()) << gathered.status();
  EXPECT_EQ(*gathered, std::vector<std::string>{"hello"});
  gathered = mpi.AllGather("");
  ASSERT_TRUE(gathered.ok()) << gathered.status();
  EXPECT_EQ(*gathered, std::vector<std::string>{""});

  absl::StatusOr<ClusterConfig> config = ClusterConfigFromMpi(mpi, "127.0.0.1:5000", 0);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cluster.addresses("worker"), std::vector<std::string>{"127.0.0.1:5000"});
  EXPECT_TRUE(config->is_chief());
  EXPECT_THAT(ClusterConfigFromMpi(mpi, "127.0.0.1:5000", 1).status().message(),
              HasSubstr("num_ps 1 leaves no worker among 1 rank"));

  absl::StatusOr<std::unique_ptr<MpiSession>> again = MpiSession::Init();
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ReadSourceFile("docs/tf_config.md"),
              HasSubstr("`" + std::string(again.status().message()) + "`"));
  session->reset();
  again = MpiSession::Init();
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("already finalized"));
}

}  // namespace
}  // namespace meshtrain

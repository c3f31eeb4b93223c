// The Slurm resolver and the choice of cluster source, on environments given
// as maps.
#include "runtime/cluster/slurm_resolver.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/cluster/cluster_source.h"
#include "tests/unit/cluster/source_file.h"

namespace meshtrain {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using Env = std::map<std::string, std::string>;

// A task of `srun -n 5` over node[01-02] with 3 + 2 tasks.
Env Step(int rank, int local_rank) {
  return {{"SLURM_JOB_ID", "42"},
          {"SLURM_STEP_ID", "0"},
          {"SLURM_PROCID", std::to_string(rank)},
          {"SLURM_LOCALID", std::to_string(local_rank)},
          {"SLURM_NTASKS", "5"},
          {"SLURM_STEP_NODELIST", "node[01-02]"},
          {"SLURM_JOB_NODELIST", "node[01-04]"},
          {"SLURM_STEP_TASKS_PER_NODE", "3,2"},
          {"SLURM_TASKS_PER_NODE", "1(x4)"}};
}

absl::StatusOr<ClusterConfig> Resolve(const Env& env, SlurmOptions options = {}) {
  absl::StatusOr<SlurmPlacement> placement = SlurmPlacementFromEnvironment(MapEnvironment(env));
  if (!placement.ok()) return placement.status();
  return ClusterConfigFromSlurm(*placement, options);
}

TEST(SlurmResolverTest, BlockDistributionAddressesAndRoles) {
  absl::StatusOr<ClusterConfig> config = Resolve(Step(4, 1));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(
      config->cluster.addresses("worker"),
      ElementsAre("node01:8888", "node01:8889", "node01:8890", "node02:8888", "node02:8889"));
  EXPECT_EQ(config->task, (TaskId{"worker", 4}));
  EXPECT_FALSE(config->cluster.has_job("chief"));
  EXPECT_EQ(config->cluster.Chief(), (TaskId{"worker", 0}));
}

TEST(SlurmResolverTest, PsAndEvaluatorTakeTheFirstRanksInTensorFlowsOrder) {
  SlurmOptions options;
  options.port_base = 2222;
  options.roles = {2, true};
  absl::StatusOr<ClusterConfig> config = Resolve(Step(0, 0), options);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->cluster.addresses("evaluator"), ElementsAre("node01:2222"));
  EXPECT_THAT(config->cluster.addresses("ps"), ElementsAre("node01:2223", "node01:2224"));
  EXPECT_THAT(config->cluster.addresses("worker"), ElementsAre("node02:2222", "node02:2223"));
  EXPECT_EQ(config->task, (TaskId{"evaluator", 0}));
  EXPECT_EQ(Resolve(Step(2, 2), options)->task, (TaskId{"ps", 1}));
  EXPECT_EQ(Resolve(Step(3, 0), options)->task, (TaskId{"worker", 0}));
  options.roles = {4, true};
  EXPECT_THAT(Resolve(Step(3, 0), options).status().message(), HasSubstr("leave no worker"));
}

TEST(SlurmResolverTest, FallsBackToTheJobVariables) {
  Env env = Step(1, 0);
  env.erase("SLURM_STEP_NODELIST");
  env.erase("SLURM_STEP_TASKS_PER_NODE");
  env["SLURM_NTASKS"] = "4";
  absl::StatusOr<ClusterConfig> config = Resolve(env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->cluster.addresses("worker"),
              ElementsAre("node01:8888", "node02:8888", "node03:8888", "node04:8888"));
  EXPECT_EQ(config->task, (TaskId{"worker", 1}));
}

TEST(SlurmResolverTest, ErrorsNameTheVariableAndTheValue) {
  struct Case {
    const char* variable;
    const char* value;
    const char* says;
  } cases[] = {
      {"SLURM_PROCID", "two", "SLURM_PROCID='two' is not a non-negative integer"},
      {"SLURM_PROCID", "5", "SLURM_PROCID=5 is out of range for SLURM_NTASKS=5"},
      {"SLURM_NTASKS", "6", "SLURM_NTASKS=6 but SLURM_STEP_TASKS_PER_NODE='3,2' adds up to 5"},
      {"SLURM_LOCALID", "x", "SLURM_LOCALID='x'"},
      {"SLURM_LOCALID", "", "SLURM_LOCALID is not set"},
      {"SLURM_STEP_NODELIST", "node[01-02", "SLURM_STEP_NODELIST: hostlist 'node[01-02'"},
      {"SLURM_STEP_NODELIST", "node01", "names 1"},
      {"SLURM_STEP_TASKS_PER_NODE", "3(x)", "SLURM_STEP_TASKS_PER_NODE: tasks per node '3(x)'"},
      {"SLURM_LOCALID", "0", "--distribution=block"},
  };
  for (const Case& c : cases) {
    Env env = Step(1, 1);
    env[c.variable] = c.value;
    absl::StatusOr<ClusterConfig> config = Resolve(env);
    ASSERT_FALSE(config.ok()) << c.variable << "=" << c.value;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(config.status().message(), HasSubstr(c.says));
    EXPECT_THAT(config.status().message(), HasSubstr("Slurm environment"));
  }
}

TEST(SlurmResolverTest, PortBaseMustLeaveRoomForEveryLocalRank) {
  SlurmOptions options;
  options.port_base = 65534;
  EXPECT_THAT(Resolve(Step(0, 0), options).status().message(), HasSubstr("1..65533"));
}

TEST(SlurmResolverTest, NotAStepIsAPreconditionNotAnError) {
  Env shell = {
      {"SLURM_JOB_ID", "42"}, {"SLURM_JOB_NODELIST", "node[01-02]"}, {"SLURM_NTASKS", "2"}};
  EXPECT_FALSE(RunningUnderSlurmStep(MapEnvironment(shell)));
  EXPECT_EQ(SlurmPlacementFromEnvironment(MapEnvironment(shell)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ClusterSourceTest, Precedence) {
  Env env = Step(2, 2);
  env["OMPI_COMM_WORLD_RANK"] = "2";
  env["OMPI_COMM_WORLD_SIZE"] = "5";
  env["RANK"] = "2";
  env["WORLD_SIZE"] = "5";
  env["TF_CONFIG"] = "{}";
  EXPECT_EQ(ChooseClusterSource(MapEnvironment(env)).source, ClusterSource::kTfConfig);
  env.erase("TF_CONFIG");
  ClusterSourceChoice choice = ChooseClusterSource(MapEnvironment(env));
  EXPECT_EQ(choice.source, ClusterSource::kSlurm);
  EXPECT_EQ(choice.reason,
            "cluster from Slurm (SLURM_PROCID=2, SLURM_NTASKS=5, SLURM_STEP_NODELIST=node[01-02]); "
            "TF_CONFIG is not set");
  env["OMPI_COMM_WORLD_SIZE"] = "8";  // mpirun inside an allocation
  EXPECT_EQ(ChooseClusterSource(MapEnvironment(env)).source, ClusterSource::kMpi);
  env.erase("SLURM_STEP_ID");  // the shell of sbatch: not a step
  choice = ChooseClusterSource(MapEnvironment(env));
  EXPECT_EQ(choice.source, ClusterSource::kMpi);
  EXPECT_THAT(choice.reason, HasSubstr("start tasks with srun"));
  env.erase("OMPI_COMM_WORLD_RANK");
  env["MASTER_ADDR"] = "10.0.0.1";
  env["MASTER_PORT"] = "29500";
  choice = ChooseClusterSource(MapEnvironment(env));
  EXPECT_EQ(choice.source, ClusterSource::kTorchrun);
  EXPECT_THAT(choice.reason, HasSubstr("RANK=2, WORLD_SIZE=5, MASTER_ADDR=10.0.0.1"));
  env.erase("WORLD_SIZE");
  choice = ChooseClusterSource(MapEnvironment(env));
  EXPECT_EQ(choice.source, ClusterSource::kLocal);
  EXPECT_THAT(choice.reason, HasSubstr("one process alone"));
}

TEST(SlurmResolverTest, DocsListEveryError) {
  const std::string doc = ReadSourceFile("docs/tf_config.md");
  ASSERT_FALSE(doc.empty());
  const std::pair<const char*, const char*> overrides[] = {
      {"SLURM_PROCID", "two"},
      {"SLURM_PROCID", "5"},
      {"SLURM_NTASKS", "0"},
      {"SLURM_NTASKS", "6"},
      {"SLURM_LOCALID", ""},
      {"SLURM_LOCALID", "0"},
      {"SLURM_STEP_NODELIST", ""},
      {"SLURM_STEP_NODELIST", "node[01-02"},
      {"SLURM_STEP_NODELIST", "node[02-01]"},
      {"SLURM_STEP_NODELIST", "node01"},
      {"SLURM_STEP_TASKS_PER_NODE", ""},
      {"SLURM_STEP_TASKS_PER_NODE", "3(x)"},
      {"SLURM_STEP_TASKS_PER_NODE", "0,5"},
  };
  for (const auto& [variable, value] : overrides) {
    Env env = Step(1, 1);
    env.erase("SLURM_JOB_NODELIST");
    env.erase("SLURM_TASKS_PER_NODE");
    env[variable] = value;
    const absl::Status status = Resolve(env).status();
    ASSERT_FALSE(status.ok()) << variable << "=" << value;
    EXPECT_THAT(doc, HasSubstr("`" + std::string(status.message()) + "`"));
  }
  SlurmOptions options;
  options.port_base = 65534;
  EXPECT_THAT(doc,
              HasSubstr("`" + std::string(Resolve(Step(1, 1), options).status().message()) + "`"));
  options = SlurmOptions();
  options.roles = {4, true};
  EXPECT_THAT(doc,
              HasSubstr("`" + std::string(Resolve(Step(1, 1), options).status().message()) + "`"));
}

}  // namespace
}  // namespace meshtrain

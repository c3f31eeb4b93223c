#include "runtime/cluster/tf_config.h"

#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/cluster/scoped_env.h"
#include "tests/unit/cluster/source_file.h"

namespace meshtrain {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

using Jobs = std::map<std::string, std::vector<std::string>>;

// Asserts `json` is rejected with a one-line kInvalidArgument that names
// `field` (the message starts "TF_CONFIG <field>:") and contains `needle`.
void ExpectRejected(const std::string& json, const std::string& field, const std::string& needle) {
  absl::StatusOr<ClusterConfig> config = ParseTfConfig(json);
  ASSERT_FALSE(config.ok()) << "accepted: " << json;
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << config.status();
  const std::string message(config.status().message());
  const std::string prefix = field.empty() ? "TF_CONFIG: " : "TF_CONFIG " + field + ": ";
  EXPECT_THAT(message, StartsWith(prefix)) << json;
  EXPECT_THAT(message, HasSubstr(needle)) << json;
  EXPECT_THAT(message, Not(HasSubstr("\n"))) << json;
}

// A TF_CONFIG with the given cluster object and task object (JSON text).
std::string TfConfig(const std::string& cluster, const std::string& task) {
  return "{\"cluster\": " + cluster + ", \"task\": " + task + "}";
}

const char kTwoWorkers[] = R"({"worker": ["localhost:2222", "localhost:2223"]})";

// ---- accepted ----

TEST(ParseTfConfigTest, WorkerOnlyClusterMakesWorkerZeroTheImplicitChief) {
  absl::StatusOr<ClusterConfig> config =
      ParseTfConfig(TfConfig(kTwoWorkers, R"({"type": "worker", "index": 1})"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cluster.jobs(), (Jobs{{"worker", {"localhost:2222", "localhost:2223"}}}));
  EXPECT_EQ(config->task, (TaskId{"worker", 1}));
  EXPECT_FALSE(config->is_chief());
  EXPECT_EQ(config->cluster.Chief(), (TaskId{"worker", 0}));
  EXPECT_EQ(config->worker_rank(), 1);
  EXPECT_FALSE(config->is_local());

  absl::StatusOr<ClusterConfig> zero =
      ParseTfConfig(TfConfig(kTwoWorkers, R"({"type": "worker", "index": 0})"));
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_TRUE(zero->is_chief());
}

TEST(ParseTfConfigTest, AcceptsEnvironmentRpcLayerTrialAndIgnoresUnknownKeys) {
  absl::StatusOr<ClusterConfig> config = ParseTfConfig(R"({
    "cluster": {"chief": ["h0:2222"], "worker": ["h1:2222", "h2:2222"], "ps": ["h3:2222"]},
    "task": {"type": "ps", "index": 0, "trial": 3, "cloud": "ignored"},
    "environment": "cloud",
    "rpc_layer": "grpc",
    "session_master": "ignored",
    "future_key": {"nested": [1, 2]}
  })");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(
      config->cluster.jobs(),
      (Jobs{{"chief", {"h0:2222"}}, {"worker", {"h1:2222", "h2:2222"}}, {"ps", {"h3:2222"}}}));
  EXPECT_EQ(config->task, (TaskId{"ps", 0}));
  EXPECT_EQ(config->trial, 3);
  EXPECT_EQ(config->environment, "cloud");
  EXPECT_EQ(config->rpc_layer, "grpc");
  EXPECT_EQ(config->cluster.Chief(), (TaskId{"chief", 0}));
  EXPECT_EQ(config->worker_rank(), -1);
  EXPECT_FALSE(config->is_training_worker());
}

TEST(ParseTfConfigTest, ChiefIsRankZeroAndWorkersFollow) {
  absl::StatusOr<ClusterConfig> config = ParseTfConfig(TfConfig(
      R"({"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]})", R"({"type": "worker", "index": 1})"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->worker_rank(), 2);
  EXPECT_EQ(config->cluster.num_training_workers(), 3);
  EXPECT_FALSE(config->is_chief());
}

TEST(ParseTfConfigTest, EvaluatorMayBeAbsentFromCluster) {
  absl::StatusOr<ClusterConfig> config =
      ParseTfConfig(TfConfig(kTwoWorkers, R"({"type": "evaluator", "index": 0})"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->task, (TaskId{"evaluator", 0}));
  EXPECT_FALSE(config->cluster.has_job("evaluator"));
  EXPECT_FALSE(config->is_training_worker());
  EXPECT_EQ(config->worker_rank(), -1);
}

TEST(ParseTfConfigTest, EvaluatorInCluster) {
  absl::StatusOr<ClusterConfig> config = ParseTfConfig(TfConfig(
      R"({"worker": ["h1:1"], "evaluator": ["h9:1"]})", R"({"type": "evaluator", "index": 0})"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cluster.address(config->task), "h9:1");
}

TEST(ParseTfConfigTest, AcceptsBracketedIpv6) {
  absl::StatusOr<ClusterConfig> config = ParseTfConfig(
      TfConfig(R"({"worker": ["[::1]:2222", "[::1]:2223"]})", R"({"type": "worker", "index": 1})"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cluster.address(config->task), "[::1]:2223");
}

TEST(ParseTfConfigTest, AcceptsIntegerStringsAsTensorFlowsIntDoes) {
  absl::StatusOr<ClusterConfig> config =
      ParseTfConfig(TfConfig(kTwoWorkers, R"({"type": "worker", "index": "1", "trial": "7"})"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->task.index, 1);
  EXPECT_EQ(config->trial, 7);
}

TEST(ParseTfConfigTest, EmptyTrialAndNullOptionalsMeanAbsent) {
  absl::StatusOr<ClusterConfig> config = ParseTfConfig(
      R"({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0, "trial": ""},
          "rpc_layer": null, "environment": null})");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->trial, 0);
  EXPECT_EQ(config->rpc_layer, "");
  EXPECT_EQ(config->environment, "");
}

// ---- rejected: the document ----

TEST(ParseTfConfigTest, RejectsInvalidJsonSayingWhere) {
  ExpectRejected(R"({"cluster": {"worker": ["a:1",]}})", "", "not valid JSON at byte 31: ");
  ExpectRejected("{'cluster': 1}", "", "not valid JSON at byte 2: ");
  ExpectRejected("{\"cluster\":\n {", "", "line 2, column 3");
  ExpectRejected("{\"cluster\"", "", "unexpected end of input");
}

TEST(ParseTfConfigTest, RejectsEmpty) {
  ExpectRejected("", "", "empty; set it to a JSON object");
  ExpectRejected(" \n\t", "", "empty; set it to a JSON object");
}

TEST(ParseTfConfigTest, RejectsNonObject) {
  ExpectRejected(R"(["worker"])", "", "expected a JSON object, got array [\"worker\"]");
  ExpectRejected("3", "", "expected a JSON object, got number 3");
}

// ---- rejected: cluster ----

TEST(ParseTfConfigTest, RejectsMissingCluster) {
  ExpectRejected(R"({"task": {"type": "worker", "index": 0}})", "cluster",
                 "missing; add \"cluster\"");
}

TEST(ParseTfConfigTest, RejectsClusterNotObject) {
  ExpectRejected(TfConfig(R"(["a:1"])", R"({"type": "worker", "index": 0})"), "cluster",
                 "expected an object mapping job names to address lists, got array [\"a:1\"]");
}

TEST(ParseTfConfigTest, RejectsUnknownJobNamingTheAllowedOnes) {
  ExpectRejected(
      TfConfig(R"({"worker": ["a:1"], "trainer": ["b:1"]})", R"({"type": "worker", "index": 0})"),
      "cluster", "unknown job type 'trainer'; allowed job types are chief, worker, ps, evaluator");
  ExpectRejected(TfConfig(R"({"master": ["a:1"]})", R"({"type": "master", "index": 0})"), "cluster",
                 "'master' is TensorFlow 1's name for the chief: rename it 'chief'");
}

TEST(ParseTfConfigTest, RejectsJobNotAList) {
  ExpectRejected(TfConfig(R"({"worker": "a:1"})", R"({"type": "worker", "index": 0})"),
                 "cluster.worker", "expected a list of \"host:port\" strings, got string \"a:1\"");
  ExpectRejected(TfConfig(R"({"worker": {"0": "a:1"}})", R"({"type": "worker", "index": 0})"),
                 "cluster.worker", "maps of index to address are not supported");
}

TEST(ParseTfConfigTest, RejectsEmptyJob) {
  ExpectRejected(TfConfig(R"({"worker": ["a:1"], "ps": []})", R"({"type": "worker", "index": 0})"),
                 "cluster.ps",
                 "is an empty list; list at least one \"host:port\" or remove the job");
}

TEST(ParseTfConfigTest, RejectsAddressNotAString) {
  ExpectRejected(TfConfig(R"({"worker": ["a:1", 2222]})", R"({"type": "worker", "index": 0})"),
                 "cluster.worker[1]", "expected a \"host:port\" string, got number 2222");
}

TEST(ParseTfConfigTest, RejectsBadAddressesNamingTheTask) {
  const std::string task = R"({"type": "worker", "index": 0})";
  ExpectRejected(TfConfig(R"({"worker": ["a:1", "localhost"]})", task), "cluster.worker[1]",
                 "address 'localhost' has no port; write it as host:port");
  ExpectRejected(TfConfig(R"({"worker": [":2222"]})", task), "cluster.worker[0]",
                 "address ':2222' has an empty host");
  ExpectRejected(TfConfig(R"({"worker": ["a:1"], "ps": ["b:http"]})", task), "cluster.ps[0]",
                 "port 'http' in address 'b:http' is not a number; ports must be 1..65535");
  ExpectRejected(TfConfig(R"({"worker": ["a:0"]})", task), "cluster.worker[0]",
                 "port 0 in address 'a:0' is out of range; ports must be 1..65535");
  ExpectRejected(TfConfig(R"({"worker": ["a:70000"]})", task), "cluster.worker[0]",
                 "port 70000 in address 'a:70000' is out of range; ports must be 1..65535");
  ExpectRejected(TfConfig(R"({"worker": ["::1:2222"]})", task), "cluster.worker[0]",
                 "write it as '[::1]:2222'");
}

TEST(ParseTfConfigTest, RejectsTwoChiefs) {
  ExpectRejected(TfConfig(R"({"chief": ["a:1", "b:1"]})", R"({"type": "chief", "index": 0})"),
                 "cluster.chief", "2 addresses, but a cluster has at most one chief");
}

TEST(ParseTfConfigTest, RejectsTwoEvaluators) {
  ExpectRejected(TfConfig(R"({"worker": ["a:1"], "evaluator": ["b:1", "c:1"]})",
                          R"({"type": "worker", "index": 0})"),
                 "cluster.evaluator", "2 addresses, but a cluster has at most one evaluator");
}

TEST(ParseTfConfigTest, RejectsClusterWithNoTrainer) {
  ExpectRejected(
      TfConfig(R"({"ps": ["a:1"], "evaluator": ["b:1"]})", R"({"type": "ps", "index": 0})"),
      "cluster", "no \"chief\" or \"worker\" job, so no task would train");
  ExpectRejected(TfConfig("{}", R"({"type": "worker", "index": 0})"), "cluster",
                 "no \"chief\" or \"worker\" job");
}

TEST(ParseTfConfigTest, RejectsDuplicateAddressesNamingBothTasks) {
  ExpectRejected(TfConfig(R"({"worker": ["a:1", "b:1"], "ps": ["c:1", "b:1"]})",
                          R"({"type": "worker", "index": 0})"),
                 "cluster.ps[1]",
                 "address 'b:1' is also worker:1's; give every task its own host:port");
  ExpectRejected(TfConfig(R"({"chief": ["LocalHost:02222"], "worker": ["localhost:2222"]})",
                          R"({"type": "worker", "index": 0})"),
                 "cluster.worker[0]",
                 "address 'localhost:2222' names the same endpoint as chief:0 ('LocalHost:02222')");
}

// localhost:P and 127.0.0.1:P once passed: one task failed to bind and the
// other waited out the whole startup timeout.
TEST(ParseTfConfigTest, RejectsTwoSpellingsOfOneLoopbackEndpoint) {
  const std::string task = R"({"type": "worker", "index": 0})";
  ExpectRejected(TfConfig(R"({"worker": ["localhost:2222", "127.0.0.1:2222"]})", task),
                 "cluster.worker[1]",
                 "address '127.0.0.1:2222' names the same endpoint as worker:0 "
                 "('localhost:2222'): both are this host's loopback on port 2222; give every "
                 "task its own host:port");
  ExpectRejected(TfConfig(R"({"worker": ["[::1]:7", "127.3.4.5:7"]})", task), "cluster.worker[1]",
                 "loopback on port 7");
  ExpectRejected(TfConfig(R"({"worker": ["[fe80::1]:7", "[FE80:0::01]:7"]})", task),
                 "cluster.worker[1]", "names the same endpoint as worker:0");
  EXPECT_TRUE(
      ParseTfConfig(TfConfig(R"({"worker": ["localhost:2222", "127.0.0.1:2223"]})", task)).ok());
  EXPECT_TRUE(ParseTfConfig(TfConfig(R"({"worker": ["h1:2222", "h2:2222"]})", task)).ok());
}

TEST(ParseTfConfigTest, RejectsJunkHostsNamingTheFieldValueAndFix) {
  const std::string task = R"({"type": "worker", "index": 0})";
  const char kSyntax[] = "a host is a name of letters, digits, hyphens and dots";
  ExpectRejected(TfConfig(R"({"worker": ["*:2222"]})", task), "cluster.worker[0]",
                 "address '*:2222' has '*' in its host, which a host name cannot hold");
  ExpectRejected(TfConfig(R"({"worker": ["a:1", "a/b:2222"]})", task), "cluster.worker[1]",
                 "has '/' in its host");
  ExpectRejected(TfConfig(R"({"worker": ["256.256.256.256:2222"]})", task), "cluster.worker[0]",
                 "is not an IPv4 address (part '256' is not a number 0..255)");
  ExpectRejected(TfConfig(R"({"worker": ["1.2.3:2222"]})", task), "cluster.worker[0]",
                 "is not an IPv4 address (it needs four parts");
  ExpectRejected(TfConfig(R"({"worker": ["[not-ipv6]:2222"]})", task), "cluster.worker[0]",
                 "address '[not-ipv6]:2222' has a bracketed host that is not an IPv6 address");
  ExpectRejected(TfConfig(R"({"worker": ["a\u0001b:2222"]})", task), "cluster.worker[0]",
                 "address 'a\\001b:2222' contains a control character; remove it");
  ExpectRejected(TfConfig(R"({"worker": ["-a:2222"]})", task), "cluster.worker[0]",
                 "starts or ends with a hyphen");
  ExpectRejected(TfConfig(R"({"worker": ["a..b:2222"]})", task), "cluster.worker[0]",
                 "empty label");
  ExpectRejected(TfConfig(R"({"worker": ["a_b:2222"]})", task), "cluster.worker[0]", kSyntax);
  const std::string label(64, 'a');
  ExpectRejected(TfConfig("{\"worker\": [\"" + label + ":1\"]}", task), "cluster.worker[0]",
                 "has a host label of 64 bytes; labels have at most 63");

  const std::string huge(70000, 'h');
  absl::StatusOr<ClusterConfig> config =
      ParseTfConfig(TfConfig("{\"worker\": [\"" + huge + ":1\"]}", task));
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("has a host of 70000 bytes"));
  EXPECT_LT(config.status().message().size(), 500u);
}

TEST(ParseTfConfigTest, AcceptsValidHostsAtTheLimits) {
  const std::string task = R"({"type": "worker", "index": 0})";
  const std::string label(63, 'a');
  const std::string name = label + "." + label + "." + label + "." + std::string(61, 'b');
  ASSERT_EQ(name.size(), 253u);
  for (const std::string& host :
       {std::string("0.0.0.0"), std::string("255.255.255.255"), std::string("Node-3.Example.COM"),
        name, std::string("[::ffff:10.0.0.1]"), std::string("x1")}) {
    absl::StatusOr<ClusterConfig> config =
        ParseTfConfig(TfConfig("{\"worker\": [\"" + host + ":1\"]}", task));
    EXPECT_TRUE(config.ok()) << host << ": " << config.status();
  }
  EXPECT_FALSE(ParseTfConfig(TfConfig("{\"worker\": [\"" + name + "b:1\"]}", task)).ok());
}

// A TF_CONFIG of arrays nested 51,500 deep once crashed the process (SIGSEGV)
// while the error message dumped it.
TEST(ParseTfConfigTest, RefusesDeepNestingWithABoundedMessage) {
  const std::string deep = std::string(51500, '[') + std::string(51500, ']');
  for (const std::string& json :
       {deep, TfConfig(R"({"worker": )" + deep + "}", R"({"type": "worker", "index": 0})")}) {
    absl::StatusOr<ClusterConfig> config = ParseTfConfig(json);
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(config.status().message(), HasSubstr("deeper than 64 levels"));
    EXPECT_LT(config.status().message().size(), 400u);
  }
}

// ---- rejected: task ----

TEST(ParseTfConfigTest, RejectsMissingTask) {
  ExpectRejected(R"({"cluster": {"worker": ["a:1"]}})", "task",
                 "missing; add \"task\": {\"type\": \"worker\", \"index\": 0}");
}

TEST(ParseTfConfigTest, RejectsTaskNotObject) {
  ExpectRejected(TfConfig(kTwoWorkers, R"("worker:0")"), "task",
                 "expected an object, got string \"worker:0\"");
}

TEST(ParseTfConfigTest, RejectsTaskTypeMissingOrNotAString) {
  ExpectRejected(TfConfig(kTwoWorkers, R"({"index": 0})"), "task.type",
                 "missing; set it to this process's job, one of the cluster's jobs: worker");
  ExpectRejected(TfConfig(kTwoWorkers, R"({"type": 1, "index": 0})"), "task.type",
                 "expected a string, got number 1");
}

TEST(ParseTfConfigTest, RejectsUnknownTaskType) {
  ExpectRejected(TfConfig(kTwoWorkers, R"({"type": "trainer", "index": 0})"), "task.type",
                 "unknown job type 'trainer'; allowed job types are chief, worker, ps, evaluator");
}

TEST(ParseTfConfigTest, RejectsTaskTypeAbsentFromCluster) {
  ExpectRejected(
      TfConfig(R"({"chief": ["a:1"], "worker": ["b:1"]})", R"({"type": "ps", "index": 0})"),
      "task.type",
      "'ps' is not a job in cluster (jobs: chief, worker); set task.type to one of them "
      "or add \"ps\" to cluster");
}

TEST(ParseTfConfigTest, RejectsTaskIndexMissing) {
  ExpectRejected(TfConfig(kTwoWorkers, R"({"type": "worker"})"), "task.index",
                 "missing; set it to this task's position in job 'worker' (2 tasks, indices 0..1)");
}

TEST(ParseTfConfigTest, RejectsTaskIndexNotAnInteger) {
  ExpectRejected(TfConfig(kTwoWorkers, R"({"type": "worker", "index": 1.5})"), "task.index",
                 "expected an integer, got number 1.5");
  ExpectRejected(TfConfig(kTwoWorkers, R"({"type": "worker", "index": "one"})"), "task.index",
                 "expected an integer, got string \"one\"");
  ExpectRejected(TfConfig(kTwoWorkers, R"({"type": "worker", "index": true})"), "task.index",
                 "expected an integer, got boolean true");
  ExpectRejected(TfConfig(kTwoWorkers, R"({"type": "worker", "index": null})"), "task.index",
                 "expected an integer, got null");
}

TEST(ParseTfConfigTest, RejectsNegativeTaskIndex) {
  ExpectRejected(
      TfConfig(kTwoWorkers, R"({"type": "worker", "index": -1})"), "task.index",
      "-1 is negative; job 'worker' has 2 tasks, indices 0..1; set task.index to one of them");
}

TEST(ParseTfConfigTest, RejectsTaskIndexOutOfRangeWithTheExactMessage) {
  absl::StatusOr<ClusterConfig> config =
      ParseTfConfig(TfConfig(kTwoWorkers, R"({"type": "worker", "index": 3})"));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status(),
            absl::InvalidArgumentError("TF_CONFIG task.index: 3 is out of range for job 'worker' "
                                       "(2 tasks, indices 0..1); set task.index to one of them"));
  ExpectRejected(TfConfig(R"({"chief": ["a:1"]})", R"({"type": "chief", "index": 1})"),
                 "task.index",
                 "1 is out of range for job 'chief' (1 task, index 0); set task.index to 0");
  ExpectRejected(TfConfig(kTwoWorkers, R"({"type": "worker", "index": 18446744073709551615})"),
                 "task.index", "is out of range for job 'worker'");
}

TEST(ParseTfConfigTest, RejectsEvaluatorOutsideClusterWithIndexOtherThanZero) {
  ExpectRejected(
      TfConfig(kTwoWorkers, R"({"type": "evaluator", "index": 1})"), "task.index",
      "1 is out of range for job 'evaluator' (not in cluster, so index 0); set task.index to 0");
}

TEST(ParseTfConfigTest, RejectsBadOptionalFields) {
  ExpectRejected(TfConfig(kTwoWorkers, R"({"type": "worker", "index": 0, "trial": "x"})"),
                 "task.trial",
                 "expected an integer, got string \"x\"; set it to a number or remove it");
  ExpectRejected(
      R"({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}, "rpc_layer": 1})",
      "rpc_layer", "expected a string, got number 1; set it to \"grpc\" or remove it");
  ExpectRejected(
      R"({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}, "environment": []})",
      "environment", "expected a string, got array []");
}

TEST(ParseTfConfigTest, QuotesControlCharactersSoMessagesStayOnOneLine) {
  ExpectRejected(TfConfig(R"({"worker": ["a\nb"]})", R"({"type": "worker", "index": 0})"),
                 "cluster.worker[0]", "address 'a\\nb' contains whitespace");
  ExpectRejected(TfConfig(kTwoWorkers, R"({"type": "wor\nker", "index": 0})"), "task.type",
                 "unknown job type 'wor\\nker'");
}

// ---- from the environment ----

TEST(ClusterConfigFromEnvironmentTest, UnsetOrEmptyMeansLocal) {
  {
    ScopedEnv env("TF_CONFIG", std::nullopt);
    absl::StatusOr<ClusterConfig> config = ClusterConfigFromEnvironment();
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_TRUE(config->is_local());
    EXPECT_TRUE(config->is_chief());
  }
  {
    ScopedEnv env("TF_CONFIG", "");
    absl::StatusOr<ClusterConfig> config = ClusterConfigFromEnvironment();
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_TRUE(config->is_local());
  }
}

TEST(ClusterConfigFromEnvironmentTest, ParsesTfConfig) {
  ScopedEnv env("TF_CONFIG", TfConfig(kTwoWorkers, R"({"type": "worker", "index": 1})"));
  absl::StatusOr<ClusterConfig> config = ClusterConfigFromEnvironment();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->is_local());
  EXPECT_EQ(config->task, (TaskId{"worker", 1}));
}

TEST(ClusterConfigFromEnvironmentTest, ErrorsSayTheyCameFromTheEnvironment) {
  ScopedEnv env("TF_CONFIG", TfConfig(kTwoWorkers, R"({"type": "worker", "index": 3})"));
  absl::StatusOr<ClusterConfig> config = ClusterConfigFromEnvironment();
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()),
              StartsWith("environment variable TF_CONFIG task.index: 3 is out of range"));
}

// ---- writing and describing ----

TEST(ToTfConfigJsonTest, RoundTripsThroughParseTfConfig) {
  const std::vector<std::string> inputs = {
      TfConfig(kTwoWorkers, R"({"type": "worker", "index": 1})"),
      R"({"cluster": {"chief": ["h0:1"], "worker": ["h1:1"], "ps": ["[::1]:5", "h3:1"],
          "evaluator": ["h4:1"]}, "task": {"type": "ps", "index": 1, "trial": 4},
          "rpc_layer": "grpc", "environment": "cloud"})",
      TfConfig(kTwoWorkers, R"({"type": "evaluator", "index": 0})"),
  };
  for (const std::string& input : inputs) {
    absl::StatusOr<ClusterConfig> first = ParseTfConfig(input);
    ASSERT_TRUE(first.ok()) << first.status();
    const std::string json = ToTfConfigJson(*first);
    EXPECT_THAT(json, Not(HasSubstr("\n")));
    absl::StatusOr<ClusterConfig> second = ParseTfConfig(json);
    ASSERT_TRUE(second.ok()) << second.status() << " for " << json;
    EXPECT_EQ(second->cluster.jobs(), first->cluster.jobs()) << json;
    EXPECT_EQ(second->task, first->task) << json;
    EXPECT_EQ(second->trial, first->trial) << json;
    EXPECT_EQ(second->rpc_layer, first->rpc_layer) << json;
    EXPECT_EQ(second->environment, first->environment) << json;
  }
}

TEST(ToTfConfigJsonTest, WritesTensorFlowsKeys) {
  ClusterConfig config;
  config.cluster = ClusterSpec(Jobs{{"worker", {"a:1", "b:1"}}});
  config.task = TaskId{"worker", 1};
  EXPECT_EQ(ToTfConfigJson(config),
            R"({"cluster":{"worker":["a:1","b:1"]},"task":{"index":1,"type":"worker"}})");
}

TEST(DescribeClusterTest, ListsTasksRolesRanksAndThisProcess) {
  absl::StatusOr<ClusterConfig> config = ParseTfConfig(R"({
    "cluster": {"chief": ["h0:2222"], "worker": ["h1:2222", "h2:2222"], "ps": ["h3:2222"],
                "evaluator": ["h4:2222"]},
    "task": {"type": "worker", "index": 1}, "rpc_layer": "grpc"})");
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string text = DescribeCluster(*config);
  EXPECT_THAT(text, HasSubstr("cluster: 5 tasks (chief 1, worker 2, ps 1, evaluator 1)\n"));
  EXPECT_THAT(text, HasSubstr("chief:0       h0:2222                  chief, training rank 0\n"));
  EXPECT_THAT(
      text,
      HasSubstr(
          "worker:1      h2:2222                  worker, training rank 2  <- this process\n"));
  EXPECT_THAT(text, HasSubstr("ps:0          h3:2222                  parameter server\n"));
  EXPECT_THAT(text, HasSubstr("evaluator:0   h4:2222                  evaluator\n"));
  EXPECT_THAT(text, HasSubstr("chief: chief:0 at h0:2222\n"));
  EXPECT_THAT(text,
              HasSubstr("this process: worker:1 at h2:2222; role worker, training rank 2 of 3\n"));
  EXPECT_THAT(text, HasSubstr("training workers: 3 (rank order: chief:0, worker:0, worker:1)\n"));
  EXPECT_THAT(text, HasSubstr("parameter servers: 1 (ps:0)\n"));
  EXPECT_THAT(text, HasSubstr("evaluator: evaluator:0 at h4:2222\n"));
  EXPECT_THAT(text, HasSubstr("rpc_layer: grpc\n"));
}

TEST(DescribeClusterTest, SaysWhenWorkerZeroIsTheImplicitChief) {
  absl::StatusOr<ClusterConfig> config =
      ParseTfConfig(TfConfig(kTwoWorkers, R"({"type": "worker", "index": 0})"));
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string text = DescribeCluster(*config);
  EXPECT_THAT(text, HasSubstr("chief: worker:0 at localhost:2222 (implicit: no \"chief\" job, so "
                              "worker 0 is the chief)\n"));
  EXPECT_THAT(text, HasSubstr("role chief (implicit: worker 0), training rank 0 of 2\n"));
  EXPECT_THAT(text, HasSubstr("parameter servers: none\n"));
  EXPECT_THAT(text, HasSubstr("evaluator: none\n"));
  EXPECT_THAT(text, HasSubstr("rpc_layer: (default)"));
}

TEST(DescribeClusterTest, DescribesAnEvaluatorOutsideTheCluster) {
  absl::StatusOr<ClusterConfig> config =
      ParseTfConfig(TfConfig(kTwoWorkers, R"({"type": "evaluator", "index": 0})"));
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string text = DescribeCluster(*config);
  EXPECT_THAT(text, HasSubstr("(not listed)"));
  EXPECT_THAT(
      text, HasSubstr("this process: evaluator:0 (not listed in cluster, no address); "
                      "role evaluator, evaluates checkpoints, does not train and joins no mesh\n"));
  EXPECT_THAT(text, HasSubstr("evaluator: evaluator:0 (this process, outside the cluster)\n"));
}

TEST(DescribeClusterTest, DescribesLocal) {
  const std::string text = DescribeCluster(ClusterConfig::Local());
  EXPECT_THAT(text, AllOf(HasSubstr("local: no TF_CONFIG"), HasSubstr("training rank 0 of 1")));
}

}  // namespace
}  // namespace meshtrain

namespace meshtrain {
namespace {

// ---- docs/tf_config.md and configs/cluster/ stay true ----

TEST(TfConfigDocTest, ListsEveryErrorMessageVerbatim) {
  const std::string doc = ReadSourceFile("docs/tf_config.md");
  ASSERT_FALSE(doc.empty());
  const std::string task = R"({"type": "worker", "index": 0})";
  const std::string two = R"({"worker": ["localhost:2222", "localhost:2223"]})";
  const std::vector<std::string> inputs = {
      "",
      R"({"cluster": {"worker": ["a:1",]}})",
      R"(["worker"])",
      R"({"task": {"type": "worker", "index": 0}})",
      TfConfig(R"(["a:1"])", task),
      TfConfig(R"({"worker": ["a:1"], "trainer": ["b:1"]})", task),
      TfConfig(R"({"master": ["a:1"]})", task),
      TfConfig(R"({"worker": "a:1"})", task),
      TfConfig(R"({"worker": {"0": "a:1"}})", task),
      TfConfig(R"({"worker": []})", task),
      TfConfig(R"({"worker": ["a:1", 2222]})", task),
      TfConfig(R"({"worker": [""]})", task),
      TfConfig(R"({"worker": ["localhost"]})", task),
      TfConfig(R"({"worker": [":2222"]})", task),
      TfConfig(R"({"worker": ["localhost:http"]})", task),
      TfConfig(R"({"worker": ["localhost:0"]})", task),
      TfConfig(R"({"worker": ["localhost:65536"]})", task),
      TfConfig(R"({"worker": ["::1:2222"]})", task),
      TfConfig(R"({"worker": ["[::1:2222"]})", task),
      TfConfig(R"({"worker": ["[::1]"]})", task),
      TfConfig(R"({"worker": ["[::1]2222"]})", task),
      TfConfig(R"({"worker": ["local host:2222"]})", task),
      TfConfig(R"({"chief": ["a:1", "b:1"]})", task),
      TfConfig(R"({"worker": ["a:1"], "evaluator": ["b:1", "c:1"]})", task),
      TfConfig(R"({"ps": ["a:1"]})", task),
      TfConfig(R"({"worker": ["a:1", "b:1"], "ps": ["b:1"]})", task),
      R"({"cluster": {"worker": ["a:1"]}})",
      TfConfig(two, R"("worker:0")"),
      TfConfig(two, R"({"index": 0})"),
      TfConfig(two, R"({"type": 1, "index": 0})"),
      TfConfig(two, R"({"type": "trainer", "index": 0})"),
      TfConfig(two, R"({"type": "ps", "index": 0})"),
      TfConfig(two, R"({"type": "worker"})"),
      TfConfig(two, R"({"type": "worker", "index": 1.5})"),
      TfConfig(two, R"({"type": "worker", "index": -1})"),
      TfConfig(two, R"({"type": "worker", "index": 3})"),
      TfConfig(two, R"({"type": "evaluator", "index": 1})"),
      TfConfig(two, R"({"type": "worker", "index": 0, "trial": "x"})"),
      R"({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}, "rpc_layer": 1})",
      R"({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}, "environment": 1})",
  };
  for (const std::string& input : inputs) {
    absl::StatusOr<ClusterConfig> config = ParseTfConfig(input);
    ASSERT_FALSE(config.ok()) << input;
    EXPECT_THAT(doc, HasSubstr("`" + std::string(config.status().message()) + "`"))
        << "docs/tf_config.md lacks the message for " << input;
  }
  ScopedEnv env("TF_CONFIG", TfConfig(two, R"({"type": "worker", "index": 3})"));
  EXPECT_THAT(
      doc, HasSubstr("`" + std::string(ClusterConfigFromEnvironment().status().message()) + "`"));
}

TEST(TfConfigDocTest, DescribeClusterExamplesAreWhatTheCodePrints) {
  const std::string doc = ReadSourceFile("docs/tf_config.md");
  absl::StatusOr<ClusterConfig> full = ParseTfConfig(R"({"cluster": {
      "chief": ["10.0.0.1:2222"], "worker": ["10.0.0.2:2222", "10.0.0.3:2222"],
      "ps": ["10.0.0.4:2222"], "evaluator": ["10.0.0.5:2222"]},
      "task": {"type": "worker", "index": 1}})");
  absl::StatusOr<ClusterConfig> two =
      ParseTfConfig(TfConfig(kTwoWorkers, R"({"type": "worker", "index": 0})"));
  ASSERT_TRUE(full.ok() && two.ok());
  EXPECT_THAT(doc, HasSubstr("```text\n" + DescribeCluster(*full) + "```"));
  EXPECT_THAT(doc, HasSubstr("```text\n" + DescribeCluster(*two) + "```"));
  EXPECT_THAT(doc, HasSubstr("```text\n" + DescribeCluster(ClusterConfig::Local()) + "```"));
  EXPECT_THAT(doc, HasSubstr("```text\n" + ToTfConfigJson(*two) + "\n```"));
}

TEST(TfConfigDocTest, EveryJsonExampleParses) {
  const std::string doc = ReadSourceFile("docs/tf_config.md");
  int examples = 0;
  for (size_t start = doc.find("```json\n"); start != std::string::npos;
       start = doc.find("```json\n", start)) {
    start += 8;
    const size_t end = doc.find("```", start);
    ASSERT_NE(end, std::string::npos);
    const std::string json = doc.substr(start, end - start);
    absl::StatusOr<ClusterConfig> config = ParseTfConfig(json);
    EXPECT_TRUE(config.ok()) << config.status() << "\n" << json;
    ++examples;
  }
  EXPECT_GE(examples, 6);
}

TEST(TfConfigDocTest, ExampleConfigFilesParse) {
  for (const char* name : {"two_workers.json", "chief_workers_ps.json", "workers_evaluator.json"}) {
    const std::string json = ReadSourceFile(std::string("configs/cluster/") + name);
    ASSERT_FALSE(json.empty()) << name;
    absl::StatusOr<ClusterConfig> config = ParseTfConfig(json);
    EXPECT_TRUE(config.ok()) << name << ": " << config.status();
  }
}

}  // namespace
}  // namespace meshtrain

// The torchrun-style resolver and its rendezvous through the master: ranks run
// as threads on 127.0.0.1, world sizes 1, 2, 3, 8.
#include "runtime/cluster/torchrun_resolver.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/cluster/rendezvous.h"
#include "tests/unit/cluster/source_file.h"

namespace meshtrain {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using Env = std::map<std::string, std::string>;

// A port that was free a moment ago (the kernel's choice).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

RendezvousOptions Options(int port, int rank, int size) {
  RendezvousOptions o;
  o.master_host = "127.0.0.1";
  o.master_port = port;
  o.rank = rank;
  o.size = size;
  o.timeout = absl::Seconds(30);
  return o;
}

// Runs `size` ranks as threads; rank r's options come from `options(r)`.
std::vector<absl::StatusOr<std::vector<std::string>>> GatherAll(
    int size, const std::function<RendezvousOptions(int)>& options) {
  std::vector<absl::StatusOr<std::vector<std::string>>> results(size);
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) {
    threads.emplace_back([&, r] {
      results[r] = RendezvousAllGather(options(r), [r](absl::string_view local_ip) {
        return absl::StrCat("rank", r, "@", local_ip.empty() ? "master" : local_ip);
      });
    });
  }
  for (std::thread& t : threads) t.join();
  return results;
}

TEST(RendezvousTest, EveryRankGetsEveryPayloadInRankOrder) {
  for (int size : {1, 2, 3, 8}) {
    const int port = FreePort();
    auto results = GatherAll(size, [&](int r) { return Options(port, r, size); });
    std::vector<std::string> expected;
    for (int r = 0; r < size; ++r) {
      expected.push_back(r == 0 ? "rank0@master" : absl::StrCat("rank", r, "@127.0.0.1"));
    }
    for (int r = 0; r < size; ++r) {
      ASSERT_TRUE(results[r].ok())
          << "size " << size << " rank " << r << ": " << results[r].status();
      EXPECT_EQ(*results[r], expected) << "size " << size << " rank " << r;
    }
  }
}

TEST(RendezvousTest, AMismatchedWorldSizeFailsEveryRankWithTheMastersMessage) {
  const int port = FreePort();
  auto results = GatherAll(3, [&](int r) {
    RendezvousOptions o = Options(port, r, r == 2 ? 4 : 3);
    o.timeout = absl::Seconds(10);
    return o;
  });
  EXPECT_THAT(results[0].status().message(),
              HasSubstr("rank 2 has WORLD_SIZE=4 but rank 0 has WORLD_SIZE=3"));
  // A rank that joined before the failure hears the master's message; one that
  // had not connected yet fails at its deadline.
  for (int r = 1; r < 3; ++r) EXPECT_FALSE(results[r].ok()) << r;
}

TEST(RendezvousTest, TwoTasksWithOneRankFail) {
  const int port = FreePort();
  auto results = GatherAll(3, [&](int r) { return Options(port, r == 2 ? 1 : r, 3); });
  EXPECT_THAT(results[0].status().message(), HasSubstr("a second task with RANK=1"));
}

TEST(RendezvousTest, AStrayConnectionIsIgnored) {
  const int port = FreePort();
  std::thread stray([port] {
    // Connects (retrying until the master listens), says something else, leaves.
    for (int i = 0; i < 2000; ++i) {
      const int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr = {};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(port);
      if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
        (void)!write(fd, "GET / HTTP/1.0\r\n\r\n", 18);
        close(fd);
        return;
      }
      close(fd);
      std::this_thread::yield();
    }
  });
  auto results = GatherAll(2, [&](int r) { return Options(port, r, 2); });
  stray.join();
  for (const auto& result : results) EXPECT_TRUE(result.ok()) << result.status();
}

TEST(RendezvousTest, MissingRanksAreNamedAtTheDeadline) {
  RendezvousOptions o = Options(FreePort(), 0, 3);
  o.timeout = absl::Milliseconds(200);
  absl::StatusOr<std::vector<std::string>> result =
      RendezvousAllGather(o, [](absl::string_view) { return std::string("x"); });
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(result.status().message(), HasSubstr("for rank(s) 1, 2"));
  o.rank = 1;  // nobody listens
  result = RendezvousAllGather(o, [](absl::string_view) { return std::string("x"); });
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(result.status().message(), HasSubstr("is rank 0 running"));
}

Env Torchrun(int rank, int size) {
  return {{"RANK", std::to_string(rank)},
          {"WORLD_SIZE", std::to_string(size)},
          {"LOCAL_RANK", std::to_string(rank)},
          {"MASTER_ADDR", "127.0.0.1"},
          {"MASTER_PORT", "29500"}};
}

TEST(TorchrunPlacementTest, ReadsTheVariables) {
  absl::StatusOr<TorchrunPlacement> p =
      TorchrunPlacementFromEnvironment(MapEnvironment(Torchrun(1, 2)));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->rank, 1);
  EXPECT_EQ(p->world_size, 2);
  EXPECT_EQ(p->local_rank, 1);
  EXPECT_EQ(p->master_addr, "127.0.0.1");
  EXPECT_EQ(p->master_port, 29500);
  EXPECT_EQ(p->rendezvous_port, 29500);
  Env torchrun_agent = Torchrun(1, 2);
  torchrun_agent["TORCHELASTIC_USE_AGENT_STORE"] = "True";  // its store holds MASTER_PORT
  EXPECT_EQ(TorchrunPlacementFromEnvironment(MapEnvironment(torchrun_agent))->rendezvous_port,
            29501);
  Env pytorchjob = Torchrun(1, 2);
  pytorchjob.erase("LOCAL_RANK");  // a PyTorchJob pod runs one task
  EXPECT_EQ(TorchrunPlacementFromEnvironment(MapEnvironment(pytorchjob))->local_rank, 0);
}

TEST(TorchrunPlacementTest, ErrorsNameTheVariable) {
  const std::pair<const char*, const char*> cases[][2] = {
      {{"RANK", "x"}, {"RANK='x' is not an integer", ""}},
      {{"RANK", "2"}, {"RANK=2 is out of range for WORLD_SIZE=2", ""}},
      {{"WORLD_SIZE", "0"}, {"WORLD_SIZE='0' is not an integer in 1..", ""}},
      {{"MASTER_ADDR", ""}, {"MASTER_ADDR is not set", ""}},
      {{"MASTER_ADDR", "http://x"}, {"MASTER_ADDR='http://x' is not a host name", ""}},
      {{"MASTER_PORT", ""}, {"MASTER_PORT is not set", ""}},
      {{"MASTER_PORT", "70000"}, {"MASTER_PORT='70000' is not an integer in 1..65535", ""}},
      {{"LOCAL_RANK", "-1"}, {"LOCAL_RANK='-1'", ""}},
  };
  for (const auto& c : cases) {
    Env env = Torchrun(1, 2);
    env[c[0].first] = c[0].second;
    absl::StatusOr<TorchrunPlacement> p = TorchrunPlacementFromEnvironment(MapEnvironment(env));
    ASSERT_FALSE(p.ok()) << c[0].first;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(p.status().message(), HasSubstr(c[1].first));
    EXPECT_THAT(p.status().message(), HasSubstr("torchrun-style environment: "));
  }
  EXPECT_EQ(TorchrunPlacementFromEnvironment(MapEnvironment({{"RANK", "0"}})).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(TorchrunPlacementTest, DocsListTheErrors) {
  const std::string doc = ReadSourceFile("docs/tf_config.md");
  ASSERT_FALSE(doc.empty());
  const std::pair<const char*, const char*> overrides[] = {
      {"MASTER_PORT", "70000"}, {"RANK", "2"}, {"MASTER_ADDR", ""}, {"MASTER_ADDR", "http://x"}};
  for (const auto& [variable, value] : overrides) {
    Env env = Torchrun(1, 2);
    env.erase("LOCAL_RANK");
    env[variable] = value;
    const absl::Status status = TorchrunPlacementFromEnvironment(MapEnvironment(env)).status();
    ASSERT_FALSE(status.ok()) << variable;
    EXPECT_THAT(doc, HasSubstr("`" + std::string(status.message()) + "`"));
  }
}

TEST(TorchrunClusterTest, PayloadsGiveRolesInTensorFlowsOrder) {
  absl::StatusOr<ClusterConfig> config = ClusterConfigFromTorchrunPayloads(
      {"1 0 10.0.0.1:5000", "1 0 10.0.0.2:5001", "1 0 10.0.0.3:5002"}, 2);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->cluster.addresses("ps"), ElementsAre("10.0.0.1:5000"));
  EXPECT_THAT(config->cluster.addresses("worker"), ElementsAre("10.0.0.2:5001", "10.0.0.3:5002"));
  EXPECT_EQ(config->task, (TaskId{"worker", 1}));
  EXPECT_THAT(ClusterConfigFromTorchrunPayloads({"0 0 a:1", "1 0 b:1"}, 0).status().message(),
              HasSubstr("rank 1 was started with --ps 1 but rank 0 with --ps 0"));
  EXPECT_THAT(ClusterConfigFromTorchrunPayloads({"0 0 a:1", "0 0 a:1"}, 0).status().message(),
              HasSubstr("ranks 0 and 1 both have address 'a:1'"));
}

TEST(TorchrunClusterTest, ExchangesAddressesThroughTheMaster) {
  const int port = FreePort();
  const int size = 3;
  std::vector<absl::StatusOr<ClusterConfig>> configs(size);
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) {
    threads.emplace_back([&, r] {
      Env env = Torchrun(r, size);
      env["MASTER_PORT"] = std::to_string(port);
      absl::StatusOr<TorchrunPlacement> p = TorchrunPlacementFromEnvironment(MapEnvironment(env));
      configs[r] = p.ok() ? ClusterConfigFromTorchrun(*p, 6000 + r, RankRoles{}, absl::Seconds(30),
                                                      MapEnvironment(env))
                          : p.status();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < size; ++r) {
    ASSERT_TRUE(configs[r].ok()) << configs[r].status();
    EXPECT_THAT(configs[r]->cluster.addresses("worker"),
                ElementsAre("127.0.0.1:6000", "127.0.0.1:6001", "127.0.0.1:6002"));
    EXPECT_EQ(configs[r]->task, (TaskId{"worker", r}));
  }
}

}  // namespace
}  // namespace meshtrain

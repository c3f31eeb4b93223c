#include "runtime/transport/tcp_transport.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/unit/transport/run_on_ranks.h"
#include "tests/unit/transport/transport_meshes.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::AsBytes;
using ::meshtrain::testing::RunOnRanks;

using Mesh = testing::TcpMesh;

Mesh Connect(int world_size, const std::function<void(TcpTransportOptions&)>& tune = {}) {
  return testing::ConnectTcp(world_size, tune);
}

TcpTransportOptions Options(int rank, int world_size, const std::vector<int>& ports) {
  return testing::TcpTestOptions(rank, world_size, ports);
}

TEST(TcpTransportTest, StaleIncarnationIsRejected) {
  Mesh mesh = Connect(2, [](TcpTransportOptions& o) {
    if (o.rank == 1) o.incarnation = 0;  // an old process of the job
    if (o.rank == 0) o.connect_deadline = absl::Now() + absl::Milliseconds(500);
  });
  EXPECT_EQ(mesh.statuses[1].code(), absl::StatusCode::kUnavailable) << mesh.statuses[1];
  // The dialler learns it is stale, not the incarnation that would be accepted.
  EXPECT_TRUE(absl::StrContains(mesh.statuses[1].message(), "stale incarnation"))
      << mesh.statuses[1];
  EXPECT_FALSE(absl::StrContains(mesh.statuses[1].message(), "expected")) << mesh.statuses[1];
  EXPECT_EQ(mesh.statuses[0].code(), absl::StatusCode::kDeadlineExceeded) << mesh.statuses[0];
  EXPECT_TRUE(absl::StrContains(mesh.statuses[0].message(), "worker:1")) << mesh.statuses[0];
}

TEST(TcpTransportTest, DialRetriesUntilThePeerListens) {
  // Learn a free port, release it, and let rank 1 dial it before rank 0 listens.
  int port;
  {
    auto probe = TcpListener::Create("127.0.0.1", 0);
    ASSERT_TRUE(probe.ok());
    port = (*probe)->port();
  }
  std::vector<int> ports{port, 0};
  absl::Status dialer;
  std::thread t1([&] { dialer = TcpTransport::Create(nullptr, Options(1, 2, ports)).status(); });
  auto listener = TcpListener::Create("127.0.0.1", port);
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto t0 = TcpTransport::Create(*std::move(listener), Options(0, 2, ports));
  t1.join();
  EXPECT_TRUE(t0.ok()) << t0.status();
  EXPECT_TRUE(dialer.ok()) << dialer;
}

TEST(TcpTransportTest, DeadlineAndAbort) {
  AbortSignal abort;
  Mesh mesh = Connect(2, [&](TcpTransportOptions& o) { o.abort = &abort; });
  for (const auto& s : mesh.statuses) ASSERT_TRUE(s.ok()) << s;
  std::vector<float> buf(10);
  absl::Status s = mesh.transports[0]->Recv(1, AsBytes(buf), absl::Now() + absl::Milliseconds(30));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "worker:1")) << s;
  absl::Notification receiving;
  std::thread aborter([&] {
    receiving.WaitForNotification();
    abort.Abort(absl::AbortedError("chief aborted the step"));
  });
  receiving.Notify();
  s = mesh.transports[1]->Recv(0, AsBytes(buf), absl::InfiniteFuture());
  aborter.join();
  EXPECT_EQ(s, absl::AbortedError("chief aborted the step"));
}

TEST(TcpTransportTest, KilledPeerProcessIsUnavailable) {
  auto listener = TcpListener::Create("127.0.0.1", 0);
  ASSERT_TRUE(listener.ok());
  std::vector<int> ports{(*listener)->port(), 0};
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    listener->reset();
    auto t = TcpTransport::Create(nullptr, Options(1, 2, ports));
    if (!t.ok()) _exit(1);
    std::vector<float> one(10, 3.0f);
    if (!(*t)->Send(0, AsBytes(one), absl::InfiniteFuture()).ok()) _exit(2);
    while (true) pause();
  }
  auto t = TcpTransport::Create(*std::move(listener), Options(0, 2, ports));
  ASSERT_TRUE(t.ok()) << t.status();
  std::vector<float> got(10);
  ASSERT_TRUE((*t)->Recv(1, AsBytes(got), absl::Now() + absl::Seconds(20)).ok());
  kill(child, SIGKILL);
  absl::Time start = absl::Now();
  absl::Status s = (*t)->Recv(1, AsBytes(got), absl::Now() + absl::Seconds(30));
  absl::Duration took = absl::Now() - start;
  int wstatus;
  waitpid(child, &wstatus, 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "worker:1")) << s;
  EXPECT_LT(took, absl::Seconds(1));
}

TEST(TcpTransportTest, SizeMismatchIsReported) {
  Mesh mesh = Connect(2);
  for (const auto& s : mesh.statuses) ASSERT_TRUE(s.ok()) << s;
  auto statuses = RunOnRanks(2, [&](int r) -> absl::Status {
    std::vector<float> buf(r == 0 ? 4 : 5);
    if (r == 0) return mesh.transports[0]->Send(1, AsBytes(buf), absl::Now() + absl::Seconds(10));
    return mesh.transports[1]->Recv(0, AsBytes(buf), absl::Now() + absl::Seconds(10));
  });
  EXPECT_EQ(statuses[1].code(), absl::StatusCode::kInternal) << statuses[1];
  EXPECT_TRUE(absl::StrContains(statuses[1].message(), "16 bytes, expected 20")) << statuses[1];
}

}  // namespace
}  // namespace meshtrain

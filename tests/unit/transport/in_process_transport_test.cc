#include "runtime/transport/in_process_transport.h"

#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/unit/transport/run_on_ranks.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::AsBytes;
using ::meshtrain::testing::RunOnRanks;

TEST(InProcessTransportTest, SizeMismatchFailsBothSides) {
  auto mesh = CreateInProcessMesh(2);
  auto statuses = RunOnRanks(2, [&](int r) -> absl::Status {
    std::vector<float> buf(r == 0 ? 4 : 5);
    if (r == 0) return mesh[0]->Send(1, AsBytes(buf), absl::Now() + absl::Seconds(10));
    return mesh[1]->Recv(0, AsBytes(buf), absl::Now() + absl::Seconds(10));
  });
  EXPECT_EQ(statuses[1].code(), absl::StatusCode::kInternal) << statuses[1];
  EXPECT_TRUE(absl::StrContains(statuses[1].message(), "16 bytes")) << statuses[1];
  EXPECT_EQ(statuses[0], statuses[1]);
}

TEST(InProcessTransportTest, DeadlineNamesThePeer) {
  auto mesh = CreateInProcessMesh(3);
  std::vector<float> buf(3);
  absl::Status s = mesh[0]->Recv(2, AsBytes(buf), absl::Now() + absl::Milliseconds(20));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(absl::StrContains(s.message(), "rank 2")) << s;
  // An unreceived send is withdrawn at its deadline, so the slot is free again.
  s = mesh[0]->Send(1, AsBytes(buf), absl::Now() + absl::Milliseconds(20));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  s = mesh[0]->Send(1, AsBytes(buf), absl::Now() + absl::Milliseconds(20));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(InProcessTransportTest, AbortWakesWaiters) {
  AbortSignal abort;
  auto mesh = CreateInProcessMesh(2, &abort);
  auto statuses = RunOnRanks(2, [&](int r) -> absl::Status {
    if (r == 1) {
      abort.Abort(absl::AbortedError("worker:1 failed"));
      return absl::OkStatus();
    }
    std::vector<float> buf(3);
    return mesh[0]->Recv(1, AsBytes(buf), absl::InfiniteFuture());
  });
  EXPECT_EQ(statuses[0], absl::AbortedError("worker:1 failed"));
}

TEST(InProcessTransportTest, RejectsBadOps) {
  auto mesh = CreateInProcessMesh(2);
  std::vector<float> buf(2);
  EXPECT_EQ(mesh[0]->Send(0, AsBytes(buf), absl::InfiniteFuture()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mesh[0]->Send(2, AsBytes(buf), absl::InfiniteFuture()).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<std::byte> odd(7);
  EXPECT_EQ(
      mesh[0]
          ->SendRecv(
              {.recv_from = 1, .recv = absl::MakeSpan(odd), .action = RecvAction::kAddFloat32})
          .code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace meshtrain

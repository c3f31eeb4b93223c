#include "runtime/transport/fault_injection_transport.h"

#include <vector>

#include "gtest/gtest.h"
#include "runtime/transport/in_process_transport.h"
#include "tests/unit/transport/run_on_ranks.h"

namespace meshtrain {
namespace {

TEST(FaultInjectionTransportTest, FailsTheChosenOpOnly) {
  auto mesh = CreateInProcessMesh(2);
  FaultInjectionTransport faulty(mesh[0].get());
  faulty.Inject(1, Fault{Fault::Kind::kFail, absl::UnavailableError("cable cut")});
  std::vector<std::byte> buf(8);
  auto statuses = testing::RunOnRanks(2, [&](int r) -> absl::Status {
    if (r == 0) {
      if (auto s = faulty.Send(1, buf, absl::InfiniteFuture()); !s.ok()) return s;
      if (auto s = faulty.Send(1, buf, absl::InfiniteFuture()); !s.ok()) return s;
      return absl::InternalError("second send should have failed");
    }
    return mesh[1]->Recv(0, absl::MakeSpan(buf), absl::Now() + absl::Seconds(10));
  });
  EXPECT_EQ(statuses[0], absl::UnavailableError("cable cut"));
  EXPECT_TRUE(statuses[1].ok()) << statuses[1];
  EXPECT_EQ(faulty.ops(), 2);
}

TEST(FaultInjectionTransportTest, DropLeavesThePeerWaiting) {
  auto mesh = CreateInProcessMesh(2);
  FaultInjectionTransport faulty(mesh[0].get());
  faulty.Inject(0, Fault{Fault::Kind::kDrop});
  std::vector<std::byte> buf(8);
  EXPECT_TRUE(faulty.Send(1, buf, absl::InfiniteFuture()).ok());
  EXPECT_EQ(mesh[1]->Recv(0, absl::MakeSpan(buf), absl::Now() + absl::Milliseconds(10)).code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(FaultInjectionTransportTest, DelayStopsAtTheDeadlineOrAbort) {
  auto mesh = CreateInProcessMesh(2);
  AbortSignal abort;
  FaultInjectionTransport faulty(mesh[0].get(), &abort);
  faulty.Inject(0, Fault{Fault::Kind::kDelay, absl::OkStatus(), absl::Hours(1)});
  std::vector<std::byte> buf(8);
  absl::Time start = absl::Now();
  absl::Status s = faulty.Send(1, buf, absl::Now() + absl::Milliseconds(20));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  faulty.Inject(1, Fault{Fault::Kind::kDelay, absl::OkStatus(), absl::Hours(1)});
  abort.Abort(absl::AbortedError("stop"));
  EXPECT_EQ(faulty.Send(1, buf, absl::InfiniteFuture()), absl::AbortedError("stop"));
}

}  // namespace
}  // namespace meshtrain

#include "runtime/collective/replica_barrier.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/unit/transport/run_on_ranks.h"

namespace meshtrain {
namespace {

TEST(ReplicaBarrierTest, NoPartyLeavesBeforeAllArrived) {
  for (int parties : {1, 2, 3, 8}) {
    ReplicaBarrier barrier(parties);
    std::atomic<int> arrived{0};
    auto statuses = testing::RunOnRanks(parties, [&](int p) -> absl::Status {
      for (int phase = 1; phase <= 50; ++phase) {
        arrived.fetch_add(1);
        if (auto s = barrier.Arrive(p, absl::Now() + absl::Seconds(30)); !s.ok()) return s;
        if (arrived.load() < phase * parties) return absl::InternalError("left early");
        if (auto s = barrier.Arrive(p, absl::Now() + absl::Seconds(30)); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
    for (const auto& s : statuses) EXPECT_TRUE(s.ok()) << s;
  }
}

TEST(ReplicaBarrierTest, CountsWhoWaitedForWhom) {
  ReplicaBarrier barrier(2);
  const absl::Duration late = absl::Milliseconds(30);
  absl::Notification arriving;
  auto statuses = testing::RunOnRanks(2, [&](int p) -> absl::Status {
    if (p == 0) {
      arriving.Notify();
      return barrier.Arrive(0, absl::Now() + absl::Seconds(30));
    }
    arriving.WaitForNotification();
    absl::SleepFor(late);  // the late replica being measured
    return barrier.Arrive(1, absl::Now() + absl::Seconds(30));
  });
  for (const auto& s : statuses) ASSERT_TRUE(s.ok()) << s;
  EXPECT_GE(barrier.blocked(0), late * 0.75) << absl::FormatDuration(barrier.blocked(0));
  // The last to arrive does not wait.
  EXPECT_EQ(barrier.blocked(1), absl::ZeroDuration());
}

TEST(ReplicaBarrierTest, DeadlineBreaksItForEveryone) {
  ReplicaBarrier barrier(3);
  absl::Status s = barrier.Arrive(1, absl::Now() + absl::Milliseconds(20));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(absl::StrContains(s.message(), "replicas [0, 2] of 3")) << s;
  EXPECT_EQ(barrier.Arrive(0, absl::InfiniteFuture()), s);  // broken: fails at once
}

TEST(ReplicaBarrierTest, AbortBreaksIt) {
  AbortSignal abort;
  ReplicaBarrier barrier(2, &abort);
  std::thread aborter([&] { abort.Abort(absl::AbortedError("stop")); });
  EXPECT_EQ(barrier.Arrive(0, absl::InfiniteFuture()), absl::AbortedError("stop"));
  aborter.join();
}

}  // namespace
}  // namespace meshtrain

#include "runtime/base/fork_join_pool.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/barrier.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

// Every index waits for all the others: the call returns only if they ran at once.
absl::Status MeetAll(absl::Barrier*& barrier, std::vector<std::thread::id>& ran_on, int i) {
  ran_on[i] = std::this_thread::get_id();
  if (barrier->Block()) delete barrier;
  return absl::OkStatus();
}

TEST(ForkJoinPoolTest, RunsEveryIndexAtOnceAgainAndAgain) {
  for (bool caller_runs_first : {false, true}) {
    constexpr int kN = 4;
    ForkJoinPool pool(kN, {.caller_runs_first = caller_runs_first});
    for (int round = 0; round < 3; ++round) {
      absl::Barrier* barrier = new absl::Barrier(kN);
      std::vector<std::thread::id> ran_on(kN);
      ASSERT_TRUE(pool.Run([&](int i) { return MeetAll(barrier, ran_on, i); }).ok());
      EXPECT_EQ(ran_on[0] == std::this_thread::get_id(), caller_runs_first) << round;
      for (int i = 1; i < kN; ++i) EXPECT_NE(ran_on[i], std::this_thread::get_id());
    }
  }
}

TEST(ForkJoinPoolTest, TheFirstErrorByIndexWinsAfterAllFinished) {
  ForkJoinPool pool(3, {});
  std::atomic<int> finished{0};
  absl::Status status = pool.Run([&](int i) {
    ++finished;
    return i == 0 ? absl::OkStatus() : absl::InternalError(absl::StrCat("index ", i));
  });
  EXPECT_EQ(finished, 3);
  EXPECT_EQ(status.message(), "index 1");
  // The next call starts clean.
  EXPECT_TRUE(pool.Run([](int) { return absl::OkStatus(); }).ok());
}

TEST(ForkJoinPoolTest, OneIndexRunsOnTheCaller) {
  ForkJoinPool pool(1, {});
  std::thread::id ran_on;
  ASSERT_TRUE(pool.Run([&](int) {
                    ran_on = std::this_thread::get_id();
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(ForkJoinPoolTest, RunOnNewThreadsFromAnyThread) {
  constexpr int kN = 3;
  absl::Barrier* barrier = new absl::Barrier(kN);
  std::vector<std::thread::id> ran_on(kN);
  absl::Status status;
  std::thread caller([&] {
    status = ForkJoinPool::RunOnNewThreads(kN, [&](int i) { return MeetAll(barrier, ran_on, i); });
  });
  caller.join();
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(ForkJoinPool::RunOnNewThreads(
                2, [](int i) { return i == 1 ? absl::NotFoundError("one") : absl::OkStatus(); })
                .code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace meshtrain

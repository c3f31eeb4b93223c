#include "runtime/base/abort_signal.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace meshtrain {
namespace {

TEST(AbortSignalTest, FirstErrorWins) {
  AbortSignal signal;
  EXPECT_FALSE(signal.aborted());
  EXPECT_TRUE(signal.status().ok());
  EXPECT_TRUE(signal.Abort(absl::UnavailableError("worker:1 went away")));
  EXPECT_FALSE(signal.Abort(absl::InternalError("later")));
  EXPECT_TRUE(signal.aborted());
  EXPECT_EQ(signal.status(), absl::UnavailableError("worker:1 went away"));
}

TEST(AbortSignalTest, WaitReturnsAtDeadlineWhenNotAborted) {
  AbortSignal signal;
  EXPECT_FALSE(signal.WaitUntil(absl::Now() + absl::Milliseconds(20)));
}

TEST(AbortSignalTest, WaitWakesOnAbortFromAnotherThread) {
  AbortSignal signal;
  std::thread aborter([&] { signal.Abort(absl::AbortedError("stop")); });
  EXPECT_TRUE(signal.WaitUntil(absl::Now() + absl::Seconds(30)));
  aborter.join();
}

TEST(AbortSignalTest, CallbacksRunOnceAndImmediatelyWhenAlreadyAborted) {
  AbortSignal signal;
  std::atomic<int> calls{0};
  int id = signal.AddCallback([&] { ++calls; });
  signal.Abort(absl::AbortedError("first"));
  signal.Abort(absl::AbortedError("second"));
  EXPECT_EQ(calls.load(), 1);
  signal.AddCallback([&] { calls += 10; });
  EXPECT_EQ(calls.load(), 11);
  signal.RemoveCallback(id);
}

TEST(AbortSignalTest, ResetArmsAgain) {
  AbortSignal signal;
  signal.Abort(absl::AbortedError("x"));
  signal.Reset();
  EXPECT_FALSE(signal.aborted());
  EXPECT_TRUE(signal.status().ok());
}

}  // namespace
}  // namespace meshtrain

#include "runtime/base/signal_pipe.h"

#include <signal.h>

#include <thread>

#include "gtest/gtest.h"

namespace meshtrain {
namespace {

TEST(SignalPipeTest, ASignalBecomesAByteOnThePipe) {
  auto pipe = SignalPipe::Install({SIGUSR1});
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  EXPECT_EQ((*pipe)->TryRead(), std::nullopt);
  ASSERT_EQ(::raise(SIGUSR1), 0);
  EXPECT_EQ((*pipe)->TryRead(), SIGUSR1);
  EXPECT_EQ((*pipe)->TryRead(), std::nullopt);
}

TEST(SignalPipeTest, OneAtATime) {
  auto first = SignalPipe::Install({SIGUSR1});
  ASSERT_TRUE(first.ok());
  auto second = SignalPipe::Install({SIGUSR2});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  first->reset();
  EXPECT_TRUE(SignalPipe::Install({SIGUSR2}).ok());
}

TEST(SignalPipeTest, RestoresThePreviousHandler) {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction saved {};
  ASSERT_EQ(::sigaction(SIGUSR1, &ignore, &saved), 0);
  {
    auto pipe = SignalPipe::Install({SIGUSR1});
    ASSERT_TRUE(pipe.ok());
    struct sigaction now {};
    ::sigaction(SIGUSR1, nullptr, &now);
    EXPECT_NE(now.sa_handler, SIG_IGN);
  }
  struct sigaction after {};
  ::sigaction(SIGUSR1, &saved, &after);
  EXPECT_EQ(after.sa_handler, SIG_IGN);
}

TEST(SignalPipeTest, WakeEndsAWaitWithZero) {
  auto pipe = SignalPipe::Install({SIGUSR1});
  ASSERT_TRUE(pipe.ok());
  int got = -1;
  std::thread waiter([&] { got = (*pipe)->Wait(); });
  (*pipe)->Wake();
  waiter.join();
  EXPECT_EQ(got, 0);
}

}  // namespace
}  // namespace meshtrain

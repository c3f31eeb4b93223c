// FakeEnv: an Env for tests whose clock stands still until the test calls
// Advance(); files go to the real (or a given) file system. Waits on it
// re-check their condition and the fake clock every millisecond of real time,
// so a waiter whose deadline the test passes returns at once. Thread-safe.
#ifndef MESHTRAIN_TESTS_UNIT_FAKE_ENV_H_
#define MESHTRAIN_TESTS_UNIT_FAKE_ENV_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "runtime/base/env.h"

namespace meshtrain {

class FakeEnv final : public Env {
 public:
  explicit FakeEnv(absl::Time start = absl::FromUnixSeconds(1'000'000),
                   FileSystem& files = DefaultFileSystem())
      : now_(start), files_(files) {}

  FileSystem& files() override { return files_; }
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  // Sleeping moves the fake clock: the sleeper's time passes, nobody waits.
  void SleepFor(absl::Duration duration) override { Advance(duration); }
  bool AwaitWithDeadline(absl::Mutex& mu, const absl::Condition& condition,
                         absl::Time deadline) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (!mu.AwaitWithTimeout(condition, absl::Milliseconds(1))) {
      if (Now() >= deadline) return condition.Eval();
    }
    return true;
  }

  void Advance(absl::Duration duration) {
    absl::MutexLock lock(&mu_);
    now_ += duration;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  FileSystem& files_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_TESTS_UNIT_FAKE_ENV_H_

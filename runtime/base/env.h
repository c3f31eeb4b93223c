// Env: the process's way to files and to time, passed down to the code that
// needs either, in the manner of LevelDB's Env: production uses
// Env::Default() (the POSIX file system and the real clock); tests pass a
// FakeEnv (tests/unit/fake_env.h) whose clock moves only when the test
// advances it, so that heartbeat, deadline and recovery rules are tested
// without sleeping. Thread-safe.
#ifndef MESHTRAIN_RUNTIME_BASE_ENV_H_
#define MESHTRAIN_RUNTIME_BASE_ENV_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/base/file_system.h"

namespace meshtrain {

class Env {
 public:
  virtual ~Env() = default;

  // The POSIX file system and the real clock; lives for the whole process.
  static Env& Default();

  virtual FileSystem& files() = 0;
  virtual absl::Time Now() = 0;
  virtual void SleepFor(absl::Duration duration) = 0;
  // With `mu` held: waits until `condition` holds or this Env's clock reaches
  // `deadline`, as absl::Mutex::AwaitWithDeadline does on the real clock.
  // Returns whether the condition holds.
  virtual bool AwaitWithDeadline(absl::Mutex& mu, const absl::Condition& condition,
                                 absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) = 0;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_BASE_ENV_H_

#include "runtime/base/env.h"

#include "absl/time/clock.h"

namespace meshtrain {
namespace {

class PosixEnv final : public Env {
 public:
  FileSystem& files() override { return DefaultFileSystem(); }
  absl::Time Now() override { return absl::Now(); }
  void SleepFor(absl::Duration duration) override { absl::SleepFor(duration); }
  bool AwaitWithDeadline(absl::Mutex& mu, const absl::Condition& condition,
                         absl::Time deadline) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return mu.AwaitWithDeadline(condition, deadline);
  }
};

}  // namespace

Env& Env::Default() {
  static PosixEnv* env = new PosixEnv();
  return *env;
}

}  // namespace meshtrain

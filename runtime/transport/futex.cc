#include "runtime/transport/futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

namespace meshtrain {
namespace {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "futex words must be plain 32-bit words");

timespec RelativeTimespec(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  return absl::ToTimespec(d);
}

// futex_waitv unavailable (ENOSYS) on this kernel; set once, read racily (benign).
std::atomic<bool> no_waitv{false};

}  // namespace

void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, absl::Duration timeout) {
  timespec ts = RelativeTimespec(timeout);
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void FutexWaitEither(std::atomic<uint32_t>* a, uint32_t expected_a, std::atomic<uint32_t>* b,
                     uint32_t expected_b, absl::Duration timeout) {
  if (b == nullptr) return FutexWait(a, expected_a, timeout);
#ifdef SYS_futex_waitv
  if (!no_waitv.load(std::memory_order_relaxed)) {
    futex_waitv waiters[2] = {};
    waiters[0].val = expected_a;
    waiters[0].uaddr = reinterpret_cast<uintptr_t>(a);
    waiters[0].flags = FUTEX_32;
    waiters[1].val = expected_b;
    waiters[1].uaddr = reinterpret_cast<uintptr_t>(b);
    waiters[1].flags = FUTEX_32;
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    timespec rel = RelativeTimespec(timeout);
    timespec abs{now.tv_sec + rel.tv_sec, now.tv_nsec + rel.tv_nsec};
    if (abs.tv_nsec >= 1000000000L) {
      abs.tv_sec += 1;
      abs.tv_nsec -= 1000000000L;
    }
    long rc = syscall(SYS_futex_waitv, waiters, 2, 0, &abs, CLOCK_MONOTONIC);
    if (rc >= 0 || errno != ENOSYS) return;
    no_waitv.store(true, std::memory_order_relaxed);
  }
#endif
  // Without futex_waitv: sleep on `a` briefly; the caller polls `b` in between.
  FutexWait(a, expected_a, std::min(timeout, absl::Microseconds(100)));
}

void FutexWakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace meshtrain

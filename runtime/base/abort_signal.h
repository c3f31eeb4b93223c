// AbortSignal: the first error of a task wins and stops every wait that polls it
// (as NCCL's abort flag and TensorFlow's cancellation manager do). Once aborted,
// `status()` says why; Reset() arms it again after recovery. Thread-safe.
#ifndef MESHTRAIN_RUNTIME_BASE_ABORT_SIGNAL_H_
#define MESHTRAIN_RUNTIME_BASE_ABORT_SIGNAL_H_

#include <atomic>
#include <functional>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace meshtrain {

class AbortSignal {
 public:
  AbortSignal() = default;
  AbortSignal(const AbortSignal&) = delete;
  AbortSignal& operator=(const AbortSignal&) = delete;

  // Records `status` (must not be OK) as the reason unless one is recorded
  // already, then runs the callbacks. Returns true if this call set the reason.
  bool Abort(absl::Status status);

  // Cheap enough to poll in a spin loop.
  bool aborted() const { return aborted_.load(std::memory_order_acquire); }

  // OK while not aborted, else the first reason.
  absl::Status status() const;

  // Blocks until aborted or `deadline`; returns aborted().
  bool WaitUntil(absl::Time deadline) const;

  // Runs `fn` on abort (at once if already aborted), from the aborting thread.
  // Callbacks wake waiters that cannot poll: condition variables, futexes,
  // sockets. Returns an id for RemoveCallback. A callback must not call
  // AddCallback or RemoveCallback.
  int AddCallback(std::function<void()> fn);
  // After this returns, the callback is not running and will not run: its
  // owner may be destroyed.
  void RemoveCallback(int id);

  // Arms the signal again (after a recovery); callbacks stay registered.
  void Reset();

 private:
  std::atomic<bool> aborted_{false};
  // Held while callbacks run, so RemoveCallback waits for a running one.
  absl::Mutex callback_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::map<int, std::function<void()>> callbacks_ ABSL_GUARDED_BY(mu_);
  int next_callback_id_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_BASE_ABORT_SIGNAL_H_

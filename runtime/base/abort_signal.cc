#include "runtime/base/abort_signal.h"

#include <utility>
#include <vector>

namespace meshtrain {

bool AbortSignal::Abort(absl::Status status) {
  absl::MutexLock callback_lock(&callback_mu_);
  std::vector<std::function<void()>> to_run;
  {
    absl::MutexLock lock(&mu_);
    if (aborted_.load(std::memory_order_relaxed)) return false;
    status_ = status.ok() ? absl::AbortedError("aborted without a reason") : std::move(status);
    aborted_.store(true, std::memory_order_release);
    for (auto& [id, fn] : callbacks_) to_run.push_back(fn);
  }
  // Outside mu_, so a callback may read status(); inside callback_mu_, so that
  // RemoveCallback cannot return while the callback runs.
  for (auto& fn : to_run) fn();
  return true;
}

absl::Status AbortSignal::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

bool AbortSignal::WaitUntil(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto is_aborted = [this]() { return aborted_.load(std::memory_order_relaxed); };
  mu_.AwaitWithDeadline(absl::Condition(&is_aborted), deadline);
  return aborted_.load(std::memory_order_relaxed);
}

int AbortSignal::AddCallback(std::function<void()> fn) {
  absl::MutexLock callback_lock(&callback_mu_);
  int id;
  bool run_now;
  {
    absl::MutexLock lock(&mu_);
    id = next_callback_id_++;
    callbacks_.emplace(id, fn);
    run_now = aborted_.load(std::memory_order_relaxed);
  }
  if (run_now) fn();
  return id;
}

void AbortSignal::RemoveCallback(int id) {
  absl::MutexLock callback_lock(&callback_mu_);
  absl::MutexLock lock(&mu_);
  callbacks_.erase(id);
}

void AbortSignal::Reset() {
  absl::MutexLock lock(&mu_);
  status_ = absl::OkStatus();
  aborted_.store(false, std::memory_order_release);
}

}  // namespace meshtrain

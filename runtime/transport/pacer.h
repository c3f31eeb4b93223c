// Pacer: the pacing of one exchange of a polling transport (TCP): after a
// pass that moved nothing, spin for `spin` before sleeping in ppoll(), since
// a peer's data usually arrives within microseconds and a sleep costs a
// wake-up. It also counts blocked time: from the first pass that moved nothing
// to the next that moved something (spinning and sleeping included).
// One per exchange; not thread-safe.
#ifndef MESHTRAIN_RUNTIME_TRANSPORT_PACER_H_
#define MESHTRAIN_RUNTIME_TRANSPORT_PACER_H_

#include <chrono>

#include "absl/time/time.h"
#include "runtime/transport/transport_counters.h"

namespace meshtrain {

class Pacer {
 public:
  explicit Pacer(absl::Duration spin) : spin_(absl::ToChronoNanoseconds(spin)) {}

  void EndStall(TransportCounters& counters) {
    if (!stalled_) return;
    stalled_ = false;
    counters.AddBlocked(absl::FromChrono(Clock::now() - stalled_since_));
  }
  void Progressed(TransportCounters& counters) {
    EndStall(counters);
    idle_ = false;
  }
  // A pass moved nothing: true once spinning has lasted `spin`.
  bool SpunOut() {
    auto now = Clock::now();
    if (!stalled_) {
      stalled_ = true;
      stalled_since_ = now;
    }
    if (!idle_) {
      idle_ = true;
      idle_since_ = now;
    }
    return now - idle_since_ >= spin_;
  }
  // Back from ppoll(): spin again before the next sleep.
  void Slept() { idle_ = false; }

 private:
  using Clock = std::chrono::steady_clock;
  const std::chrono::nanoseconds spin_;
  Clock::time_point idle_since_{};
  bool idle_ = false;
  Clock::time_point stalled_since_{};
  bool stalled_ = false;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TRANSPORT_PACER_H_

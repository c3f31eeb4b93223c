// TransportCounters: the counters behind Transport::stats(). The driving thread
// adds to them once per SendRecv (two relaxed atomic adds, and the time of each
// wait it already measures); any thread may take a snapshot. Thread-safe.
#ifndef MESHTRAIN_RUNTIME_TRANSPORT_TRANSPORT_COUNTERS_H_
#define MESHTRAIN_RUNTIME_TRANSPORT_TRANSPORT_COUNTERS_H_

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"
#include "runtime/transport/transport.h"

namespace meshtrain {

class TransportCounters {
 public:
  // A SendRecv that completed: its payload bytes in both directions.
  void CountCompleted(const SendRecvOp& op) {
    if (op.send_to >= 0) bytes_sent_.fetch_add(static_cast<int64_t>(op.send.size()), kOrder);
    if (op.recv_from >= 0) {
      bytes_received_.fetch_add(static_cast<int64_t>(op.recv.size()), kOrder);
    }
  }
  void AddBlocked(absl::Duration d) { blocked_ns_.fetch_add(absl::ToInt64Nanoseconds(d), kOrder); }

  TransportStats Snapshot() const {
    return {bytes_sent_.load(kOrder), bytes_received_.load(kOrder),
            absl::Nanoseconds(blocked_ns_.load(kOrder))};
  }

 private:
  static constexpr std::memory_order kOrder = std::memory_order_relaxed;
  std::atomic<int64_t> bytes_sent_{0};
  std::atomic<int64_t> bytes_received_{0};
  std::atomic<int64_t> blocked_ns_{0};
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TRANSPORT_TRANSPORT_COUNTERS_H_

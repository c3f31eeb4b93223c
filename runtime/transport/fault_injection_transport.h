// FaultInjectionTransport: wraps a Transport and, for tests, makes chosen ops
// (counted from 0 over this rank's SendRecv calls) fail, run late or vanish, so
// collectives' error paths run without real network faults.
//   kFail  : the op returns `status` without touching the wrapped transport.
//   kDelay : the op sleeps `delay` (or until its deadline or an abort), then runs.
//   kDrop  : the op returns OK without sending or receiving (a lost message: the
//            peers see it as a missing message at their deadline).
// Thread-safety: as the wrapped transport (one driving thread); Inject may be
// called from another thread. `base` and `abort` (nullable) must outlive this.
#ifndef MESHTRAIN_RUNTIME_TRANSPORT_FAULT_INJECTION_TRANSPORT_H_
#define MESHTRAIN_RUNTIME_TRANSPORT_FAULT_INJECTION_TRANSPORT_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/base/abort_signal.h"
#include "runtime/transport/transport.h"

namespace meshtrain {

struct Fault {
  enum class Kind { kFail, kDelay, kDrop };
  Kind kind = Kind::kFail;
  absl::Status status = absl::UnavailableError("injected fault");  // kFail
  absl::Duration delay = absl::ZeroDuration();                     // kDelay
};

class FaultInjectionTransport : public Transport {
 public:
  explicit FaultInjectionTransport(Transport* base, AbortSignal* abort = nullptr)
      : base_(base), abort_(abort) {}

  // Applies `fault` to op number `op_index` (0-based); replaces an earlier one.
  void Inject(int64_t op_index, Fault fault);
  // Ops issued so far.
  int64_t ops() const;

  int rank() const override { return base_->rank(); }
  int world_size() const override { return base_->world_size(); }
  std::string PeerName(int rank) const override { return base_->PeerName(rank); }
  absl::string_view kind() const override { return base_->kind(); }
  absl::Status SendRecv(const SendRecvOp& op) override;
  TransportStats stats() const override { return base_->stats(); }

 private:
  Transport* const base_;
  AbortSignal* const abort_;
  mutable absl::Mutex mu_;
  int64_t next_op_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int64_t, Fault> faults_ ABSL_GUARDED_BY(mu_);
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TRANSPORT_FAULT_INJECTION_TRANSPORT_H_

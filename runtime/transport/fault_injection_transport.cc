#include "runtime/transport/fault_injection_transport.h"

#include <algorithm>
#include <optional>
#include <utility>

namespace meshtrain {

void FaultInjectionTransport::Inject(int64_t op_index, Fault fault) {
  absl::MutexLock lock(&mu_);
  faults_[op_index] = std::move(fault);
}

int64_t FaultInjectionTransport::ops() const {
  absl::MutexLock lock(&mu_);
  return next_op_;
}

absl::Status FaultInjectionTransport::SendRecv(const SendRecvOp& op) {
  std::optional<Fault> fault;
  {
    absl::MutexLock lock(&mu_);
    auto it = faults_.find(next_op_++);
    if (it != faults_.end()) {
      fault = std::move(it->second);
      faults_.erase(it);
    }
  }
  if (fault.has_value()) {
    switch (fault->kind) {
      case Fault::Kind::kFail:
        return fault->status;
      case Fault::Kind::kDrop:
        return absl::OkStatus();
      case Fault::Kind::kDelay: {
        absl::Time until = std::min(absl::Now() + fault->delay, op.deadline);
        if (abort_ != nullptr) {
          if (abort_->WaitUntil(until)) return abort_->status();
        } else {
          absl::SleepFor(until - absl::Now());
        }
        break;
      }
    }
  }
  return base_->SendRecv(op);
}

}  // namespace meshtrain

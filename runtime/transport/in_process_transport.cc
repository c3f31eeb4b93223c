#include "runtime/transport/in_process_transport.h"

#include <cstring>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "runtime/base/check.h"
#include "runtime/transport/reduce_kernel.h"
#include "runtime/transport/transport_counters.h"

namespace meshtrain {
namespace {

enum class SlotState { kEmpty, kPosted, kTaken, kConsumed };

struct Slot {
  SlotState state = SlotState::kEmpty;
  const std::byte* data = nullptr;
  size_t size = 0;
  absl::Status error;  // set by the receiver on a size mismatch; the sender returns it too
};

class MeshState {
 public:
  MeshState(int world_size, AbortSignal* abort)
      : world_size_(world_size), abort_(abort), slots_(world_size * world_size) {
    if (abort_ != nullptr) {
      callback_id_ = abort_->AddCallback([this] {
        // Taking the lock makes waiters re-evaluate their conditions.
        absl::MutexLock lock(&mu_);
        aborted_ = true;
      });
    }
  }
  ~MeshState() {
    if (abort_ != nullptr) abort_->RemoveCallback(callback_id_);
  }

  int world_size() const { return world_size_; }

  // Adds the time spent waiting for the peer to `counters`.
  absl::Status SendRecv(int rank, const SendRecvOp& op, TransportCounters& counters) {
    const bool sending = op.send_to >= 0;
    const bool receiving = op.recv_from >= 0;
    if (sending) {
      absl::MutexLock lock(&mu_);
      Slot& slot = At(rank, op.send_to);
      MESHTRAIN_CHECK(slot.state == SlotState::kEmpty) << "previous send did not complete";
      slot = Slot{SlotState::kPosted, op.send.data(), op.send.size(), absl::OkStatus()};
    }
    absl::Status recv_status = receiving ? Receive(rank, op, counters) : absl::OkStatus();
    // After a failed receive the op fails anyway: withdraw the send unless the
    // peer is reading it.
    absl::Status send_status =
        sending ? AwaitConsumed(rank, op, /*abandon=*/!recv_status.ok(), counters)
                : absl::OkStatus();
    if (recv_status.ok() && send_status.ok()) counters.CountCompleted(op);
    return recv_status.ok() ? send_status : recv_status;
  }

 private:
  Slot& At(int src, int dst) { return slots_[src * world_size_ + dst]; }

  absl::Status AbortedStatus() const {
    return abort_ != nullptr ? abort_->status() : absl::AbortedError("aborted");
  }

  absl::Status Receive(int rank, const SendRecvOp& op, TransportCounters& counters) {
    const std::byte* data;
    {
      absl::MutexLock lock(&mu_);
      Slot& slot = At(op.recv_from, rank);
      auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return slot.state == SlotState::kPosted || aborted_;
      };
      if (!ready()) {
        const absl::Time waiting = absl::Now();
        mu_.AwaitWithDeadline(absl::Condition(&ready), op.deadline);
        counters.AddBlocked(absl::Now() - waiting);
      }
      if (slot.state != SlotState::kPosted) {
        if (aborted_) return AbortedStatus();
        return absl::DeadlineExceededError(absl::StrCat("in-process recv from rank ", op.recv_from,
                                                        " to rank ", rank,
                                                        ": no message before the deadline"));
      }
      if (slot.size != op.recv.size()) {
        slot.error = absl::InternalError(
            absl::StrCat("in-process message from rank ", op.recv_from, " to rank ", rank, " has ",
                         slot.size, " bytes, the receiver expected ", op.recv.size(),
                         "; the ranks issued different collectives"));
        slot.state = SlotState::kConsumed;
        return slot.error;
      }
      slot.state = SlotState::kTaken;
      data = slot.data;
    }
    if (op.action == RecvAction::kAddFloat32) {
      AddFloat32(reinterpret_cast<float*>(op.recv.data()), reinterpret_cast<const float*>(data),
                 op.recv.size() / sizeof(float));
    } else if (!op.recv.empty()) {
      std::memcpy(op.recv.data(), data, op.recv.size());
    }
    absl::MutexLock lock(&mu_);
    At(op.recv_from, rank).state = SlotState::kConsumed;
    return absl::OkStatus();
  }

  absl::Status AwaitConsumed(int rank, const SendRecvOp& op, bool abandon,
                             TransportCounters& counters) {
    absl::MutexLock lock(&mu_);
    Slot& slot = At(rank, op.send_to);
    auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return slot.state == SlotState::kConsumed || aborted_ || abandon;
    };
    if (!done()) {
      const absl::Time waiting = absl::Now();
      mu_.AwaitWithDeadline(absl::Condition(&done), op.deadline);
      counters.AddBlocked(absl::Now() - waiting);
    }
    if (slot.state == SlotState::kTaken) {
      // The receiver is reading our buffer right now: that copy ends soon.
      auto consumed = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return slot.state == SlotState::kConsumed;
      };
      mu_.Await(absl::Condition(&consumed));
    }
    if (slot.state == SlotState::kConsumed) {
      absl::Status error = std::move(slot.error);
      slot = Slot{};
      return error;
    }
    slot = Slot{};  // retract the post: nobody holds a pointer to it
    if (abandon) return absl::OkStatus();
    if (aborted_) return AbortedStatus();
    return absl::DeadlineExceededError(absl::StrCat("in-process send from rank ", rank, " to rank ",
                                                    op.send_to,
                                                    ": not received before the deadline"));
  }

  const int world_size_;
  AbortSignal* const abort_;
  int callback_id_ = -1;
  absl::Mutex mu_;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
};

class InProcessTransport : public Transport {
 public:
  InProcessTransport(int rank, std::shared_ptr<MeshState> mesh)
      : rank_(rank), mesh_(std::move(mesh)) {}

  int rank() const override { return rank_; }
  int world_size() const override { return mesh_->world_size(); }
  std::string PeerName(int rank) const override { return absl::StrCat("rank ", rank); }
  absl::string_view kind() const override { return "in_process"; }

  absl::Status SendRecv(const SendRecvOp& op) override {
    const int n = mesh_->world_size();
    if (op.send_to < -1 || op.send_to >= n || op.recv_from < -1 || op.recv_from >= n ||
        op.send_to == rank_ || op.recv_from == rank_) {
      return absl::InvalidArgumentError(
          absl::StrCat("in-process SendRecv on rank ", rank_, ": bad peer (send_to ", op.send_to,
                       ", recv_from ", op.recv_from, ", world size ", n, ")"));
    }
    if (op.action == RecvAction::kAddFloat32 &&
        (op.recv.size() % sizeof(float) != 0 ||
         reinterpret_cast<uintptr_t>(op.recv.data()) % alignof(float) != 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "in-process SendRecv on rank ", rank_,
          ": kAddFloat32 needs an aligned float buffer, got ", op.recv.size(), " bytes"));
    }
    return mesh_->SendRecv(rank_, op, counters_);
  }

  TransportStats stats() const override { return counters_.Snapshot(); }

 private:
  const int rank_;
  std::shared_ptr<MeshState> mesh_;
  TransportCounters counters_;
};

}  // namespace

std::vector<std::unique_ptr<Transport>> CreateInProcessMesh(int world_size, AbortSignal* abort) {
  MESHTRAIN_CHECK(world_size >= 1) << "world_size " << world_size;
  auto mesh = std::make_shared<MeshState>(world_size, abort);
  std::vector<std::unique_ptr<Transport>> transports;
  transports.reserve(world_size);
  for (int r = 0; r < world_size; ++r) {
    transports.push_back(std::make_unique<InProcessTransport>(r, mesh));
  }
  return transports;
}

}  // namespace meshtrain

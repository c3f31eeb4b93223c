// CancelOnAbort: while alive, cancels a client call when the task's AbortSignal
// fires, so an RPC that waits on the chief (a barrier, a key that never comes)
// stops with the rest of the process. The abort callback may still run after
// the destructor returned (AbortSignal copies its callbacks before running
// them), so it holds the call through shared state that the destructor clears.
// Thread-safe; one object per call.
#ifndef MESHTRAIN_RUNTIME_RPC_CANCEL_ON_ABORT_H_
#define MESHTRAIN_RUNTIME_RPC_CANCEL_ON_ABORT_H_

#include <memory>

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace meshtrain {

class AbortSignal;

class CancelOnAbort {
 public:
  // `abort` may be null (nothing to watch); `context` must outlive this object.
  CancelOnAbort(AbortSignal* abort, grpc::ClientContext* context);
  ~CancelOnAbort();
  CancelOnAbort(const CancelOnAbort&) = delete;
  CancelOnAbort& operator=(const CancelOnAbort&) = delete;

 private:
  struct Shared;
  AbortSignal* abort_;
  std::shared_ptr<Shared> shared_;
  int callback_id_ = -1;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_CANCEL_ON_ABORT_H_

#include "runtime/rpc/cancel_on_abort.h"

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/client_context.h"
#include "runtime/base/abort_signal.h"

namespace meshtrain {

struct CancelOnAbort::Shared {
  absl::Mutex mu;
  grpc::ClientContext* context ABSL_GUARDED_BY(mu);
};

CancelOnAbort::CancelOnAbort(AbortSignal* abort, grpc::ClientContext* context)
    : abort_(abort), shared_(std::make_shared<Shared>()) {
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->context = context;
  }
  if (abort_ == nullptr) return;
  callback_id_ = abort_->AddCallback([shared = shared_]() {
    absl::MutexLock lock(&shared->mu);
    if (shared->context != nullptr) shared->context->TryCancel();
  });
}

CancelOnAbort::~CancelOnAbort() {
  if (abort_ != nullptr) abort_->RemoveCallback(callback_id_);
  absl::MutexLock lock(&shared_->mu);
  shared_->context = nullptr;
}

}  // namespace meshtrain

// The one place where grpc::Status and absl::Status meet. Both use the same
// canonical codes (absl::StatusCode mirrors grpc::StatusCode numerically), so a
// conversion keeps the code and the message; `context` names the operation and
// the peer ("heartbeat to chief:0 (10.0.0.1:2222)"). Pure functions.
#ifndef MESHTRAIN_RUNTIME_RPC_GRPC_STATUS_H_
#define MESHTRAIN_RUNTIME_RPC_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"

namespace meshtrain {

// An RPC's outcome as our status, prefixed with `context` when not OK.
absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view context);

// A handler's outcome as gRPC's status, for the peer to read.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_GRPC_STATUS_H_

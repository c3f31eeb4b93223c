#include "runtime/rpc/grpc_status.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace meshtrain {
namespace {

// The codes are the same numbers in both libraries (the canonical gRPC codes);
// anything out of range becomes kUnknown rather than an invalid enum value.
absl::StatusCode ToAbslCode(grpc::StatusCode code) {
  const int value = static_cast<int>(code);
  if (value < 0 || value > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return absl::StatusCode::kUnknown;
  }
  return static_cast<absl::StatusCode>(value);
}

grpc::StatusCode ToGrpcCode(absl::StatusCode code) {
  const int value = static_cast<int>(code);
  if (value < 0 || value > static_cast<int>(grpc::StatusCode::UNAUTHENTICATED)) {
    return grpc::StatusCode::UNKNOWN;
  }
  return static_cast<grpc::StatusCode>(value);
}

}  // namespace

absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view context) {
  if (status.ok()) return absl::OkStatus();
  std::string message = status.error_message();
  if (message.empty()) message = "(no message)";
  if (context.empty()) return absl::Status(ToAbslCode(status.error_code()), message);
  return absl::Status(ToAbslCode(status.error_code()), absl::StrCat(context, ": ", message));
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(ToGrpcCode(status.code()), std::string(status.message()));
}

}  // namespace meshtrain

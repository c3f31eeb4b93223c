// MeshSecurity: how a task's mesh is secured (docs/security.md), one value
// handed from the command line to the gRPC server and channels and to the
// fast data paths. Default: plain (no credentials).
#ifndef MESHTRAIN_RUNTIME_SECURITY_MESH_SECURITY_H_
#define MESHTRAIN_RUNTIME_SECURITY_MESH_SECURITY_H_

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/security/tls_context.h"
#include "runtime/security/tls_credentials.h"

namespace meshtrain {

struct MeshSecurity {
  // gRPC mutual TLS (server and channels); null: insecure gRPC.
  std::shared_ptr<const TlsCredentials> credentials;
  // The tcp data path's TLS handshake; null exactly when `credentials` is.
  std::shared_ptr<const TlsContext> data_path_tls;
  // After the handshake: encrypt the data path's bytes (true), or keep them in
  // the clear on a fabric the user trusts (--data-path-encryption off).
  bool data_path_encryption = true;

  bool enabled() const { return credentials != nullptr; }

  // Both halves from one task's credentials.
  static absl::StatusOr<MeshSecurity> FromCredentials(TlsCredentials credentials,
                                                      bool data_path_encryption);
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_SECURITY_MESH_SECURITY_H_

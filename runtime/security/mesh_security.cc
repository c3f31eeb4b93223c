#include "runtime/security/mesh_security.h"

#include "runtime/base/status_macros.h"

namespace meshtrain {

absl::StatusOr<MeshSecurity> MeshSecurity::FromCredentials(TlsCredentials credentials,
                                                           bool data_path_encryption) {
  MeshSecurity security;
  MESHTRAIN_ASSIGN_OR_RETURN(security.data_path_tls, TlsContext::Create(credentials));
  security.credentials = std::make_shared<const TlsCredentials>(std::move(credentials));
  security.data_path_encryption = data_path_encryption;
  return security;
}

}  // namespace meshtrain

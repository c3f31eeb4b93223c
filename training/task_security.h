// A task's mesh security from its options (docs/security.md): credentials from
// --tls-dir or MESHTRAIN_TLS_DIR, --data-path-encryption, and --require-tls;
// and the start-up warning of a task that serves other hosts in the clear.
#ifndef MESHTRAIN_TRAINING_TASK_SECURITY_H_
#define MESHTRAIN_TRAINING_TASK_SECURITY_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/cluster/env_lookup.h"
#include "runtime/security/mesh_security.h"

namespace meshtrain {

struct TaskSecurityOptions {
  std::string tls_dir;  // "": MESHTRAIN_TLS_DIR, else none
  bool require_tls = false;
  std::string data_path_encryption = "on";  // on | off
};

inline constexpr absl::string_view kTlsDirVariable = "MESHTRAIN_TLS_DIR";

// The credentials of `task_name` ("worker:0"; "" before the task is known, as
// under mpirun and torchrun-style launches, where the server starts first:
// then the shared pair, cluster.crt). Plain when no directory is given, unless
// --require-tls (FailedPrecondition naming the fix). Bad --data-path-encryption
// values and unreadable credentials are InvalidArgument/NotFound with the fix.
absl::StatusOr<MeshSecurity> LoadTaskSecurity(const TaskSecurityOptions& options,
                                              const EnvLookup& env, absl::string_view task_name);

// The warning of a task whose listening sockets other hosts can reach
// (`bind_host` not loopback) and whose mesh is plain; "" when there is none.
std::string ExposureWarning(const MeshSecurity& security, absl::string_view bind_host);

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_TASK_SECURITY_H_

#include "training/task_security.h"

#include "absl/strings/str_cat.h"
#include "runtime/base/quote.h"
#include "runtime/base/status_macros.h"
#include "runtime/cluster/address.h"

namespace meshtrain {

absl::StatusOr<MeshSecurity> LoadTaskSecurity(const TaskSecurityOptions& options,
                                              const EnvLookup& env, absl::string_view task_name) {
  if (options.data_path_encryption != "on" && options.data_path_encryption != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("--data-path-encryption ", QuoteForMessage(options.data_path_encryption),
                     ": say on (the default) or off (authenticate only, on a trusted fabric)"));
  }
  std::string dir = options.tls_dir;
  std::string from = "--tls-dir";
  if (dir.empty()) {
    dir = env(kTlsDirVariable).value_or("");
    from = std::string(kTlsDirVariable);
  }
  if (dir.empty()) {
    if (options.require_tls) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--require-tls: this task has no credentials; make them with `meshtrain certs --out "
          "DIR` and pass --tls-dir DIR (or set ",
          kTlsDirVariable, ") on every task"));
    }
    return MeshSecurity{};
  }
  absl::StatusOr<TlsCredentials> credentials = LoadTlsCredentials(dir, task_name);
  if (!credentials.ok()) {
    return Annotate(credentials.status(), absl::StrCat("credentials from ", from));
  }
  return MeshSecurity::FromCredentials(std::move(*credentials),
                                       options.data_path_encryption == "on");
}

std::string ExposureWarning(const MeshSecurity& security, absl::string_view bind_host) {
  if (security.enabled() || IsLoopbackHost(bind_host)) return "";
  return absl::StrCat(
      "security: this task serves on ", bind_host.empty() ? "every interface" : bind_host,
      " without TLS: any host that reaches its ports can abort the cluster, read or inject "
      "gradients and make parameter servers save or restore checkpoints. Make credentials with "
      "`meshtrain certs --out DIR`, give every task --tls-dir DIR (or ",
      kTlsDirVariable,
      "), and add --require-tls to refuse starting without them (docs/security.md)");
}

}  // namespace meshtrain

// TlsCredentials: what a task needs to join a secure mesh, read from a
// credentials directory (`meshtrain certs --out DIR` writes one; a Kubernetes
// Secret or a shared file system mounts it):
//   ca.crt                 the cluster's CA certificate (every task)
//   <job>-<index>.crt/.key this task's certificate and key ("worker-0.crt"),
//   cluster.crt/.key       or the one certificate every task shares.
//   ca.key                 the CA's key: only `meshtrain certs` reads it; keep
//                          it off the tasks.
// A task's own files come first; the shared pair is the fallback. Every
// certificate of a cluster names kClusterServerName among its DNS names: peers
// verify that name and the cluster CA's signature, not the host they dialled,
// so a certificate holds for a task wherever a scheduler places it.
//
// Errors name the file and the fix (run `meshtrain certs`, check the mount).
#ifndef MESHTRAIN_RUNTIME_SECURITY_TLS_CREDENTIALS_H_
#define MESHTRAIN_RUNTIME_SECURITY_TLS_CREDENTIALS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshtrain {

// The DNS name every certificate of a meshtrain cluster carries and every peer
// checks (gRPC's target name override, the data path's host check).
inline constexpr absl::string_view kClusterServerName = "meshtrain";

struct TlsCredentials {
  std::string ca_pem;    // the cluster CA's certificate(s)
  std::string cert_pem;  // this task's certificate (and any intermediates)
  std::string key_pem;   // its private key
  std::string source;    // "DIR/worker-0.crt" or "DIR/cluster.crt", for messages
};

// File stems of a task's own pair ("worker:0" -> "worker-0") and the shared one.
std::string TaskCertificateStem(absl::string_view task_name);
inline constexpr absl::string_view kSharedCertificateStem = "cluster";

// Reads `dir` for `task_name` ("worker:0"; "" for the shared pair only):
// ca.crt, then the task's own pair or the shared one. Checks that the key matches the certificate
// and that the certificate is signed by the CA and valid now, so that a wrong mount fails at
// start-up with its reason instead of every handshake failing later.
absl::StatusOr<TlsCredentials> LoadTlsCredentials(const std::string& dir,
                                                  absl::string_view task_name);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_SECURITY_TLS_CREDENTIALS_H_

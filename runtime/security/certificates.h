// Cluster certificates, made with OpenSSL: a CA of the cluster (an ECDSA P-256
// key, self-signed) and, signed by it, one certificate per task or one shared
// by every task. Each task certificate is valid for TLS servers and clients
// (the mesh is mutual TLS), carries the task name as its common name and
// kClusterServerName (tls_credentials.h) plus the task's hosts as DNS or IP
// names. `meshtrain certs` is its command.
#ifndef MESHTRAIN_RUNTIME_SECURITY_CERTIFICATES_H_
#define MESHTRAIN_RUNTIME_SECURITY_CERTIFICATES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace meshtrain {

struct CertificateSubject {
  std::string name;                // "worker:0", or "cluster" for the shared one
  std::vector<std::string> hosts;  // extra DNS names or IP addresses
};

struct CertificateOptions {
  std::string out_dir;
  // One pair per subject; their names must be distinct.
  std::vector<CertificateSubject> subjects;
  int days = 365;  // validity of the task certificates (the CA: 10 times it)
  // Reuse DIR/ca.crt and DIR/ca.key when present (adding tasks to a cluster);
  // otherwise a new CA is made and an existing one is an error.
  bool reuse_ca = false;
};

struct PemPair {
  std::string cert_pem;
  std::string key_pem;
};

// The CA (ca.crt, ca.key) and each subject's <stem>.crt/.key under out_dir,
// keys written with mode 0600. Returns the paths written.
absl::StatusOr<std::vector<std::string>> WriteClusterCertificates(
    const CertificateOptions& options);

// In memory, for tests: a new CA, and a certificate for `subject` signed by it.
absl::StatusOr<PemPair> MakeCertificateAuthority(int days);
absl::StatusOr<PemPair> MakeTaskCertificate(const PemPair& ca, const CertificateSubject& subject,
                                            int days);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_SECURITY_CERTIFICATES_H_

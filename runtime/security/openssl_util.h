// Small helpers over OpenSSL's C API for this folder: owning pointers, the
// error queue as text, and PEM to objects. Not for use outside runtime/security.
#ifndef MESHTRAIN_RUNTIME_SECURITY_OPENSSL_UTIL_H_
#define MESHTRAIN_RUNTIME_SECURITY_OPENSSL_UTIL_H_

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshtrain {

struct OpenSslFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
  void operator()(SSL* p) const { SSL_free(p); }
};
template <typename T>
using OpenSslPtr = std::unique_ptr<T, OpenSslFree>;

// Empties this thread's OpenSSL error queue into one line ("" when empty).
std::string DrainOpenSslErrors();

// Every certificate in `pem` (at least one), and the one private key in `pem`.
// `what` names the source in errors ("ca.crt").
absl::StatusOr<std::vector<OpenSslPtr<X509>>> ParseCertificates(absl::string_view pem,
                                                                absl::string_view what);
absl::StatusOr<OpenSslPtr<EVP_PKEY>> ParsePrivateKey(absl::string_view pem, absl::string_view what);
absl::StatusOr<std::string> CertificateToPem(X509* cert);
absl::StatusOr<std::string> PrivateKeyToPem(EVP_PKEY* key);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_SECURITY_OPENSSL_UTIL_H_

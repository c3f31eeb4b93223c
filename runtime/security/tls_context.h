// TlsContext: the OpenSSL context of a task's raw TCP links (the tcp data
// path), made from its TlsCredentials: TLS 1.3 only, the peer's certificate
// required on both sides and verified against the cluster CA and
// kClusterServerName, no session tickets or resumption (each link handshakes
// once), partial writes enabled for nonblocking sockets. The cipher suite
// order is chosen for this CPU: AES-128-GCM first where the CPU has AES and
// carry-less multiply instructions, ChaCha20-Poly1305 first elsewhere.
// Thread-safe once made; shared by every link of the task.
#ifndef MESHTRAIN_RUNTIME_SECURITY_TLS_CONTEXT_H_
#define MESHTRAIN_RUNTIME_SECURITY_TLS_CONTEXT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/security/tls_credentials.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace meshtrain {

class TlsContext {
 public:
  static absl::StatusOr<std::shared_ptr<const TlsContext>> Create(const TlsCredentials& creds);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* get() const { return ctx_; }
  // A connection over the connected socket `fd` (not owned; blocking or not),
  // whose writes never raise SIGPIPE (send with MSG_NOSIGNAL): a peer that
  // closes is an error of the call, not the end of the process. The caller
  // frees it with SSL_free and then closes `fd`; null when out of memory.
  SSL* NewConnection(int fd) const;
  // The TLS 1.3 cipher suites, in preference order.
  const std::string& cipher_suites() const { return cipher_suites_; }

 private:
  TlsContext(SSL_CTX* ctx, std::string cipher_suites)
      : ctx_(ctx), cipher_suites_(std::move(cipher_suites)) {}
  SSL_CTX* const ctx_;
  const std::string cipher_suites_;
};

// The cipher suite list for this CPU (see above).
std::string PreferredCipherSuites();

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_SECURITY_TLS_CONTEXT_H_

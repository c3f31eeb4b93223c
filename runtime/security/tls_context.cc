#include "runtime/security/tls_context.h"

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/security/openssl_util.h"

namespace meshtrain {
namespace {

// OpenSSL's socket BIO writes with write(2), which raises SIGPIPE on a closed
// connection; this one is the socket BIO with send(MSG_NOSIGNAL) instead.
int SendNoSignal(BIO* bio, const char* data, int size) {
  int fd = -1;
  BIO_get_fd(bio, &fd);
  BIO_clear_retry_flags(bio);
  const ssize_t sent = ::send(fd, data, static_cast<size_t>(size), MSG_NOSIGNAL);
  if (sent <= 0 && BIO_sock_should_retry(static_cast<int>(sent))) BIO_set_retry_write(bio);
  return static_cast<int>(sent);
}

BIO_METHOD* SocketMethodWithoutSigpipe() {
  static BIO_METHOD* const method = [] {
    const BIO_METHOD* socket = BIO_s_socket();
    BIO_METHOD* m = BIO_meth_new(BIO_TYPE_SOCKET, "meshtrain socket");
    BIO_meth_set_write(m, SendNoSignal);
    BIO_meth_set_read(m, BIO_meth_get_read(socket));
    BIO_meth_set_puts(m, BIO_meth_get_puts(socket));
    BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(socket));
    BIO_meth_set_create(m, BIO_meth_get_create(socket));
    BIO_meth_set_destroy(m, BIO_meth_get_destroy(socket));
    return m;
  }();
  return method;
}

}  // namespace

std::string PreferredCipherSuites() {
#if defined(__x86_64__) || defined(__i386__)
  const bool aes_in_hardware = __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul");
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRYPTO)
  const bool aes_in_hardware = true;
#else
  const bool aes_in_hardware = false;
#endif
  return aes_in_hardware
             ? "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
             : "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384";
}

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::Create(const TlsCredentials& creds) {
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<OpenSslPtr<X509>> cas,
                             ParseCertificates(creds.ca_pem, "the cluster CA"));
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<OpenSslPtr<X509>> chain,
                             ParseCertificates(creds.cert_pem, creds.source));
  MESHTRAIN_ASSIGN_OR_RETURN(OpenSslPtr<EVP_PKEY> key,
                             ParsePrivateKey(creds.key_pem, creds.source));
  OpenSslPtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (ctx == nullptr) {
    return absl::InternalError(absl::StrCat("tls: SSL_CTX_new: ", DrainOpenSslErrors()));
  }
  const std::string suites = PreferredCipherSuites();
  bool ok = SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION) == 1 &&
            SSL_CTX_set_ciphersuites(ctx.get(), suites.c_str()) == 1 &&
            SSL_CTX_use_certificate(ctx.get(), chain[0].get()) == 1 &&
            SSL_CTX_use_PrivateKey(ctx.get(), key.get()) == 1 &&
            SSL_CTX_check_private_key(ctx.get()) == 1;
  for (size_t i = 1; ok && i < chain.size(); ++i) {
    ok = SSL_CTX_add1_chain_cert(ctx.get(), chain[i].get()) == 1;
  }
  X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
  for (size_t i = 0; ok && i < cas.size(); ++i) ok = X509_STORE_add_cert(store, cas[i].get()) == 1;
  ok = ok && X509_VERIFY_PARAM_set1_host(SSL_CTX_get0_param(ctx.get()), kClusterServerName.data(),
                                         kClusterServerName.size()) == 1;
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls: credentials from ", creds.source,
                     " do not make a TLS context: ", DrainOpenSslErrors()));
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return std::shared_ptr<const TlsContext>(new TlsContext(ctx.release(), suites));
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

SSL* TlsContext::NewConnection(int fd) const {
  SSL* ssl = SSL_new(ctx_);
  BIO* bio = BIO_new(SocketMethodWithoutSigpipe());
  if (ssl == nullptr || bio == nullptr) {
    SSL_free(ssl);
    BIO_free(bio);
    return nullptr;
  }
  BIO_set_fd(bio, fd, BIO_NOCLOSE);
  SSL_set_bio(ssl, bio, bio);
  return ssl;
}

}  // namespace meshtrain

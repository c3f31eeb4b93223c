// TlsContext: two tasks of one cluster complete a mutual TLS 1.3 handshake over
// a socket pair and exchange bytes; a peer of another CA, or one without a
// certificate, is refused by the handshake.
#include "runtime/security/tls_context.h"

#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/security/certificates.h"

namespace meshtrain {
namespace {

TlsCredentials Credentials(const PemPair& ca, const std::string& task) {
  auto pair = MakeTaskCertificate(ca, {task, {}}, 1);
  EXPECT_TRUE(pair.ok()) << pair.status();
  return TlsCredentials{ca.cert_pem, pair->cert_pem, pair->key_pem, task};
}

// Handshakes `client` with `server` over blocking sockets; true when both ends
// completed and the client's bytes arrived.
bool Handshake(const TlsContext* client, const TlsContext* server) {
  int fds[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  bool server_ok = false;
  std::thread accept([&] {
    SSL* ssl = server->NewConnection(fds[1]);
    char buffer[5] = {};
    server_ok =
        SSL_accept(ssl) == 1 && SSL_read(ssl, buffer, 5) == 5 && std::string(buffer, 5) == "hello";
    SSL_free(ssl);
    ::close(fds[1]);  // a failed accept unblocks the client
  });
  SSL* ssl = client->NewConnection(fds[0]);
  const bool client_ok = SSL_connect(ssl) == 1 && SSL_write(ssl, "hello", 5) == 5;
  SSL_free(ssl);
  ::close(fds[0]);
  accept.join();
  return client_ok && server_ok;
}

TEST(TlsContextTest, TasksOfOneClusterHandshakeAndOutsidersAreRefused) {
  auto ca = MakeCertificateAuthority(1);
  ASSERT_TRUE(ca.ok()) << ca.status();
  auto a = TlsContext::Create(Credentials(*ca, "worker:0"));
  auto b = TlsContext::Create(Credentials(*ca, "worker:1"));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(Handshake(a->get(), b->get()));

  auto other_ca = MakeCertificateAuthority(1);
  ASSERT_TRUE(other_ca.ok());
  auto outsider = TlsContext::Create(Credentials(*other_ca, "worker:0"));
  ASSERT_TRUE(outsider.ok()) << outsider.status();
  EXPECT_FALSE(Handshake(outsider->get(), b->get()));
  EXPECT_FALSE(Handshake(a->get(), outsider->get()));

  // A client that offers no certificate at all.
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  std::thread anonymous([&] {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fds[0]);
    (void)SSL_connect(ssl);  // TLS 1.3: the client finishes before the server checks it
    char byte;
    (void)SSL_read(ssl, &byte, 1);  // the server's alert
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ::close(fds[0]);
  });
  SSL* ssl = (*b)->NewConnection(fds[1]);
  EXPECT_NE(SSL_accept(ssl), 1);
  SSL_free(ssl);
  ::close(fds[1]);
  anonymous.join();
}

TEST(TlsContextTest, PrefersAnAeadCipherForThisCpu) {
  const std::string suites = PreferredCipherSuites();
  EXPECT_THAT(suites, ::testing::AnyOf(::testing::StartsWith("TLS_AES_128_GCM"),
                                       ::testing::StartsWith("TLS_CHACHA20_POLY1305")));
}

}  // namespace
}  // namespace meshtrain

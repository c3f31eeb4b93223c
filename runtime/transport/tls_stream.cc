#include "runtime/transport/tls_stream.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "runtime/base/tcp_socket.h"

namespace meshtrain {
namespace {

// Why the last call on `ssl` failed with SSL_get_error's `err`; `saved_errno`
// is errno right after the call. Empties the thread's error queue.
std::string TlsErrorText(SSL* ssl, int err, int saved_errno) {
  if (err == SSL_ERROR_ZERO_RETURN) return "connection closed by the peer (TLS close)";
  if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    return saved_errno == 0 ? "connection closed by the peer" : strerror(saved_errno);
  }
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
      absl::StrAppend(&text, text.empty() ? "" : "; ", "connection closed by the peer");
      continue;
    }
    const char* reason = ERR_reason_error_string(e);
    absl::StrAppend(&text, text.empty() ? "" : "; ",
                    reason != nullptr ? reason : absl::StrCat("OpenSSL error ", e));
  }
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    absl::StrAppend(&text, text.empty() ? "" : "; ",
                    "certificate check: ", X509_verify_cert_error_string(verify));
  }
  if (text.empty()) text = absl::StrCat("TLS error ", err);
  return text;
}

// What SSL_get_error's `err` waits for: POLLIN or POLLOUT, or 0 for an error.
short WaitEvents(int err) {
  if (err == SSL_ERROR_WANT_READ) return POLLIN;
  if (err == SSL_ERROR_WANT_WRITE) return POLLOUT;
  return 0;
}

// Classifies a nonpositive return `rc` of an I/O call on `ssl` (see header).
ssize_t Blocked(SSL* ssl, int rc, short* wait_events, std::string* error) {
  const int saved_errno = errno;
  const int err = SSL_get_error(ssl, rc);
  *wait_events = WaitEvents(err);
  if (*wait_events != 0) return 0;
  *error = TlsErrorText(ssl, err, saved_errno);
  return -1;
}

// Calls `io` (TlsWriteSome or TlsReadSome) until all `n` bytes moved.
template <typename Io, typename Byte>
absl::Status WholeIo(Io io, SSL* ssl, int fd, Byte* p, size_t n, absl::Time deadline,
                     absl::string_view what) {
  while (n > 0) {
    short events = 0;
    std::string error;
    const ssize_t rc = io(ssl, p, n, &events, &error);
    if (rc < 0) return absl::UnavailableError(absl::StrCat(what, ": ", error));
    if (rc > 0) {
      p += rc;
      n -= rc;
    } else if (!PollUntil(fd, events, deadline)) {
      return absl::DeadlineExceededError(absl::StrCat(what, ": timed out"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

void ClearTlsErrors() { ERR_clear_error(); }

absl::Status TlsHandshake(SSL* ssl, int fd, TlsRole role, absl::Time deadline, AbortSignal* abort,
                          absl::string_view what) {
  ClearTlsErrors();
  while (true) {
    const int rc = role == TlsRole::kServer ? SSL_accept(ssl) : SSL_connect(ssl);
    if (rc == 1) return absl::OkStatus();
    const int saved_errno = errno;
    const int err = SSL_get_error(ssl, rc);
    const short events = WaitEvents(err);
    if (events == 0) {
      return absl::UnavailableError(
          absl::StrCat(what, ": TLS handshake failed: ", TlsErrorText(ssl, err, saved_errno)));
    }
    // Poll in slices so that the abort signal is seen within 50 ms.
    while (true) {
      if (abort != nullptr && abort->aborted()) return abort->status();
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat(what, ": TLS handshake did not complete before the deadline"));
      }
      if (PollUntil(fd, events, std::min(deadline, absl::Now() + absl::Milliseconds(50)))) break;
    }
  }
}

ssize_t TlsWriteSome(SSL* ssl, const void* data, size_t n, short* wait_events, std::string* error) {
  const int rc = SSL_write(ssl, data, static_cast<int>(std::min<size_t>(n, INT_MAX)));
  return rc > 0 ? rc : Blocked(ssl, rc, wait_events, error);
}

ssize_t TlsReadSome(SSL* ssl, void* data, size_t n, short* wait_events, std::string* error) {
  const int rc = SSL_read(ssl, data, static_cast<int>(std::min<size_t>(n, INT_MAX)));
  return rc > 0 ? rc : Blocked(ssl, rc, wait_events, error);
}

absl::Status TlsWriteAll(SSL* ssl, int fd, const void* data, size_t n, absl::Time deadline,
                         absl::string_view what) {
  ClearTlsErrors();
  return WholeIo(&TlsWriteSome, ssl, fd, static_cast<const char*>(data), n, deadline, what);
}

absl::Status TlsReadAll(SSL* ssl, int fd, void* data, size_t n, absl::Time deadline,
                        absl::string_view what) {
  ClearTlsErrors();
  return WholeIo(&TlsReadSome, ssl, fd, static_cast<char*>(data), n, deadline, what);
}

bool BufferTlsWrites(SSL* ssl, size_t bytes) {
  BIO* socket = SSL_get_wbio(ssl);
  BIO* buffer = BIO_new(BIO_f_buffer());
  if (buffer == nullptr || BIO_set_write_buffer_size(buffer, static_cast<long>(bytes)) != 1) {
    BIO_free(buffer);
    return false;
  }
  // The chain holds a reference of its own to the socket BIO, which stays the
  // read BIO; SSL_set0_wbio drops the SSL's write reference to it.
  BIO_up_ref(socket);
  BIO_push(buffer, socket);
  SSL_set0_wbio(ssl, buffer);
  return true;
}

int FlushTlsWrites(SSL* ssl, short* wait_events, std::string* error) {
  BIO* buffer = SSL_get_wbio(ssl);
  if (BIO_method_type(buffer) != BIO_TYPE_BUFFER || BIO_wpending(buffer) == 0) return 1;
  errno = 0;
  if (BIO_flush(buffer) == 1) return 1;
  if (BIO_should_retry(buffer)) {
    *wait_events = POLLOUT;
    return 0;
  }
  *error = errno != 0 ? strerror(errno) : "connection closed by the peer";
  return -1;
}

bool TlsHasBuffered(SSL* ssl) { return SSL_pending(ssl) > 0 || SSL_has_pending(ssl) == 1; }

}  // namespace meshtrain

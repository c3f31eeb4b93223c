// TLS over one nonblocking socket of TcpTransport: the handshake and whole
// reads and writes of the connection protocol, each bounded by a deadline, and
// the single nonblocking calls its poll pump makes. The SSL object comes from
// TlsContext::NewConnection (runtime/security), which the caller owns.
//
// Errors: kDeadlineExceeded at the deadline, kUnavailable for a failed
// handshake (with OpenSSL's reason and the certificate check's), a TLS alert,
// a closed or reset connection; the abort signal's status once it fired.
// Thread-safety: free functions on connections the caller owns; the abort
// signal may fire from any thread.
#ifndef MESHTRAIN_RUNTIME_TRANSPORT_TLS_STREAM_H_
#define MESHTRAIN_RUNTIME_TRANSPORT_TLS_STREAM_H_

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "runtime/base/abort_signal.h"

typedef struct ssl_st SSL;

namespace meshtrain {

enum class TlsRole { kClient, kServer };

// Runs the TLS handshake on `ssl` (over the socket `fd`) until it completes,
// fails, `deadline` passes or `abort` (nullable) fires. `what` starts errors
// ("tcp connect to worker:0").
absl::Status TlsHandshake(SSL* ssl, int fd, TlsRole role, absl::Time deadline, AbortSignal* abort,
                          absl::string_view what);

// Writes or reads all `n` bytes inside TLS; as WriteAll and ReadAll in
// tcp_socket.h.
absl::Status TlsWriteAll(SSL* ssl, int fd, const void* data, size_t n, absl::Time deadline,
                         absl::string_view what);
absl::Status TlsReadAll(SSL* ssl, int fd, void* data, size_t n, absl::Time deadline,
                        absl::string_view what);

// One nonblocking SSL_write or SSL_read of at most `n` bytes. Returns the bytes
// moved (> 0); 0 when the call would block, with `*wait_events` the poll events
// it waits for (POLLIN or POLLOUT: TLS may read to write and write to read);
// -1 on an error, with `*error` saying why ("connection closed by the peer").
ssize_t TlsWriteSome(SSL* ssl, const void* data, size_t n, short* wait_events, std::string* error);
ssize_t TlsReadSome(SSL* ssl, void* data, size_t n, short* wait_events, std::string* error);

// Puts a buffer of `bytes` in front of the socket for the records SSL_write
// makes, so that many records leave in one send (TLS records carry at most 16
// KiB). After writing, FlushTlsWrites sends them: 1 when all left, 0 when the
// socket is full (`*wait_events` POLLOUT), -1 on an error (`*error`).
bool BufferTlsWrites(SSL* ssl, size_t bytes);
int FlushTlsWrites(SSL* ssl, short* wait_events, std::string* error);

// Decrypted bytes or unprocessed records OpenSSL holds for `ssl`: they do not
// make the socket readable, so a reader checks this before sleeping in poll.
bool TlsHasBuffered(SSL* ssl);

// Clears this thread's OpenSSL error queue, which must be empty before an I/O
// call for SSL_get_error to be right (other code on the thread may leave it).
void ClearTlsErrors();

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TRANSPORT_TLS_STREAM_H_

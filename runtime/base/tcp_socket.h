// Socket calls for setting up TCP connections (TcpTransport's handshake, the
// torchrun-style rendezvous), each bounded by a deadline: dialling with retry
// and backoff, and whole writes and reads on a nonblocking socket. Not the data
// path: TcpTransport::SendRecv drives its sockets itself.
//
// Errors: kDeadlineExceeded at the deadline, kUnavailable for a closed or reset
// connection, the abort signal's status once it fired (Dial only).
// Thread-safety: free functions on sockets the caller owns; the abort signal
// may fire from any thread.
#ifndef MESHTRAIN_RUNTIME_BASE_TCP_SOCKET_H_
#define MESHTRAIN_RUNTIME_BASE_TCP_SOCKET_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "runtime/base/abort_signal.h"

namespace meshtrain {

// TCP_NODELAY, and SO_SNDBUF/SO_RCVBUF of `buffer_bytes` unless it is 0.
void TuneSocket(int fd, int buffer_bytes);

// Waits for `events` on `fd` until `deadline`; false at the deadline. True on
// a poll() error too, so that the caller's next I/O call reports it.
bool PollUntil(int fd, short events, absl::Time deadline);

// Writes or reads all `n` bytes on a nonblocking socket; `what` starts errors.
absl::Status WriteAll(int fd, const void* data, size_t n, absl::Time deadline,
                      absl::string_view what);
absl::Status ReadAll(int fd, void* data, size_t n, absl::Time deadline, absl::string_view what);

// Dials host:port, retrying refusals with backoff (2 ms doubling to 100 ms)
// until `deadline`; returns a connected nonblocking socket. `abort` may be null.
absl::StatusOr<int> Dial(const std::string& host, int port, const std::string& peer_name,
                         absl::Time deadline, AbortSignal* abort);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_BASE_TCP_SOCKET_H_

// TcpListener: a bound, listening TCP socket, made before a rank's peers learn
// its port, so that a peer's dial never races the bind (step 1 of
// TcpTransport's connection protocol). It owns the socket, which is
// nonblocking, close-on-exec and listens with a backlog of 256: the kernel
// completes dialled connections there while the owner is still dialling others.
// TcpTransport::Create accepts from it and keeps it until connected.
//
// Thread-safety: immutable after Create; port() and fd() may be read from any
// thread. Accepting from fd() is the owner's business (one thread at a time).
#ifndef MESHTRAIN_RUNTIME_TRANSPORT_TCP_LISTENER_H_
#define MESHTRAIN_RUNTIME_TRANSPORT_TCP_LISTENER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshtrain {

class TcpListener {
 public:
  // Binds host:port ("0.0.0.0" for every interface, port 0 to pick a free
  // one) and listens. kInvalidArgument for a host that does not resolve,
  // kUnavailable when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<TcpListener>> Create(absl::string_view host, int port);
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  // The bound port (the picked one when Create was given 0).
  int port() const { return port_; }
  int fd() const { return fd_; }

 private:
  TcpListener(int fd, int port) : fd_(fd), port_(port) {}
  int fd_;
  int port_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TRANSPORT_TCP_LISTENER_H_

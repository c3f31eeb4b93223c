#include "runtime/transport/tcp_listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/memory/memory.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace meshtrain {

absl::StatusOr<std::unique_ptr<TcpListener>> TcpListener::Create(absl::string_view host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* resolved = nullptr;
  std::string host_str(host), port_str = absl::StrCat(port);
  int gai = getaddrinfo(host_str.empty() ? nullptr : host_str.c_str(), port_str.c_str(), &hints,
                        &resolved);
  if (gai != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tcp listen on '", host, "': cannot resolve: ", gai_strerror(gai)));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(resolved, freeaddrinfo);
  int fd = socket(resolved->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, resolved->ai_addr, resolved->ai_addrlen) != 0 || listen(fd, 256) != 0) {
    int err = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("tcp listen on ", host, ":", port, ": ", strerror(err),
                     err == EADDRINUSE ? "; pick another port or 0 for a free one" : ""));
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int bound = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                         : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  return absl::WrapUnique(new TcpListener(fd, bound));
}

TcpListener::~TcpListener() { close(fd_); }

}  // namespace meshtrain

#include "runtime/base/tcp_socket.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"

namespace meshtrain {

void TuneSocket(int fd, int buffer_bytes) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (buffer_bytes > 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof(buffer_bytes));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof(buffer_bytes));
  }
}

bool PollUntil(int fd, short events, absl::Time deadline) {
  while (true) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd p{fd, events, 0};
    int ms = static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1000));
    int rc = poll(&p, 1, ms);
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return true;  // let the caller's I/O report it
  }
}

absl::Status WriteAll(int fd, const void* data, size_t n, absl::Time deadline,
                      absl::string_view what) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t rc = send(fd, p, n, MSG_NOSIGNAL);
    if (rc > 0) {
      p += rc;
      n -= rc;
    } else if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (!PollUntil(fd, POLLOUT, deadline)) {
        return absl::DeadlineExceededError(absl::StrCat(what, ": timed out"));
      }
    } else {
      return absl::UnavailableError(absl::StrCat(what, ": ", strerror(errno)));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadAll(int fd, void* data, size_t n, absl::Time deadline, absl::string_view what) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    ssize_t rc = recv(fd, p, n, 0);
    if (rc > 0) {
      p += rc;
      n -= rc;
    } else if (rc == 0) {
      return absl::UnavailableError(absl::StrCat(what, ": connection closed"));
    } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      if (!PollUntil(fd, POLLIN, deadline)) {
        return absl::DeadlineExceededError(absl::StrCat(what, ": timed out"));
      }
    } else {
      return absl::UnavailableError(absl::StrCat(what, ": ", strerror(errno)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int> Dial(const std::string& host, int port, const std::string& peer_name,
                         absl::Time deadline, AbortSignal* abort) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* resolved = nullptr;
  std::string port_str = absl::StrCat(port);
  int gai = getaddrinfo(host.c_str(), port_str.c_str(), &hints, &resolved);
  if (gai != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tcp connect to ", peer_name, ": cannot resolve '", host, "': ", gai_strerror(gai)));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(resolved, freeaddrinfo);
  absl::Duration backoff = absl::Milliseconds(2);
  std::string last_error = "no attempt";
  while (true) {
    if (abort != nullptr && abort->aborted()) return abort->status();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("tcp connect to ", peer_name, " at ", host,
                                                      ":", port, ": gave up at the deadline (",
                                                      last_error, "); is the peer running?"));
    }
    int fd = socket(resolved->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
    int rc = connect(fd, resolved->ai_addr, resolved->ai_addrlen);
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      if (PollUntil(fd, POLLOUT, std::min(deadline, absl::Now() + absl::Seconds(2)))) {
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      } else {
        err = ETIMEDOUT;
      }
    }
    if (err == 0) return fd;
    close(fd);
    last_error = strerror(err);
    absl::Time wake = std::min(deadline, absl::Now() + backoff);
    if (abort != nullptr) {
      abort->WaitUntil(wake);
    } else {
      absl::SleepFor(wake - absl::Now());
    }
    backoff = std::min(backoff * 2, absl::Milliseconds(100));
  }
}

}  // namespace meshtrain

#include "runtime/base/signal_pipe.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace meshtrain {
namespace {

// The handler's only way out: the write end of the installed pipe.
std::atomic<int> g_write_fd{-1};

void OnSignal(int signo) {
  const int saved = errno;
  const int fd = g_write_fd.load(std::memory_order_relaxed);
  if (fd >= 0) {
    const unsigned char byte = static_cast<unsigned char>(signo);
    ssize_t ignored = ::write(fd, &byte, 1);
    (void)ignored;
  }
  errno = saved;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SignalPipe>> SignalPipe::Install(std::vector<int> signals) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat("signal pipe: pipe: ", std::strerror(errno)));
  }
  int expected = -1;
  if (!g_write_fd.compare_exchange_strong(expected, fds[1])) {
    ::close(fds[0]);
    ::close(fds[1]);
    return absl::FailedPreconditionError(
        "signal pipe: another one is installed in this process; destroy it first");
  }
  return std::unique_ptr<SignalPipe>(new SignalPipe(std::move(signals), fds[0], fds[1]));
}

SignalPipe::SignalPipe(std::vector<int> signals, int read_fd, int write_fd)
    : signals_(std::move(signals)),
      previous_(signals_.size()),
      read_fd_(read_fd),
      write_fd_(write_fd) {
  struct sigaction action {};
  action.sa_handler = &OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (size_t i = 0; i < signals_.size(); ++i) ::sigaction(signals_[i], &action, &previous_[i]);
}

SignalPipe::~SignalPipe() {
  for (size_t i = 0; i < signals_.size(); ++i) ::sigaction(signals_[i], &previous_[i], nullptr);
  g_write_fd.store(-1);
  ::close(read_fd_);
  ::close(write_fd_);
}

std::optional<int> SignalPipe::TryRead() {
  unsigned char byte = 0;
  while (true) {
    const ssize_t n = ::read(read_fd_, &byte, 1);
    if (n == 1) return byte;
    if (n < 0 && errno == EINTR) continue;
    return std::nullopt;
  }
}

int SignalPipe::Wait() {
  while (true) {
    if (std::optional<int> signo = TryRead()) return *signo;
    pollfd pfd{read_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, -1) < 0 && errno != EINTR) return 0;
  }
}

void SignalPipe::Wake() {
  const unsigned char stop = 0;
  ssize_t ignored = ::write(write_fd_, &stop, 1);
  (void)ignored;
}

}  // namespace meshtrain

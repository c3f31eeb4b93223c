#include "runtime/cluster/rendezvous.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "runtime/base/quote.h"
#include "runtime/base/status_macros.h"
#include "runtime/base/tcp_socket.h"
#include "runtime/cluster/address.h"

namespace meshtrain {
namespace {

constexpr absl::string_view kMagic = "meshtrain-rendezvous 1 ";
constexpr size_t kMaxLineBytes = 4096;

// Owns a file descriptor.
class ScopedFd {
 public:
  explicit ScopedFd(int fd = -1) : fd_(fd) {}
  ScopedFd(ScopedFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  ScopedFd& operator=(ScopedFd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~ScopedFd() { Reset(); }
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

std::string Where(const RendezvousOptions& o) {
  return absl::StrCat("rendezvous at ", JoinHostPort(o.master_host, o.master_port), " (rank ",
                      o.rank, " of ", o.size, ")");
}

int MillisUntil(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1000));
}

// "ok <n>\n" and the payloads, one per line.
std::string FormatReply(const std::vector<std::string>& payloads) {
  return absl::StrCat("ok ", payloads.size(), "\n", absl::StrJoin(payloads, "\n"), "\n");
}

absl::StatusOr<std::vector<std::string>> ParseReply(absl::string_view text, int size,
                                                    const RendezvousOptions& o) {
  if (absl::ConsumePrefix(&text, "error ")) {
    absl::ConsumeSuffix(&text, "\n");
    return absl::InvalidArgumentError(absl::StrCat(Where(o), ": the master says: ", text));
  }
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  absl::string_view head = lines.empty() ? absl::string_view() : absl::string_view(lines[0]);
  int count = -1;
  if (lines.size() != static_cast<size_t>(size) + 2 || !lines.back().empty() ||
      !absl::ConsumePrefix(&head, "ok ") || !absl::SimpleAtoi(head, &count) || count != size) {
    return absl::UnavailableError(
        absl::StrCat(Where(o), ": the master closed the connection without a complete answer (",
                     text.size(), " bytes); it may have failed: see rank 0's log"));
  }
  return std::vector<std::string>(lines.begin() + 1, lines.end() - 1);
}

// ---- the master (rank 0) ----

struct Conn {
  ScopedFd fd;
  std::string in;
  int rank = -1;  // once its line is accepted
};

absl::StatusOr<ScopedFd> Listen(const RendezvousOptions& o) {
  ScopedFd fd(socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const int one = 1;
  const int zero = 0;
  sockaddr_storage addr = {};
  socklen_t len = 0;
  if (fd.get() >= 0) {  // dual stack: IPv4 and IPv6 on one socket
    setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
    a6->sin6_family = AF_INET6;
    a6->sin6_addr = in6addr_any;
    a6->sin6_port = htons(static_cast<uint16_t>(o.master_port));
    len = sizeof(sockaddr_in6);
  } else {
    fd = ScopedFd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
    a4->sin_family = AF_INET;
    a4->sin_addr.s_addr = htonl(INADDR_ANY);
    a4->sin_port = htons(static_cast<uint16_t>(o.master_port));
    len = sizeof(sockaddr_in);
  }
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (fd.get() < 0 || bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      listen(fd.get(), 128) != 0) {
    return absl::UnavailableError(absl::StrCat(
        Where(o), ": cannot listen on port ", o.master_port, ": ", std::strerror(errno),
        "; is MASTER_PORT free on this host (another job, or a previous run still exiting)?"));
  }
  return fd;
}

// Rank 0's side of the protocol (steps 1-4 of rendezvous.h). `o` must outlive
// it. Not thread-safe: one Run() per object.
class Master {
 public:
  Master(const RendezvousOptions& o, ScopedFd listener, std::string mine)
      : o_(o), listener_(std::move(listener)), payloads_(o.size), joined_(o.size, false) {
    payloads_[0] = std::move(mine);
    joined_[0] = true;
  }

  absl::StatusOr<std::vector<std::string>> Run() {
    const absl::Time deadline = absl::Now() + o_.timeout;
    while (std::count(joined_.begin(), joined_.end(), true) < o_.size) {
      if (absl::Now() >= deadline) return Fail(MissingError());
      std::vector<pollfd> fds = {{listener_.get(), POLLIN, 0}};
      for (const Conn& c : conns_) fds.push_back({c.fd.get(), POLLIN, 0});
      if (poll(fds.data(), fds.size(), MillisUntil(deadline)) <= 0) continue;
      if (fds[0].revents & POLLIN) Accept();
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        absl::Status read = Read(conns_[i - 1]);
        if (!read.ok()) return Fail(read);
      }
      conns_.erase(std::remove_if(conns_.begin(), conns_.end(),
                                  [](const Conn& c) { return c.fd.get() < 0; }),
                   conns_.end());
    }
    listener_.Reset();
    const std::string reply = FormatReply(payloads_);
    for (Conn& c : conns_) {
      if (c.rank >= 0)
        (void)WriteAll(c.fd.get(), reply.data(), reply.size(), deadline,
                       "rendezvous reply");  // a lost rank fails alone
    }
    return payloads_;
  }

 private:
  void Accept() {
    while (true) {
      const int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      conns_.push_back(Conn{ScopedFd(fd), "", -1});
    }
  }

  // Reads what `c` sent; closes it on EOF or a stray line. An error only for a
  // meshtrain rank that disagrees with this one.
  absl::Status Read(Conn& c) {
    char buf[1024];
    const ssize_t n = recv(c.fd.get(), buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return absl::OkStatus();
    if (n <= 0) {
      if (c.rank >= 0) joined_[c.rank] = false;  // a restarted task may join again
      c.fd.Reset();
      return absl::OkStatus();
    }
    if (c.rank >= 0) return absl::OkStatus();  // nothing more is expected
    c.in.append(buf, static_cast<size_t>(n));
    const size_t newline = c.in.find('\n');
    if (newline == std::string::npos) {
      if (c.in.size() > kMaxLineBytes) c.fd.Reset();
      return absl::OkStatus();
    }
    absl::string_view line = absl::string_view(c.in).substr(0, newline);
    if (!absl::ConsumePrefix(&line, kMagic)) {
      c.fd.Reset();  // not one of ours
      return absl::OkStatus();
    }
    return Join(c, line);
  }

  absl::Status Join(Conn& c, absl::string_view line) {
    const std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(' ', 2));
    int rank = -1;
    int size = -1;
    if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &rank) ||
        !absl::SimpleAtoi(parts[1], &size)) {
      return absl::InvalidArgumentError(absl::StrCat(
          Where(o_), ": a task sent ", QuoteForMessage(line),
          ", not \"<rank> <size> <payload>\"; is every task the same meshtrain version?"));
    }
    if (size != o_.size) {
      return absl::InvalidArgumentError(absl::StrCat(
          Where(o_), ": rank ", rank, " has WORLD_SIZE=", size,
          " but rank 0 has WORLD_SIZE=", o_.size, "; start every task with the same WORLD_SIZE"));
    }
    if (rank < 1 || rank >= o_.size || joined_[rank]) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(o_), ": a second task with RANK=", rank,
                       rank < 1 || rank >= o_.size ? " (out of range)" : " (already joined)",
                       "; give every task its own RANK in 0..", o_.size - 1));
    }
    c.rank = rank;
    joined_[rank] = true;
    payloads_[rank] = std::string(parts[2]);
    return absl::OkStatus();
  }

  absl::Status MissingError() const {
    std::vector<int> missing;
    for (int r = 0; r < o_.size; ++r) {
      if (!joined_[r]) missing.push_back(r);
    }
    return absl::DeadlineExceededError(absl::StrCat(
        Where(o_), ": waited ", absl::FormatDuration(o_.timeout), " for rank(s) ",
        absl::StrJoin(missing, ", "),
        "; were they started, with this MASTER_ADDR and MASTER_PORT, and can they reach it?"));
  }

  // Tells every joined rank, then returns `error`.
  absl::Status Fail(absl::Status error) {
    const std::string line = absl::StrCat("error ", error.message(), "\n");
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    for (Conn& c : conns_) {
      if (c.fd.get() >= 0)
        (void)WriteAll(c.fd.get(), line.data(), line.size(), deadline, "rendezvous reply");
    }
    return error;
  }

  const RendezvousOptions& o_;
  ScopedFd listener_;
  std::vector<Conn> conns_;
  std::vector<std::string> payloads_;
  std::vector<bool> joined_;
};

// ---- the other ranks ----

absl::StatusOr<ScopedFd> ConnectOnce(const RendezvousOptions& o, absl::Time deadline) {
  addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = absl::StrCat(o.master_port);
  const int rc = getaddrinfo(o.master_host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat(Where(o), ": cannot resolve MASTER_ADDR ",
                                               QuoteForMessage(o.master_host), ": ",
                                               gai_strerror(rc)));
  }
  std::string error = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    ScopedFd fd(socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (fd.get() < 0) continue;
    // connect() honours the send timeout: an unreachable host fails in time.
    const absl::Duration left =
        std::clamp(deadline - absl::Now(), absl::Milliseconds(1), absl::Seconds(10));
    timeval tv = absl::ToTimeval(left);
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd.get(), a->ai_addr, a->ai_addrlen) == 0) {
      freeaddrinfo(found);
      fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
      return fd;
    }
    error = std::strerror(errno);
  }
  freeaddrinfo(found);
  return absl::UnavailableError(absl::StrCat(Where(o), ": cannot connect to the master: ", error));
}

// The master may start after this rank: retry with back-off until the deadline.
absl::StatusOr<ScopedFd> Connect(const RendezvousOptions& o, absl::Time deadline) {
  absl::Duration pause = absl::Milliseconds(20);
  while (true) {
    absl::StatusOr<ScopedFd> fd = ConnectOnce(o, deadline);
    if (fd.ok() || absl::Now() + pause >= deadline) {
      if (!fd.ok()) {
        return absl::DeadlineExceededError(absl::StrCat(
            fd.status().message(), " (retried for ", absl::FormatDuration(o.timeout),
            "); is rank 0 running, and are MASTER_ADDR and MASTER_PORT the same for every task?"));
      }
      return fd;
    }
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(500));
  }
}

std::string LocalIp(int fd) {
  sockaddr_storage addr = {};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "";
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&addr)->sin_addr, text, sizeof(text));
  } else if (addr.ss_family == AF_INET6) {
    const in6_addr& a6 = reinterpret_cast<sockaddr_in6*>(&addr)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
      inet_ntop(AF_INET, &a6.s6_addr[12], text, sizeof(text));
    } else {
      inet_ntop(AF_INET6, &a6, text, sizeof(text));
    }
  }
  return text;
}

absl::StatusOr<std::string> ReadToEnd(int fd, absl::Time deadline, const RendezvousOptions& o) {
  std::string text;
  char buf[4096];
  while (true) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      text.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return text;
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return absl::UnavailableError(
          absl::StrCat(Where(o), ": lost the master: ", std::strerror(errno)));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(Where(o), ": the other ranks did not all join within ",
                       absl::FormatDuration(o.timeout), "; see rank 0's log for the missing ones"));
    }
    PollUntil(fd, POLLIN, deadline);
  }
}

absl::StatusOr<std::vector<std::string>> RunRank(const RendezvousOptions& o,
                                                 const RendezvousPayload& payload) {
  const absl::Time deadline = absl::Now() + o.timeout;
  MESHTRAIN_ASSIGN_OR_RETURN(ScopedFd fd, Connect(o, deadline));
  const std::string mine = payload(LocalIp(fd.get()));
  if (mine.find('\n') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(Where(o), ": a payload may not hold a newline"));
  }
  const std::string hello = absl::StrCat(kMagic, o.rank, " ", o.size, " ", mine, "\n");
  MESHTRAIN_RETURN_IF_ERROR(Annotate(
      WriteAll(fd.get(), hello.data(), hello.size(), deadline, "sending this rank's entry"),
      Where(o)));
  MESHTRAIN_ASSIGN_OR_RETURN(std::string reply, ReadToEnd(fd.get(), deadline, o));
  return ParseReply(reply, o.size, o);
}

}  // namespace

absl::StatusOr<std::vector<std::string>> RendezvousAllGather(const RendezvousOptions& options,
                                                             const RendezvousPayload& payload) {
  if (options.size < 1 || options.rank < 0 || options.rank >= options.size) {
    return absl::InvalidArgumentError(absl::StrCat(Where(options), ": rank out of range"));
  }
  if (options.rank != 0) return RunRank(options, payload);
  const std::string mine = payload("");
  if (mine.find('\n') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(options), ": a payload may not hold a newline"));
  }
  if (options.size == 1) return std::vector<std::string>{mine};
  MESHTRAIN_ASSIGN_OR_RETURN(ScopedFd listener, Listen(options));
  return Master(options, std::move(listener), mine).Run();
}

}  // namespace meshtrain

#include "launcher/process_group.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "runtime/base/logging.h"

extern char** environ;

namespace meshtrain {
namespace {

struct Stream {
  int fd = -1;
  int target = STDOUT_FILENO;
  std::string partial;
};

struct Child {
  const ProcessSpec* spec = nullptr;
  pid_t pid = -1;
  int pidfd = -1;  // readable once the child exits
  Stream out, err;
  int restarts = 0;
  int failure_restarts = 0;  // the ones max_restarts limits
  bool finished = false;
  int exit_code = 0;
  absl::Time started;
  absl::Duration uptime;
  int64_t peak_rss_bytes = 0;
};

void WriteAll(int fd, absl::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<size_t>(n));
  }
}

// Writes the complete lines in `s.partial` (all of it at EOF), each with
// `prefix`, or hands them to options.on_line when it is set.
void EmitLines(Stream& s, const std::string& prefix, bool eof, const ProcessGroupOptions& options,
               const std::string& name) {
  auto emit = [&](absl::string_view line) {
    if (options.on_line) {
      options.on_line(name, line, s.target == STDERR_FILENO);
    } else {
      WriteAll(s.target, absl::StrCat(prefix, line, "\n"));
    }
  };
  size_t start = 0;
  for (size_t nl = s.partial.find('\n'); nl != std::string::npos; nl = s.partial.find('\n', start)) {
    emit(absl::string_view(s.partial).substr(start, nl - start));
    start = nl + 1;
  }
  s.partial.erase(0, start);
  if (eof && !s.partial.empty()) {
    emit(s.partial);
    s.partial.clear();
  }
}

int ExitCodeOf(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

absl::Status Spawn(Child& child) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The child starts with default signal handling and an empty mask (the
  // launcher handles SIGINT/SIGTERM itself), in its own process group so that
  // the launcher alone decides what it receives.
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGCHLD);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq != absl::string_view::npos) env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  for (const auto& [k, v] : child.spec->env) env[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(absl::StrCat(k, "=", v));
  std::vector<char*> envp, argv;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = child.spec->argv;
  for (std::string& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);

  // A child inherits the spawning thread's CPU affinity, so pinning this thread
  // around the spawn pins every thread the child will ever start.
  cpu_set_t saved_affinity;
  const bool pin = child.spec->cpu >= 0 &&
                   ::sched_getaffinity(0, sizeof(saved_affinity), &saved_affinity) == 0;
  if (pin) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(child.spec->cpu, &one);
    ::sched_setaffinity(0, sizeof(one), &one);
  }
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  if (pin) ::sched_setaffinity(0, sizeof(saved_affinity), &saved_affinity);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(out[0]);
    ::close(err[0]);
    return absl::FailedPreconditionError(absl::StrCat("cannot start ", child.spec->name, " (",
                                                      child.spec->argv[0], "): ", std::strerror(rc)));
  }
  child.pid = pid;
  MESHTRAIN_LOG(INFO) << child.spec->name << " started (pid " << pid << ")";
  if (child.pidfd >= 0) ::close(child.pidfd);
  child.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  child.out = Stream{out[0], STDOUT_FILENO, ""};
  child.err = Stream{err[0], STDERR_FILENO, ""};
  child.started = absl::Now();
  return absl::OkStatus();
}

// The write end of Run()'s signal pipe: a signal handler can only reach a
// process-wide variable. Only one Run() is active per process.
volatile int g_signal_pipe = -1;

void OnSignal(int signo) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(signo);
  if (g_signal_pipe >= 0) {
    ssize_t ignored = ::write(g_signal_pipe, &byte, 1);
    (void)ignored;
  }
  errno = saved;
}

void SignalAll(std::vector<Child>& children, int signo) {
  for (Child& c : children) {
    if (!c.finished && c.pid > 0) ::kill(-c.pid, signo);  // the child's process group
  }
}

}  // namespace

absl::StatusOr<GroupResult> ProcessGroup::Run(const std::vector<ProcessSpec>& specs) {
  // SIGINT/SIGTERM reach a handler that writes the signal number to a pipe the
  // loop polls. (A signalfd would need the signals blocked in every thread, and
  // libraries such as OpenBLAS start threads before main.) Children's exits are
  // seen through pidfds, with a waitpid sweep as a safety net.
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  g_signal_pipe = pipe_fds[1];
  struct sigaction action {}, old_int {}, old_term {};
  action.sa_handler = &OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &action, &old_int);
  ::sigaction(SIGTERM, &action, &old_term);
  const int sfd = pipe_fds[0];
  auto restore = [&] {
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
    g_signal_pipe = -1;
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
  };

  std::vector<Child> children(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    children[i].spec = &specs[i];
    if (absl::Status s = Spawn(children[i]); !s.ok()) {
      SignalAll(children, SIGKILL);
      for (Child& c : children) {
        if (c.pid > 0) ::waitpid(c.pid, nullptr, 0);
      }
      restore();
      return s;
    }
  }

  GroupResult result;
  bool terminating = false;
  int received_signal = 0;
  absl::Time kill_at = absl::InfiniteFuture();
  auto begin_termination = [&] {
    if (terminating) return;
    terminating = true;
    SignalAll(children, SIGTERM);
    kill_at = absl::Now() + options_.grace_period;
  };

  auto alive = [&] {
    return std::any_of(children.begin(), children.end(), [](const Child& c) { return !c.finished; });
  };
  auto streams_open = [&] {
    return std::any_of(children.begin(), children.end(),
                       [](const Child& c) { return c.out.fd >= 0 || c.err.fd >= 0; });
  };
  absl::Time drain_until = absl::InfiniteFuture();
  while (alive() || (streams_open() && absl::Now() < drain_until)) {
    if (!alive() && drain_until == absl::InfiniteFuture()) {
      drain_until = absl::Now() + absl::Seconds(2);  // output still in flight (or a grandchild)
    }
    std::vector<pollfd> fds;
    std::vector<std::pair<Child*, Stream*>> owners;
    fds.push_back({sfd, POLLIN, 0});
    owners.push_back({nullptr, nullptr});
    for (Child& c : children) {
      if (!c.finished && c.pidfd >= 0) {
        fds.push_back({c.pidfd, POLLIN, 0});
        owners.push_back({nullptr, nullptr});
      }
      for (Stream* s : {&c.out, &c.err}) {
        if (s->fd >= 0) {
          fds.push_back({s->fd, POLLIN, 0});
          owners.push_back({&c, s});
        }
      }
    }
    if (!terminating && absl::Now() >= options_.deadline) {
      result.timed_out = true;
      begin_termination();
    }
    // At most a second between waitpid sweeps, in case a pidfd is unavailable.
    const absl::Time deadline = terminating ? absl::InfiniteFuture() : options_.deadline;
    absl::Time wake = std::min({kill_at, drain_until, deadline, absl::Now() + absl::Seconds(1)});
    const int timeout_ms =
        static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(wake - absl::Now()) + 1));
    int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) break;
    if (absl::Now() >= kill_at) {
      SignalAll(children, SIGKILL);
      kill_at = absl::InfiniteFuture();
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      Child* c = owners[i].first;
      if (c == nullptr) continue;  // a pidfd: the waitpid sweep below reaps it
      Stream* s = owners[i].second;
      char buf[65536];
      ssize_t got = ::read(s->fd, buf, sizeof(buf));
      const std::string prefix = options_.prefix_output ? absl::StrCat("[", c->spec->name, "] ") : "";
      if (got > 0) {
        s->partial.append(buf, static_cast<size_t>(got));
        EmitLines(*s, prefix, false, options_, c->spec->name);
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        EmitLines(*s, prefix, true, options_, c->spec->name);
        ::close(s->fd);
        s->fd = -1;
      }
    }
    unsigned char signo;
    while (::read(sfd, &signo, 1) == 1) {
      if (terminating && received_signal != 0) {
        SignalAll(children, SIGKILL);  // a second ^C: no more grace
      }
      received_signal = signo;
      begin_termination();
    }
    int status = 0;
    struct rusage usage {};
    for (pid_t pid; (pid = ::wait4(-1, &status, WNOHANG, &usage)) > 0;) {
      auto it = std::find_if(children.begin(), children.end(), [pid](const Child& c) { return c.pid == pid; });
      if (it == children.end()) continue;
      Child& c = *it;
      c.peak_rss_bytes = std::max<int64_t>(c.peak_rss_bytes, int64_t{usage.ru_maxrss} * 1024);
      const int code = ExitCodeOf(status);
      const bool benign = code == 0 || std::count(c.spec->benign_exit_codes.begin(),
                                                  c.spec->benign_exit_codes.end(), code) > 0;
      c.uptime += absl::Now() - c.started;
      const bool asks_restart = std::count(c.spec->restart_exit_codes.begin(),
                                           c.spec->restart_exit_codes.end(), code) > 0;
      if (!benign && !terminating && (asks_restart || c.failure_restarts < c.spec->max_restarts)) {
        ++c.restarts;
        if (asks_restart) {
          MESHTRAIN_LOG(WARNING) << c.spec->name << " exited with status " << code
                                 << " (preempted: restart me); restarting it";
        } else {
          ++c.failure_restarts;
          MESHTRAIN_LOG(WARNING) << c.spec->name << " exited with status " << code << "; restarting it ("
                                 << c.failure_restarts << " of " << c.spec->max_restarts << ")";
        }
        if (options_.on_restart) options_.on_restart(c.spec->name, c.restarts);
        // Close the old pipes once drained: a fresh child gets fresh ones.
        for (Stream* s : {&c.out, &c.err}) {
          if (s->fd >= 0) {
            char buf[65536];
            ssize_t got;
            while ((got = ::read(s->fd, buf, sizeof(buf))) > 0) s->partial.append(buf, static_cast<size_t>(got));
            EmitLines(*s, absl::StrCat("[", c.spec->name, "] "), true, options_, c.spec->name);
            ::close(s->fd);
            s->fd = -1;
          }
        }
        if (absl::Status s = Spawn(c); !s.ok()) {
          MESHTRAIN_LOG(ERROR) << s.message();
          c.finished = true;
          c.exit_code = 127;
        } else {
          continue;
        }
      } else {
        c.finished = true;
        c.exit_code = code;
      }
      if (!benign && c.spec->optional) {
        MESHTRAIN_LOG(WARNING) << c.spec->name << " exited with status " << code
                               << "; the others go on without it";
      } else if (!benign && result.first_failure.empty() && !(terminating && received_signal != 0)) {
        result.first_failure = c.spec->name;
        result.exit_code = c.exit_code;
        begin_termination();
      }
    }
  }
  result.signal = received_signal;
  if (result.first_failure.empty() && received_signal != 0) result.exit_code = 128 + received_signal;
  if (result.timed_out && result.exit_code == 0) result.exit_code = 124;  // as timeout(1)
  for (Child& c : children) {
    result.processes.push_back({c.spec->name, c.exit_code, c.restarts, c.uptime, c.peak_rss_bytes});
    for (Stream* s : {&c.out, &c.err}) {
      if (s->fd >= 0) ::close(s->fd);
    }
    if (c.pidfd >= 0) ::close(c.pidfd);
  }
  restore();
  return result;
}

}  // namespace meshtrain

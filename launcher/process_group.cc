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
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "runtime/base/logging.h"
#include "runtime/base/signal_pipe.h"
#include "runtime/base/status_macros.h"

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
  for (size_t nl = s.partial.find('\n'); nl != std::string::npos;
       nl = s.partial.find('\n', start)) {
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

// The launcher's environment with the spec's variables added, as KEY=VALUE.
std::vector<std::string> ChildEnvironment(const ProcessSpec& spec) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq != absl::string_view::npos) {
      env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
    }
  }
  for (const auto& [k, v] : spec.env) env[k] = v;
  std::vector<std::string> strings;
  for (const auto& [k, v] : env) strings.push_back(absl::StrCat(k, "=", v));
  return strings;
}

// The child starts with default signal handling and an empty mask (the
// launcher handles SIGINT/SIGTERM itself), in its own process group so that
// the launcher alone decides what it receives.
void InitSpawnAttributes(posix_spawnattr_t& attr) {
  posix_spawnattr_init(&attr);
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
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
}

absl::Status Spawn(Child& child) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0)
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
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
  InitSpawnAttributes(attr);

  std::vector<std::string> env_strings = ChildEnvironment(*child.spec);
  std::vector<std::string> args = child.spec->argv;
  std::vector<char*> envp, argv;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  for (std::string& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);

  // A child inherits the spawning thread's CPU affinity, so pinning this thread
  // around the spawn pins every thread the child will ever start.
  cpu_set_t saved_affinity;
  const bool pin =
      child.spec->cpu >= 0 && ::sched_getaffinity(0, sizeof(saved_affinity), &saved_affinity) == 0;
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
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot start ", child.spec->name, " (", child.spec->argv[0], "): ", std::strerror(rc)));
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

void SignalAll(std::vector<Child>& children, int signo) {
  for (Child& c : children) {
    if (!c.finished && c.pid > 0) ::kill(-c.pid, signo);  // the child's process group
  }
}

bool Contains(const std::vector<int>& codes, int code) {
  return std::find(codes.begin(), codes.end(), code) != codes.end();
}

// One Run(): the children, the signal pipe and the group's state, with the
// loop's steps as methods.
class Supervisor {
 public:
  Supervisor(const ProcessGroupOptions& options, SignalPipe& signals)
      : options_(options), signals_(signals) {}

  absl::Status StartAll(const std::vector<ProcessSpec>& specs);
  GroupResult Supervise();

 private:
  bool Alive() const;
  bool StreamsOpen() const;
  // One poll() over the signal pipe, the pidfds and the output streams, up to
  // the next timer (kill, drain, deadline) or a second for the waitpid sweep.
  void PollOnce();
  void ReadStream(Child& child, Stream& stream);
  void DrainSignals();
  void ReapExited();
  void OnExit(Child& child, int code);
  // Restarts `child` after exit `code` if its spec allows; false if it stays down.
  bool MaybeRestart(Child& child, int code);
  void FlushAndClose(Child& child);
  void BeginTermination();
  GroupResult Finish();

  const ProcessGroupOptions& options_;
  SignalPipe& signals_;
  std::vector<Child> children_;
  GroupResult result_;
  bool terminating_ = false;
  bool completed_ = false;  // a completes_group process exited 0
  int received_signal_ = 0;
  absl::Time kill_at_ = absl::InfiniteFuture();
  absl::Time drain_until_ = absl::InfiniteFuture();
};

absl::Status Supervisor::StartAll(const std::vector<ProcessSpec>& specs) {
  children_.resize(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    children_[i].spec = &specs[i];
    if (absl::Status s = Spawn(children_[i]); !s.ok()) {
      SignalAll(children_, SIGKILL);
      for (Child& c : children_) {
        if (c.pid > 0) ::waitpid(c.pid, nullptr, 0);
      }
      return s;
    }
  }
  return absl::OkStatus();
}

GroupResult Supervisor::Supervise() {
  while (Alive() || (StreamsOpen() && absl::Now() < drain_until_)) {
    if (!Alive() && drain_until_ == absl::InfiniteFuture()) {
      drain_until_ = absl::Now() + absl::Seconds(2);  // output still in flight (or a grandchild)
    }
    if (!terminating_ && absl::Now() >= options_.deadline) {
      result_.timed_out = true;
      BeginTermination();
    }
    PollOnce();
    if (absl::Now() >= kill_at_) {
      SignalAll(children_, SIGKILL);
      kill_at_ = absl::InfiniteFuture();
    }
    DrainSignals();
    ReapExited();
  }
  return Finish();
}

bool Supervisor::Alive() const {
  return std::any_of(children_.begin(), children_.end(),
                     [](const Child& c) { return !c.finished; });
}

bool Supervisor::StreamsOpen() const {
  return std::any_of(children_.begin(), children_.end(),
                     [](const Child& c) { return c.out.fd >= 0 || c.err.fd >= 0; });
}

void Supervisor::PollOnce() {
  std::vector<pollfd> fds;
  std::vector<std::pair<Child*, Stream*>> owners;  // null for the signal pipe and pidfds
  fds.push_back({signals_.fd(), POLLIN, 0});
  owners.push_back({nullptr, nullptr});
  for (Child& c : children_) {
    if (!c.finished && c.pidfd >= 0) {
      fds.push_back({c.pidfd, POLLIN, 0});
      owners.push_back({nullptr, nullptr});  // the waitpid sweep reaps it
    }
    for (Stream* s : {&c.out, &c.err}) {
      if (s->fd >= 0) {
        fds.push_back({s->fd, POLLIN, 0});
        owners.push_back({&c, s});
      }
    }
  }
  const absl::Time deadline = terminating_ ? absl::InfiniteFuture() : options_.deadline;
  const absl::Time wake =
      std::min({kill_at_, drain_until_, deadline, absl::Now() + absl::Seconds(1)});
  const int timeout_ms =
      static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(wake - absl::Now()) + 1));
  if (::poll(fds.data(), fds.size(), timeout_ms) <= 0) return;
  for (size_t i = 0; i < fds.size(); ++i) {
    if (owners[i].first != nullptr && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
      ReadStream(*owners[i].first, *owners[i].second);
    }
  }
}

void Supervisor::ReadStream(Child& child, Stream& stream) {
  char buf[65536];
  const ssize_t got = ::read(stream.fd, buf, sizeof(buf));
  const std::string prefix =
      options_.prefix_output ? absl::StrCat("[", child.spec->name, "] ") : "";
  if (got > 0) {
    stream.partial.append(buf, static_cast<size_t>(got));
    EmitLines(stream, prefix, false, options_, child.spec->name);
  } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
    EmitLines(stream, prefix, true, options_, child.spec->name);
    ::close(stream.fd);
    stream.fd = -1;
  }
}

void Supervisor::DrainSignals() {
  while (std::optional<int> signo = signals_.TryRead()) {
    if (terminating_ && received_signal_ != 0) {
      SignalAll(children_, SIGKILL);  // a second ^C: no more grace
    }
    received_signal_ = *signo;
    BeginTermination();
  }
}

void Supervisor::ReapExited() {
  int status = 0;
  struct rusage usage {};
  for (pid_t pid; (pid = ::wait4(-1, &status, WNOHANG, &usage)) > 0;) {
    auto it = std::find_if(children_.begin(), children_.end(),
                           [pid](const Child& c) { return c.pid == pid; });
    if (it == children_.end()) continue;
    it->peak_rss_bytes = std::max<int64_t>(it->peak_rss_bytes, int64_t{usage.ru_maxrss} * 1024);
    it->uptime += absl::Now() - it->started;
    OnExit(*it, ExitCodeOf(status));
  }
}

void Supervisor::OnExit(Child& child, int code) {
  const bool benign = code == 0 || Contains(child.spec->benign_exit_codes, code);
  if (code == 0 && child.spec->completes_group) completed_ = true;
  if (!benign && MaybeRestart(child, code)) return;
  child.finished = true;
  if (child.exit_code == 0) child.exit_code = code;  // 127 when a restart could not start
  if (benign) return;
  if (child.spec->optional) {
    MESHTRAIN_LOG(WARNING) << child.spec->name << " exited with status " << code
                           << "; the others go on without it";
  } else if (result_.first_failure.empty() && !(terminating_ && received_signal_ != 0)) {
    result_.first_failure = child.spec->name;
    result_.exit_code = child.exit_code;
    BeginTermination();
  }
}

bool Supervisor::MaybeRestart(Child& child, int code) {
  if (terminating_) return false;
  if (completed_) {
    MESHTRAIN_LOG(ERROR) << child.spec->name << " exited with status " << code
                         << " after the job completed; not restarting it";
    return false;
  }
  if (Contains(child.spec->final_exit_codes, code)) {
    MESHTRAIN_LOG(ERROR) << child.spec->name << " exited with status " << code
                         << ", which a restart would not change; not restarting it";
    return false;
  }
  const bool asks_restart = Contains(child.spec->restart_exit_codes, code);
  if (!asks_restart && child.failure_restarts >= child.spec->max_restarts) return false;
  ++child.restarts;
  if (asks_restart) {
    MESHTRAIN_LOG(WARNING) << child.spec->name << " exited with status " << code
                           << " (preempted: restart me); restarting it";
  } else {
    ++child.failure_restarts;
    MESHTRAIN_LOG(WARNING) << child.spec->name << " exited with status " << code
                           << "; restarting it (" << child.failure_restarts << " of "
                           << child.spec->max_restarts << ")";
  }
  if (options_.on_restart) options_.on_restart(child.spec->name, child.restarts);
  FlushAndClose(child);
  if (absl::Status s = Spawn(child); !s.ok()) {
    MESHTRAIN_LOG(ERROR) << s.message();
    child.exit_code = 127;
    return false;
  }
  return true;
}

// Drains and closes the pipes of an exited child (to EOF, every line out):
// a fresh child gets fresh ones.
void Supervisor::FlushAndClose(Child& child) {
  for (Stream* s : {&child.out, &child.err}) {
    while (s->fd >= 0) ReadStream(child, *s);
  }
}

void Supervisor::BeginTermination() {
  if (terminating_) return;
  terminating_ = true;
  SignalAll(children_, SIGTERM);
  kill_at_ = absl::Now() + options_.grace_period;
}

GroupResult Supervisor::Finish() {
  result_.signal = received_signal_;
  if (result_.first_failure.empty() && received_signal_ != 0)
    result_.exit_code = 128 + received_signal_;
  if (result_.timed_out && result_.exit_code == 0) result_.exit_code = 124;  // as timeout(1)
  for (Child& c : children_) {
    result_.processes.push_back(
        {c.spec->name, c.exit_code, c.restarts, c.uptime, c.peak_rss_bytes});
    for (Stream* s : {&c.out, &c.err}) {
      if (s->fd >= 0) ::close(s->fd);
    }
    if (c.pidfd >= 0) ::close(c.pidfd);
  }
  return std::move(result_);
}

}  // namespace

absl::StatusOr<GroupResult> ProcessGroup::Run(const std::vector<ProcessSpec>& specs) {
  // SIGINT/SIGTERM reach the loop through the signal pipe; children's exits
  // through pidfds, with a waitpid sweep as a safety net.
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<SignalPipe> signals,
                             SignalPipe::Install({SIGINT, SIGTERM}));
  Supervisor supervisor(options_, *signals);
  MESHTRAIN_RETURN_IF_ERROR(supervisor.StartAll(specs));
  return supervisor.Supervise();
}

}  // namespace meshtrain

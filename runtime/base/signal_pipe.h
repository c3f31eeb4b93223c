// SignalPipe: the one self-pipe of the process. While it is installed, the
// signals it was given (SIGINT, SIGTERM) reach a handler that writes the signal
// number to a pipe; a thread polls fd() or blocks in Wait() and acts on it
// outside the signal context. (A signalfd would need the signals blocked in
// every thread, and libraries such as OpenBLAS start threads before main.)
// At most one is installed at a time; the destructor restores the previous
// handlers. Wake() and Wait() may run on different threads; the rest on one.
#ifndef MESHTRAIN_RUNTIME_BASE_SIGNAL_PIPE_H_
#define MESHTRAIN_RUNTIME_BASE_SIGNAL_PIPE_H_

#include <signal.h>

#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"

namespace meshtrain {

class SignalPipe {
 public:
  // Installs the handler for each of `signals`. FailedPrecondition if another
  // SignalPipe is installed.
  static absl::StatusOr<std::unique_ptr<SignalPipe>> Install(std::vector<int> signals);
  ~SignalPipe();
  SignalPipe(const SignalPipe&) = delete;
  SignalPipe& operator=(const SignalPipe&) = delete;

  // Readable once a signal arrived (non-blocking; for poll()).
  int fd() const { return read_fd_; }
  // The next signal received, if one is waiting; never blocks.
  std::optional<int> TryRead();
  // Blocks until a signal arrives (its number) or Wake() is called (0).
  int Wait();
  // Makes Wait() return 0: how its thread is told to stop.
  void Wake();

 private:
  SignalPipe(std::vector<int> signals, int read_fd, int write_fd);

  std::vector<int> signals_;
  std::vector<struct sigaction> previous_;
  int read_fd_;
  int write_fd_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_BASE_SIGNAL_PIPE_H_

"""Processes for the benchmarks and the integration tests: a started command
whose output is collected line by line, and free ports on 127.0.0.1.

Standard library only; tests/integration/harness.py builds its Task on this one.
"""
import os
import signal
import socket
import subprocess
import threading
import time


def free_ports(n):
    """n distinct free ports on 127.0.0.1 (held until all are chosen)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Task:
    """A process (its own session, so kill() reaches its children) whose
    stdout and stderr are collected line by line by a thread."""

    def __init__(self, cmd, env=None, name="task"):
        """Runs the argv `cmd` with os.environ updated by `env`."""
        self.name = name
        self.lines = []
        self._cond = threading.Condition()
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.started = time.monotonic()
        self.started_unix = time.time()  # to compare with the times processes write
        self.proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env,
                                     text=True, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        self.proc.stdout.close()
        with self._cond:
            self._cond.notify_all()

    def output(self):
        with self._cond:
            return "\n".join(self.lines)

    def wait_for_line(self, predicate, timeout):
        """Blocks until a line satisfies predicate (True) or timeout/exit (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if any(predicate(l) for l in self.lines):
                    return True
                if self.proc.poll() is not None and not self._reader.is_alive():
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.5))

    def wait(self, timeout):
        """Exit status, or raises if the process outlives timeout (it is killed)."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not exit within {timeout}s; output:\n{self.output()}")
        self._reader.join(timeout=5)
        return code

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def elapsed(self):
        return time.monotonic() - self.started

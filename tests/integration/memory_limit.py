"""A memory cgroup the test makes, to run a task under a memory limit smaller
than its data: cgroup v1 (memory.limit_in_bytes) or v2 (memory.max). Needs
root; removed afterwards, also when the test fails (the tasks still in it are
killed first)."""
import os
import signal
import time

V1_ROOT = "/sys/fs/cgroup/memory"
V2_ROOT = "/sys/fs/cgroup"


def _v2_has_memory():
    try:
        with open(os.path.join(V2_ROOT, "cgroup.controllers")) as f:
            return "memory" in f.read().split()
    except OSError:
        return False


def available():
    """(True, "") when a memory cgroup can be made here, else (False, why)."""
    if os.geteuid() != 0:
        return False, "a memory limit needs a cgroup, which needs root"
    try:
        with MemoryLimit(64 << 20):
            pass
    except OSError as e:
        return False, f"cannot make a memory cgroup ({e}); run as root on a host with the memory controller"
    return True, ""


class MemoryLimit:
    """with MemoryLimit(bytes) as limit: subprocess.Popen(..., preexec_fn=limit.enter)"""

    def __init__(self, limit_bytes):
        self.limit_bytes = limit_bytes
        name = f"meshtrain-test-{os.getpid()}-{time.monotonic_ns()}"
        if os.path.isdir(V1_ROOT):
            self.path = os.path.join(V1_ROOT, name)
            self.limit_file = "memory.limit_in_bytes"
        elif _v2_has_memory():
            self.path = os.path.join(V2_ROOT, name)
            self.limit_file = "memory.max"
        else:
            raise OSError("no cgroup memory controller is mounted")

    def __enter__(self):
        os.mkdir(self.path)
        try:
            with open(os.path.join(self.path, self.limit_file), "w") as f:
                f.write(str(self.limit_bytes))
        except OSError:
            os.rmdir(self.path)
            raise
        return self

    def enter(self):
        """Moves the calling process into the cgroup (a preexec_fn)."""
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    def __exit__(self, *exc):
        deadline = time.monotonic() + 10
        while True:
            try:
                with open(os.path.join(self.path, "cgroup.procs")) as f:
                    pids = [int(p) for p in f.read().split()]
            except OSError:
                pids = []
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.rmdir(self.path)
                return False
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

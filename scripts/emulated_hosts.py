"""Emulated hosts for tests and benchmarks: a Python face on scripts/emulate-hosts.sh.

    with EmulatedHosts(3, rate="1gbit") as hosts:
        argv = hosts.command(2, ["meshtrain", "train", ...])   # runs as host 2
        hosts.address(2)                                       # "198.18.0.2"
        hosts.set_rate(2, "10mbit"); hosts.link(2, up=False)

Each EmulatedHosts is named after this process ("m<pid>"), so concurrent runs
never share namespaces, and entering one first removes the namespaces of runs
whose process is gone (a test killed by its timeout cannot clean up after
itself). Leaving it, or this process exiting normally or by SIGTERM, removes its
own. Standard library only.
"""
import atexit
import os
import re
import signal
import subprocess
import sys

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "emulate-hosts.sh")
_STALE = re.compile(r"^m(\d+)-(?:br|h\d+)$")
_live = set()  # names of the emulations this process has up


def _run(args, check=True):
    proc = subprocess.run([SCRIPT] + list(args), capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise RuntimeError(f"emulate-hosts.sh {' '.join(args)} failed ({proc.returncode}):\n"
                           f"{proc.stdout}{proc.stderr}")
    return proc


def available():
    """(True, "") where namespaces can be made here, else (False, the reason and the fix)."""
    if sys.platform != "linux":
        return False, "emulated hosts need Linux network namespaces"
    try:
        proc = _run(["check"], check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"scripts/emulate-hosts.sh check could not run: {e}"
    if proc.returncode != 0:
        return False, (proc.stdout + proc.stderr).strip() or "scripts/emulate-hosts.sh check failed"
    return True, ""


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale():
    """Removes the emulations of processes that no longer exist."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    dead = set()
    for line in listing.splitlines():
        m = _STALE.match(line.split(" ")[0])
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            dead.add(f"m{m.group(1)}")
    for name in sorted(dead):
        _run(["down", "--name", name], check=False)


def _down_all():
    for name in list(_live):
        _run(["down", "--name", name], check=False)
        _live.discard(name)


def _on_sigterm(signum, frame):
    _down_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


atexit.register(_down_all)


class EmulatedHosts:
    """N emulated hosts, 1-based: host i has address 198.18.0.i and hostname <name>-h<i>."""

    def __init__(self, n, rate="1gbit", name=None):
        self.n = n
        self.rate = rate
        self.name = name or f"m{os.getpid()}"

    def __enter__(self):
        self.up()
        return self

    def __exit__(self, *exc):
        self.down()

    def up(self):
        reap_stale()
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _on_sigterm)
        _live.add(self.name)
        _run(["up", str(self.n), "--rate", self.rate, "--name", self.name])

    def down(self):
        _run(["down", "--name", self.name], check=False)
        _live.discard(self.name)

    def address(self, i):
        self._check(i)
        return f"198.18.0.{i}"

    def hostname(self, i):
        self._check(i)
        return f"{self.name}-h{i}"

    def command(self, i, argv):
        """argv run as host i: in its network namespace, with its own hostname."""
        self._check(i)
        return [SCRIPT, "exec", str(i), "--name", self.name, "--"] + list(argv)

    def set_rate(self, i, rate):
        """Reshapes host i's link, both directions ("none": unshaped)."""
        self._check(i)
        _run(["rate", str(i), rate, "--name", self.name])

    def link(self, i, up):
        """Plugs (up=True) or pulls (up=False) host i's cable."""
        self._check(i)
        _run(["link", str(i), "up" if up else "down", "--name", self.name])

    def _check(self, i):
        if not 1 <= i <= self.n:
            raise ValueError(f"host {i}: this emulation has hosts 1..{self.n}")

"""Helpers for meshtrain's integration tests: real processes on 127.0.0.1.

Each test starts `meshtrain` processes (the binary CTest passes in MESHTRAIN_BIN),
waits on conditions with deadlines (never bare sleeps to synchronise), and reads
what the processes wrote (summary.json, logs).
"""
import collections
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

BIN = os.environ.get("MESHTRAIN_BIN", "meshtrain")
SOURCE_DIR = os.environ.get("MESHTRAIN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SOURCE_DIR, "scripts"))
import processes  # noqa: E402
from processes import free_ports  # noqa: E402,F401  (the tests import it from here)
CONFIGS = os.path.join(SOURCE_DIR, "configs")
REFERENCE = os.path.join(CONFIGS, "fashion_mnist_mlp.json")
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
NUMPY_PYTHON = "/usr/bin/python3"


def have_fashion_mnist():
    return os.path.exists(os.path.join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz"))


def have_numpy_python():
    """Debian's /usr/bin/python3 with numpy (python3-numpy), the independent reader of tensor files."""
    return os.path.exists(NUMPY_PYTHON) and subprocess.run(
        [NUMPY_PYTHON, "-c", "import numpy"], capture_output=True).returncode == 0


IN_CI = os.environ.get("CI") == "true"


def requires(available, reason):
    """Like unittest.skipUnless for a test or a test class, except under CI=true:
    there a missing dataset, package or capability fails the test with `reason`
    instead of skipping it, so that a green CI run has run every test."""
    if available:
        return lambda obj: obj
    if not IN_CI:
        return unittest.skip(reason)
    message = f"required under CI=true: {reason}"

    def fail(obj):
        if isinstance(obj, type):
            def set_up_class(cls):
                raise AssertionError(message)
            obj.setUpClass = classmethod(set_up_class)
            return obj

        def failing_test(self, *args, **kwargs):
            self.fail(message)
        failing_test.__name__ = obj.__name__
        failing_test.__doc__ = obj.__doc__
        return failing_test
    return fail


FASHION_MNIST_REASON = "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"
requires_fashion_mnist = requires(have_fashion_mnist(), FASHION_MNIST_REASON)


def free_port_range(n):
    """A base port such that base..base+n-1 are free on 127.0.0.1 (a port base
    for launchers that give local rank k the port base + k)."""
    for base in free_ports(20):
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError(f"no {n} consecutive free ports")


def make_cluster(workers=2, ps=0, chief=False, evaluator=False):
    jobs = {}
    ports = iter(free_ports(workers + ps + int(chief) + int(evaluator)))
    if chief:
        jobs["chief"] = [f"127.0.0.1:{next(ports)}"]
    if workers:
        jobs["worker"] = [f"127.0.0.1:{next(ports)}" for _ in range(workers)]
    if ps:
        jobs["ps"] = [f"127.0.0.1:{next(ports)}" for _ in range(ps)]
    if evaluator:
        jobs["evaluator"] = [f"127.0.0.1:{next(ports)}"]
    return jobs


def tf_config(cluster, job, index):
    return json.dumps({"cluster": cluster, "task": {"type": job, "index": index}})


class Task(processes.Task):
    """One meshtrain process whose output is collected line by line."""

    def __init__(self, args, env=None, name="task", wrapper=(), binary=None):
        """Runs `BIN args` (or `binary args`); `wrapper` (a command prefix that
        execs its arguments, such as EmulatedHosts.command) keeps the pid BIN's."""
        super().__init__(list(wrapper) + [binary or BIN] + list(args), env, name)


class ClusterTestCase(unittest.TestCase):
    """Gives each test a temporary directory and kills leftover tasks."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="meshtrain-it-")
        self.tmp = self._tmp.name
        self.tasks = []

    def tearDown(self):
        for t in self.tasks:
            t.kill()
            try:
                t.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._tmp.cleanup()

    def start(self, args, env=None, name="task", wrapper=(), binary=None):
        task = Task(args, env=env, name=name, wrapper=wrapper, binary=binary)
        self.tasks.append(task)
        return task

    def start_cluster_task(self, cluster, job, index, args):
        return self.start(["train"] + list(args), env={"TF_CONFIG": tf_config(cluster, job, index)},
                          name=f"{job}:{index}")

    def summary(self, model_dir):
        with open(os.path.join(model_dir, "summary.json")) as f:
            return json.load(f)

    def assert_exit(self, task, code, timeout):
        got = task.wait(timeout)
        self.assertEqual(got, code, f"{task.name} exited {got}; output:\n{task.output()}")


# Reading the logs of `meshtrain launch` (every line "[task] L hh:mm:ss.micros ...").
LOG_TIME = re.compile(r"^(?:\[(?P<task>[^\]]+)\] )?[IWE] (?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d\.\d+) ")


def time_of_day(line):
    """Seconds since local midnight of a log line, or None."""
    m = LOG_TIME.match(line)
    if not m:
        return None
    return int(m.group("h")) * 3600 + int(m.group("m")) * 60 + float(m.group("s"))


def now_of_day():
    t = time.time()
    lt = time.localtime(t)
    return lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec + (t % 1)


def started_pid(task, name):
    """The pid `meshtrain launch` logged for the first start of task `name`."""
    for line in task.lines:
        m = re.search(rf"\b{re.escape(name)} started \(pid (\d+)\)", line)
        if m:
            return int(m.group(1))
    return None


def recorded_examples(record):
    """{epoch: Counter(example -> times trained)} over every task's
    --test-record-examples file in directory `record`."""
    counts = collections.defaultdict(collections.Counter)
    for path in glob.glob(os.path.join(record, "examples-*.txt")):
        with open(path) as f:
            for line in f:
                fields = [int(x) for x in line.split()]
                counts[fields[1]].update(fields[2:])
    return counts


def committed(line, step=None):
    """True for the line of a committed checkpoint at `step` or later. Later:
    a save due while the previous one is still being written is deferred to
    the step that one ends (ckpt-111 instead of ckpt-100 on a loaded machine)."""
    m = re.search(r"checkpoint: ckpt-(\d+) committed", line)
    return m is not None and (step is None or int(m.group(1)) >= step)


def committed_steps(lines):
    """The steps of every checkpoint committed in `lines`."""
    return {int(m.group(1)) for l in lines for m in [re.search(r"checkpoint: ckpt-(\d+) committed", l)] if m}


class UndisturbedBaselineTestCase(ClusterTestCase):
    """Tests that compare with one undisturbed run, made once for the class:
    `meshtrain launch --model-dir DIR BASELINE_ARGS`; its directory is
    `baseline_dir` and its summary `baseline`."""
    BASELINE_NAME = "baseline"
    BASELINE_ARGS = []
    baseline = None
    baseline_dir = None

    @classmethod
    def setUpClass(cls):
        cls._scratch = os.path.join("/tmp", f"meshtrain-{cls.BASELINE_NAME}-baseline-{os.getpid()}")
        shutil.rmtree(cls._scratch, ignore_errors=True)
        cls.baseline_dir = os.path.join(cls._scratch, "run")
        proc = subprocess.run([BIN, "launch", "--model-dir", cls.baseline_dir] + list(cls.BASELINE_ARGS),
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise AssertionError(f"undisturbed run failed:\n{proc.stdout}\n{proc.stderr}")
        with open(os.path.join(cls.baseline_dir, "summary.json")) as f:
            cls.baseline = json.load(f)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls._scratch, ignore_errors=True)

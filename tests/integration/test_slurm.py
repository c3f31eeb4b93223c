"""meshtrain under a real Slurm: a one-node cluster for this machine (munged,
slurmctld and slurmd from Debian's slurm-wlm and munge, started by the test as
root in a temporary directory and stopped at the end, also on failure), then
`srun -n 3 meshtrain train` and an `sbatch` script with a parameter server.
Where the packages or root are missing, or the daemons do not come up, the
tests skip with the reason; under CI=true they fail with it instead
(scripts/install-deps.sh installs the packages)."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import BIN, IN_CI, REFERENCE, free_port_range, free_ports, requires_fashion_mnist

DAEMONS = ["munged", "slurmctld", "slurmd", "srun", "sbatch", "sinfo"]
START_TIMEOUT = 60  # seconds for the node to become idle
JOB_TIMEOUT = 240

SLURM_CONF = """\
ClusterName=meshtraintest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={dir}/munge.socket
CredType=cred/munge
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/linear
SchedulerType=sched/builtin
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
ReturnToService=2
NodeName={host} CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
"""


def unavailable_reason():
    missing = [d for d in DAEMONS if shutil.which(d) is None]
    if missing:
        return (f"Slurm is not installed ({', '.join(missing)} missing): apt-get install "
                "slurm-wlm munge, or scripts/install-deps.sh")
    if os.geteuid() != 0:
        return "starting slurmctld and slurmd for the test needs root"
    return None


def tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


class SlurmNode:
    """munged, slurmctld and slurmd for this host, in `dir`; stop() ends them."""

    def __init__(self, dir):
        self.dir = dir
        self.procs = []
        self.host = socket.gethostname()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        self.env["SLURM_CONF"] = os.path.join(dir, "slurm.conf")

    def start(self):
        for sub in ("state", "spool"):
            os.makedirs(os.path.join(self.dir, sub))
        key = os.path.join(self.dir, "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o600)
        ctld_port, slurmd_port = free_ports(2)
        with open(self.env["SLURM_CONF"], "w") as f:
            f.write(SLURM_CONF.format(host=self.host, dir=self.dir, ctld_port=ctld_port,
                                      slurmd_port=slurmd_port, cpus=os.cpu_count()))
        d = self.dir
        self._spawn("munged", ["munged", "--foreground", "--force", f"--key-file={key}",
                               f"--socket={d}/munge.socket", f"--pid-file={d}/munged.pid",
                               f"--log-file={d}/munged.log", f"--seed-file={d}/munge.seed"])
        self._wait(lambda: os.path.exists(f"{d}/munge.socket"), "munged made no socket",
                   f"{d}/munged.out")
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", self.env["SLURM_CONF"]])
        self._spawn("slurmd", ["slurmd", "-D", "-f", self.env["SLURM_CONF"]])
        self._wait(self._idle, "the node did not become idle", f"{d}/slurmctld.log",
                   f"{d}/slurmd.log", f"{d}/slurmctld.out", f"{d}/slurmd.out")

    def _spawn(self, name, args):
        out = open(os.path.join(self.dir, f"{name}.out"), "w")
        self.procs.append(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                           env=self.env, start_new_session=True))
        out.close()

    def _idle(self):
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args[0]} exited with status {p.returncode}")
        r = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True,
                           text=True, timeout=10)
        return r.returncode == 0 and "idle" in r.stdout

    def _wait(self, condition, what, *logs):
        """Polls `condition` until the deadline; raises with the logs' tails."""
        deadline = time.monotonic() + START_TIMEOUT
        error = None
        while time.monotonic() < deadline:
            try:
                if condition():
                    return
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                error = e
                break
            time.sleep(0.2)  # polling a daemon's state, bounded by the deadline
        detail = "\n".join(f"--- {log}:\n{tail(log)}" for log in logs)
        raise RuntimeError(f"{what} within {START_TIMEOUT}s ({error or 'timeout'})\n{detail}")

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)

    def run(self, args, timeout=JOB_TIMEOUT):
        return subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout,
                              cwd=self.dir)


@requires_fashion_mnist
class SlurmTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        reason = unavailable_reason()
        cls._tmp = tempfile.TemporaryDirectory(prefix="meshtrain-slurm-")
        cls.addClassCleanup(cls._tmp.cleanup)
        if reason is None:
            os.chmod(cls._tmp.name, 0o755)
            cls.node = SlurmNode(cls._tmp.name)
            cls.addClassCleanup(cls.node.stop)
            try:
                cls.node.start()
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                reason = f"could not start a one-node Slurm: {e}"
        if reason is not None:
            if IN_CI:
                raise AssertionError(f"required under CI=true: {reason}")
            raise unittest.SkipTest(reason)

    def summary(self, model_dir):
        import json
        with open(os.path.join(model_dir, "summary.json")) as f:
            return json.load(f)

    def test_srun_three_workers_train_with_identical_parameters(self):
        model_dir = os.path.join(self.node.dir, "srun")
        r = self.node.run(["srun", "-n", "3", "--overcommit", BIN, "train", "--strategy",
                           "multi_worker_mirrored", "--config", REFERENCE, "--global-batch-size",
                           "255", "--max-steps", "60", "--epochs", "1", "--port-base",
                           str(free_port_range(3)), "--model-dir", model_dir])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("cluster from Slurm (SLURM_PROCID=0, SLURM_NTASKS=3", r.stdout + r.stderr)
        summary = self.summary(model_dir)
        self.assertEqual(summary["num_workers"], 3)
        self.assertEqual(summary["final_step"], 60)
        checksums = summary["param_checksums"]
        self.assertEqual(sorted(checksums), ["worker:0", "worker:1", "worker:2"])
        self.assertEqual(len(set(checksums.values())), 1, checksums)

    def test_sbatch_script_with_a_parameter_server(self):
        model_dir = os.path.join(self.node.dir, "sbatch")
        script = os.path.join(self.node.dir, "ps.sbatch")
        output = os.path.join(self.node.dir, "ps.out")
        with open(script, "w") as f:
            f.write("#!/bin/bash\n#SBATCH --ntasks=3\n#SBATCH --overcommit\n"
                    f"#SBATCH --output={output}\n"
                    f"srun {BIN} train --ps 1 --strategy parameter_server --config {REFERENCE} "
                    f"--max-steps 60 --epochs 1 --port-base {free_port_range(3)} "
                    f"--model-dir {model_dir}\n")
        r = self.node.run(["sbatch", "--wait", script])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + tail(output, 40))
        summary = self.summary(model_dir)
        self.assertEqual(summary["strategy"], "parameter_server")
        self.assertEqual(summary["num_workers"], 2)
        self.assertEqual(summary["final_step"], 60)
        self.assertIn("[ps:0]", tail(output, 200))


if __name__ == "__main__":
    unittest.main()

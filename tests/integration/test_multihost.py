"""Every strategy across emulated hosts (1 Gbit/s links, one hostname per host):
multi_worker_mirrored on 2, 3 and 4 hosts over the tcp and grpc data paths ends
with the parameters of a one-host run of the same job, also with TLS on every
link; 2 hosts x 2 workers mix shared memory inside a host with tcp between
hosts; parameter_server with 2 workers and 2 ps on 4 hosts, and with TLS on 3;
an evaluator on a host of its own."""
import json
import os
import signal
import subprocess
import sys
import unittest

from harness import BIN, REFERENCE, SOURCE_DIR, requires_fashion_mnist
from multihost import MultiHostTestCase, requires_hosts
from emulated_hosts import SCRIPT, reap_stale

# One thread per task, as `launch` gives each of 2 workers on 2 cores: the
# BLAS blocking, and so the last bits of the sums, depend on the thread count.
SHORT = ["--config", REFERENCE, "--max-steps", "60", "--epochs", "1", "--threads", "1"]
MWMS = ["--strategy", "multi_worker_mirrored"]


def make_credentials(tmp):
    """A cluster CA and the pair every task shares, in tmp/tls."""
    out = os.path.join(tmp, "tls")
    if not os.path.exists(out):
        subprocess.run([BIN, "certs", "--out", out], check=True, capture_output=True, timeout=60)
    return out


def namespaces():
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


@requires_hosts
class EmulatorTest(MultiHostTestCase):
    HOSTS = 2

    def run_on(self, host, argv):
        proc = subprocess.run(self.hosts.command(host, argv), capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        return proc.stdout

    def test_each_host_has_its_own_hostname_address_and_only_its_subnet(self):
        for i in (1, 2):
            self.assertEqual(self.run_on(i, ["hostname"]).strip(), self.hosts.hostname(i))
            self.assertIn(f"inet {self.hosts.address(i)}/24", self.run_on(i, ["ip", "-4", "addr", "show", "eth0"]))
            # One route, to the emulated hosts: nothing else is reachable.
            routes = [l for l in self.run_on(i, ["ip", "-4", "route"]).splitlines() if l.strip()]
            self.assertEqual(len(routes), 1, routes)
            self.assertTrue(routes[0].startswith("198.18.0.0/24 dev eth0"), routes)
        probe = ("import socket; s = socket.socket(); s.settimeout(2)\n"
                 "try: s.connect(('192.0.2.1', 9)); print('connected')\n"
                 "except OSError as e: print(e.errno)")
        self.assertEqual(self.run_on(1, [sys.executable, "-c", probe]).strip(), "101")  # ENETUNREACH

    def test_links_are_shaped_both_ways_and_can_be_reshaped(self):
        def qdiscs():
            host = self.run_on(1, ["tc", "qdisc", "show", "dev", "eth0"])
            bridge = subprocess.run(["tc", "-n", f"{self.hosts.name}-br", "qdisc", "show", "dev", "v1"],
                                    capture_output=True, text=True).stdout
            return host, bridge
        for side in qdiscs():
            self.assertRegex(side, r"tbf .*rate 1Gbit")
        self.hosts.set_rate(1, "10mbit")
        for side in qdiscs():
            self.assertRegex(side, r"tbf .*rate 10Mbit")

    def test_up_is_idempotent_and_a_crashed_run_is_reaped(self):
        # A process that brings hosts up and dies by SIGKILL leaves them behind ...
        child = subprocess.Popen([sys.executable, "-c",
                                  "import os, signal, sys; sys.path.insert(0, sys.argv[1]);"
                                  "from emulated_hosts import EmulatedHosts;"
                                  "EmulatedHosts(2).up(); os.kill(os.getpid(), signal.SIGKILL)",
                                  os.path.join(SOURCE_DIR, "scripts")])
        self.assertEqual(child.wait(60), -signal.SIGKILL)
        self.assertIn(f"m{child.pid}-h2", namespaces())
        # ... until the next run reaps what belongs to dead processes.
        reap_stale()
        self.assertNotIn(f"m{child.pid}-", namespaces())
        self.assertIn(f"{self.hosts.name}-h2", namespaces())  # ours, alive, untouched
        # up twice is up once; down removes everything.
        for _ in range(2):
            subprocess.run([SCRIPT, "up", "2", "--name", "idem"], check=True, capture_output=True, timeout=60)
        self.assertEqual(sorted(l.split()[0] for l in namespaces().splitlines() if l.startswith("idem-")),
                         ["idem-br", "idem-h1", "idem-h2"])
        subprocess.run([SCRIPT, "down", "--name", "idem"], check=True, timeout=60)
        self.assertNotIn("idem-", namespaces())

    def test_bad_arguments_are_refused_naming_the_fix(self):
        for args, message in ((["up"], "give the number of hosts"),
                              (["up", "2", "--rate", "fast"], "rate 'fast'"),
                              (["exec", "9", "--name", self.hosts.name, "--", "true"], "host 9 does not exist"),
                              (["up", "2", "--name", "Bad_Name"], "--name 'Bad_Name'"),
                              (["rate", "1", "fast", "--name", self.hosts.name], "rate 'fast'")):
            proc = subprocess.run([SCRIPT] + args, capture_output=True, text=True, timeout=30)
            self.assertEqual(proc.returncode, 2, args)
            self.assertIn(message, proc.stderr, args)


@requires_fashion_mnist
@requires_hosts
class MultiWorkerAcrossHostsTest(MultiHostTestCase):
    HOSTS = 4
    one_host = {}  # (workers, extra args) -> summary of `launch` on this host

    def one_host_run(self, workers, extra):
        key = (workers, tuple(extra))
        if key not in self.one_host:
            model_dir = os.path.join(self.tmp, f"one-host-{workers}")
            task = self.start(["launch", "--workers", str(workers), "--model-dir", model_dir] + MWMS +
                              SHORT + list(extra), name="launch")
            self.assert_exit(task, 0, timeout=180)
            summary = self.summary(model_dir)
            self.assertEqual(summary["communication"], "ring over shm")
            self.one_host[key] = summary
        return self.one_host[key]

    def run_across(self, cluster, extra):
        model_dir = os.path.join(self.tmp, f"run{len(self.tasks)}")
        tasks = self.start_all(cluster, MWMS + SHORT + ["--model-dir", model_dir] + list(extra))
        for task in tasks.values():
            self.assert_exit(task, 0, timeout=180)
        return self.summary(model_dir), tasks["worker:0"].output()

    def assert_matches_one_host(self, worker_hosts, extra=(), layers=("auto", "grpc"),
                                expected_path="tcp"):
        cluster = self.cluster(worker=worker_hosts)
        workers = len(worker_hosts)
        reference = self.one_host_run(workers, extra)
        spans = len(set(worker_hosts))
        for layer in layers:
            with self.subTest(rpc_layer=layer):
                summary, chief = self.run_across(cluster, list(extra) + ["--rpc-layer", layer])
                self.assertEqual(summary["num_workers"], workers)
                self.assertEqual(summary["final_step"], 60)
                path = expected_path if layer == "auto" else layer
                self.assertEqual(summary["communication"], f"ring over {path}")
                if layer == "auto":
                    self.assertIn(f"the group spans {spans} hosts", chief)
                checksums = summary["param_checksums"]
                self.assertEqual(len(checksums), workers)
                # Bit for bit the one-host run: the data path changes nothing.
                self.assertEqual(set(checksums.values()), set(reference["param_checksums"].values()),
                                 f"across hosts {checksums}, one host {reference['param_checksums']}")

    def test_two_hosts(self):
        self.assert_matches_one_host([1, 2])

    def test_three_hosts(self):
        self.assert_matches_one_host([1, 2, 3], ["--global-batch-size", "255"])

    def test_four_hosts(self):
        self.assert_matches_one_host([1, 2, 3, 4])

    def test_two_hosts_with_two_workers_each_mix_shared_memory_and_tcp(self):
        # The flat ring, asked for: bit for bit the one-host run.
        self.assert_matches_one_host([1, 1, 2, 2], ["--communication", "ring"], layers=("auto", "tcp"),
                                     expected_path="shm+tcp")

    def test_two_hosts_with_two_workers_each_sum_hierarchically_by_default(self):
        # Within each host over shared memory, between the two hosts' leaders
        # over TCP: the same sums in another order, identical on every worker.
        reference = self.one_host_run(4, ())
        summary, _ = self.run_across(self.cluster(worker=[1, 1, 2, 2]), [])
        self.assertEqual(summary["communication"],
                         "hierarchical: ring over shm on each of 2 hosts, ring over tcp between their leaders")
        self.assertEqual(summary["final_step"], 60)
        self.assertEqual(len(set(summary["param_checksums"].values())), 1, summary["param_checksums"])
        self.assertLess(abs(summary["test_accuracy"] - reference["test_accuracy"]), 0.02)

    def test_two_hosts_with_tls_on_every_link(self):
        creds = make_credentials(self.tmp)
        reference = self.one_host_run(2, [])
        for encryption in ("on", "off"):
            with self.subTest(data_path_encryption=encryption):
                summary, chief = self.run_across(self.cluster(worker=[1, 2]), [
                    "--tls-dir", creds, "--require-tls", "--data-path-encryption", encryption])
                self.assertIn("security: mutual TLS with", chief)
                self.assertEqual(summary["communication"], "ring over tcp")
                self.assertEqual(summary["param_checksums"], reference["param_checksums"])


@requires_fashion_mnist
@requires_hosts
class ParameterServerAcrossHostsTest(MultiHostTestCase):
    HOSTS = 4

    def test_two_workers_and_two_ps_on_four_hosts(self):
        cluster = self.cluster(worker=[1, 2], ps=[3, 4])
        model_dir = os.path.join(self.tmp, "ps")
        tasks = self.start_all(cluster, ["--config", REFERENCE, "--epochs", "1", "--max-steps", "150",
                                         "--strategy", "parameter_server",
                                         "--model-dir", model_dir])
        for task in tasks.values():
            self.assert_exit(task, 0, timeout=180)
        summary = self.summary(model_dir)
        self.assertEqual(summary["strategy"], "parameter_server")
        self.assertEqual((summary["num_workers"], summary["num_ps"]), (2, 2))
        self.assertEqual(summary["data_path"], "tcp")
        self.assertEqual(len(summary["ps_bytes"]), 2)
        self.assertTrue(all(b > 0 for b in summary["ps_bytes"]), summary["ps_bytes"])
        self.assertEqual(set(summary["samples_per_sec_by_worker"]), {"worker:0", "worker:1"})
        self.assertGreater(summary["pushes"]["applied"], summary["chief_pushes"]["applied"])
        # 150 asynchronous steps of the reference job: far above chance (0.10).
        self.assertGreater(summary["test_accuracy"], 0.70, summary["history"])


    def test_two_workers_and_a_ps_on_three_hosts_with_tls(self):
        cluster = self.cluster(worker=[1, 2], ps=[3])
        model_dir = os.path.join(self.tmp, "ps-tls")
        tasks = self.start_all(cluster, ["--config", REFERENCE, "--epochs", "1", "--max-steps", "60",
                                         "--strategy", "parameter_server", "--model-dir", model_dir,
                                         "--tls-dir", make_credentials(self.tmp), "--require-tls"])
        for task in tasks.values():
            self.assert_exit(task, 0, timeout=180)
        summary = self.summary(model_dir)
        self.assertEqual(summary["data_path"], "tcp")
        self.assertGreater(summary["ps_bytes"][0], 0)
        self.assertIn("security: mutual TLS with", tasks["ps:0"].output())


@requires_fashion_mnist
@requires_hosts
class EvaluatorAcrossHostsTest(MultiHostTestCase):
    HOSTS = 3

    def test_evaluator_on_its_own_host_evaluates_every_checkpoint(self):
        cluster = self.cluster(worker=[1, 2], evaluator=[3])
        model_dir = os.path.join(self.tmp, "eval")
        # 70 steps: the final checkpoint is not also a periodic one (when they
        # coincide the evaluator may see the step before it is marked final).
        tasks = self.start_all(cluster, MWMS + ["--config", REFERENCE, "--max-steps", "70", "--epochs", "1",
                                                "--threads", "1", "--model-dir", model_dir,
                                                "--checkpoint-every-steps", "20", "--max-to-keep", "0"])
        for task in tasks.values():
            self.assert_exit(task, 0, timeout=180)
        with open(os.path.join(model_dir, "eval.jsonl")) as f:
            lines = [json.loads(l) for l in f if l.strip()]
        # Every checkpoint (20, 40, 60 and 70, unless a save was deferred) once, in order.
        steps = sorted(int(d[5:]) for d in os.listdir(model_dir) if d.startswith("ckpt-"))
        self.assertEqual(steps[-1], 70)
        self.assertGreaterEqual(len(steps), 3)
        self.assertEqual([l["step"] for l in lines], steps, tasks["evaluator:0"].output())
        self.assertTrue(lines[-1]["final"])
        self.assertAlmostEqual(lines[-1]["accuracy"], self.summary(model_dir)["test_accuracy"], places=9)


if __name__ == "__main__":
    unittest.main()

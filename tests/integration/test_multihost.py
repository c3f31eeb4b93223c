"""Every strategy across emulated hosts (1 Gbit/s links, one hostname per host):
multi_worker_mirrored on 2, 3 and 4 hosts over the tcp and grpc data paths ends
with the parameters of a one-host run of the same job; 2 hosts x 2 workers mix
shared memory inside a host with tcp between hosts; parameter_server with 2
workers and 2 ps on 4 hosts; an evaluator on a host of its own."""
import json
import os
import unittest

from harness import BIN, REFERENCE, requires_fashion_mnist
from multihost import MultiHostTestCase, requires_hosts

# One thread per task, as `launch` gives each of 2 workers on 2 cores: the
# BLAS blocking, and so the last bits of the sums, depend on the thread count.
SHORT = ["--config", REFERENCE, "--max-steps", "60", "--epochs", "1", "--threads", "1"]
MWMS = ["--strategy", "multi_worker_mirrored"]


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
        self.assert_matches_one_host([1, 1, 2, 2], layers=("auto", "tcp"), expected_path="shm+tcp")


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


@requires_fashion_mnist
@requires_hosts
class EvaluatorAcrossHostsTest(MultiHostTestCase):
    HOSTS = 3

    def test_evaluator_on_its_own_host_evaluates_every_checkpoint(self):
        cluster = self.cluster(worker=[1, 2], evaluator=[3])
        model_dir = os.path.join(self.tmp, "eval")
        tasks = self.start_all(cluster, MWMS + SHORT + ["--model-dir", model_dir, "--checkpoint-every-steps",
                                                        "20", "--max-to-keep", "0"])
        for task in tasks.values():
            self.assert_exit(task, 0, timeout=180)
        with open(os.path.join(model_dir, "eval.jsonl")) as f:
            lines = [json.loads(l) for l in f if l.strip()]
        self.assertEqual([l["step"] for l in lines], [20, 40, 60], tasks["evaluator:0"].output())
        self.assertTrue(lines[-1]["final"])
        self.assertAlmostEqual(lines[-1]["accuracy"], self.summary(model_dir)["test_accuracy"], places=9)


if __name__ == "__main__":
    unittest.main()

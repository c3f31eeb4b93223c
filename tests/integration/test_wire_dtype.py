"""16-bit gradients on the wire (--wire-dtype, strategy.communication.wire_dtype):
the reference job still reaches its accuracy under multi_worker_mirrored and
parameter_server, every worker ends with identical parameters, each step moves
half the bytes, and the data path (shm, tcp, grpc) changes no bit of the result."""
import json
import os
import unittest

from harness import ClusterTestCase, REFERENCE, requires_fashion_mnist

# The reference MLP's parameters: 784x300 + 300 + 300x100 + 100 + 100x10 + 10.
PARAMETERS = 266610
# A short run of the reference job, for what needs no accuracy.
SHORT = ["--config", REFERENCE, "--epochs", "1", "--max-steps", "60"]


@requires_fashion_mnist
class WireDtypeTest(ClusterTestCase):

    def launch(self, name, args, timeout=300):
        model_dir = os.path.join(self.tmp, name)
        task = self.start(["launch", "--model-dir", model_dir] + list(args), name=name)
        self.assert_exit(task, 0, timeout=timeout)
        return self.summary(model_dir)

    def mwms(self, name, args):
        return self.launch(name, ["--workers", "2", "--strategy", "multi_worker_mirrored"] + list(args))

    def test_multi_worker_mirrored_bfloat16_reaches_the_reference_accuracy(self):
        s = self.mwms("mwms", ["--config", REFERENCE, "--wire-dtype", "bfloat16"])
        self.assertEqual(s["epochs"], 10)
        self.assertEqual(s["final_step"], 2350)
        self.assertGreaterEqual(s["test_accuracy"], 0.86, s["history"])
        self.assertEqual(s["wire_dtype"], "bfloat16")
        # Every rank took the rounded sums: the replicas stayed identical.
        self.assertEqual(len(set(s["param_checksums"].values())), 1, s["param_checksums"])
        # A two-worker ring sends each worker's whole buffer once, 2 bytes an element.
        self.assertEqual(s["bytes_sent_per_step"], PARAMETERS * 2)

    def test_parameter_server_bfloat16_reaches_the_reference_accuracy(self):
        s = self.launch("ps", ["--workers", "2", "--ps", "1", "--strategy", "parameter_server",
                               "--config", REFERENCE, "--wire-dtype", "bfloat16"])
        self.assertEqual(s["epochs"], 10)
        self.assertGreaterEqual(s["test_accuracy"], 0.86, s["history"])
        self.assertEqual(s["wire_dtype"], "bfloat16")
        self.assertEqual(s["data_path"], "shm")
        # Pushes and the values after them, both in 16 bits.
        self.assertEqual(s["bytes_sent_per_step"], PARAMETERS * 2)
        self.assertEqual(s["bytes_received_per_step"], PARAMETERS * 2)

    def test_the_data_path_changes_no_bit(self):
        float32 = self.mwms("f32", SHORT + ["--rpc-layer", "shm"])
        sums = {}
        for layer in ["shm", "tcp", "grpc"]:
            s = self.mwms(f"bf16-{layer}", SHORT + ["--rpc-layer", layer, "--wire-dtype", "bfloat16"])
            self.assertEqual(s["communication"], f"ring over {layer}")
            self.assertEqual(len(set(s["param_checksums"].values())), 1, s["param_checksums"])
            sums[layer] = s["param_checksums"]["worker:0"]
        # The same 16-bit messages in the same order on every path ...
        self.assertEqual(len(set(sums.values())), 1, sums)
        # ... and they are not float32's.
        self.assertNotEqual(sums["shm"], float32["param_checksums"]["worker:0"])

    def test_float16_from_the_job_config(self):
        with open(REFERENCE) as f:
            job = json.load(f)
        job["strategy"]["communication"] = {"implementation": "ring", "wire_dtype": "float16"}
        config = os.path.join(self.tmp, "float16.json")
        with open(config, "w") as f:
            json.dump(job, f)
        s = self.mwms("f16", ["--config", config, "--epochs", "1", "--max-steps", "60", "--rpc-layer", "tcp"])
        self.assertEqual(s["wire_dtype"], "float16")
        self.assertEqual(len(set(s["param_checksums"].values())), 1, s["param_checksums"])
        # 2 bytes an element plus one 4-byte scale per message (a chunk of each
        # gradient bucket's ring).
        self.assertGreater(s["bytes_sent_per_step"], PARAMETERS * 2)
        self.assertLess(s["bytes_sent_per_step"], PARAMETERS * 2 + 1024)

    def test_parameter_server_over_grpc_in_bfloat16(self):
        s = self.launch("ps-grpc", ["--workers", "2", "--ps", "1", "--strategy", "parameter_server",
                                    "--rpc-layer", "grpc", "--wire-dtype", "bfloat16"] + SHORT)
        self.assertEqual(s["data_path"], "grpc")
        self.assertEqual(s["wire_dtype"], "bfloat16")
        # 60 asynchronous steps: far above chance (0.1); one run each measured
        # 0.80 in float32 and 0.73 in bfloat16 here.
        self.assertGreaterEqual(s["test_accuracy"], 0.6, s["history"])

    def test_bad_values_are_named(self):
        for args, message in [(["--wire-dtype", "fp8"], "use float32, bfloat16 or float16"),
                              (["--strategy", "mirrored", "--devices", "2", "--wire-dtype", "bfloat16"],
                               "mirrored sends no gradients between tasks")]:
            task = self.start(["train"] + SHORT + args, name="bad")
            self.assertNotEqual(task.wait(60), 0)
            self.assertIn(message, task.output())


if __name__ == "__main__":
    unittest.main()

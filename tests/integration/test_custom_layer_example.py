"""examples/custom_layer: a program with a layer of its own (residual_dense,
registered through the C++ layer API) trains a layer list holding it under
one_device and under mirrored with two replicas."""
import os
import unittest

from harness import BIN, SOURCE_DIR, ClusterTestCase

BUILD_DIR = os.environ.get("MESHTRAIN_BUILD_DIR",
                           os.path.join(os.path.dirname(os.path.abspath(BIN)), ".."))
TRAINER = os.path.join(BUILD_DIR, "examples", "custom_layer", "custom_layer_trainer")
CONFIG = os.path.join(SOURCE_DIR, "examples", "custom_layer", "residual_mlp.json")


@unittest.skipUnless(os.path.exists(TRAINER), f"{TRAINER} is not built (MESHTRAIN_BUILD_EXAMPLES=ON)")
class CustomLayerExampleTest(ClusterTestCase):

    def train(self, name, args):
        model_dir = os.path.join(self.tmp, name)
        task = self.start(["train", "--config", CONFIG, "--model-dir", model_dir] + list(args),
                          name=name, binary=TRAINER)
        self.assert_exit(task, 0, timeout=180)
        return self.summary(model_dir)

    def test_trains_under_one_device_and_mirrored(self):
        one = self.train("one_device", [])
        mirrored = self.train("mirrored", ["--strategy", "mirrored", "--devices", "cpu:0,cpu:1"])
        self.assertEqual(one["strategy"], "one_device")
        self.assertEqual(mirrored["strategy"], "mirrored")
        self.assertEqual(mirrored["num_replicas"], 2)
        for s in (one, mirrored):
            self.assertEqual(s["final_step"], 2 * 2048 // 64)
            self.assertGreater(s["test_accuracy"], 0.5, s)
        self.assertLess(abs(one["test_accuracy"] - mirrored["test_accuracy"]), 0.05)

    def test_the_meshtrain_binary_does_not_know_the_layer(self):
        task = self.start(["train", "--config", CONFIG, "--model-dir", os.path.join(self.tmp, "x")],
                          name="plain")
        self.assertNotEqual(task.wait(60), 0)
        self.assertIn("model.layers[1] (residual_dense): unknown layer type 'residual_dense'",
                      task.output())


if __name__ == "__main__":
    unittest.main()

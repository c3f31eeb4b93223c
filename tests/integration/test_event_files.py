"""TensorBoard event files: the chief's events, read back by an independent
reader (tfevents_reader.py, standard library only) that checks every CRC and
decodes the scalars, hold the values summary.json reports."""
import glob
import os
import shutil
import unittest

from harness import (ClusterTestCase, REFERENCE, requires_fashion_mnist)
import tfevents_reader

STEPS = 300  # one whole epoch of the reference job (235 steps) and part of a second


@requires_fashion_mnist
class EventFilesTest(ClusterTestCase):

    def event_files(self, model_dir):
        return sorted(glob.glob(os.path.join(model_dir, "events.out.tfevents.*")))

    def test_chief_logs_loss_accuracy_throughput_and_learning_rate(self):
        model_dir = os.path.join(self.tmp, "run")
        task = self.start(["train", "--config", REFERENCE, "--epochs", "2", "--max-steps", str(STEPS),
                           "--model-dir", model_dir], name="train")
        self.assert_exit(task, 0, timeout=120)
        files = self.event_files(model_dir)
        self.assertEqual(len(files), 1, files)
        events = tfevents_reader.read_events(files[0])
        self.assertEqual(events[0].get("file_version"), "brain.Event:2")
        summary = self.summary(model_dir)
        scalars = tfevents_reader.scalars(events)

        # One training loss per step, at global steps 1..STEPS, all plausible.
        losses = scalars["train/loss"]
        self.assertEqual([s for s, _ in losses], list(range(1, STEPS + 1)))
        self.assertTrue(all(0 < v < 5 for _, v in losses), losses[:5])
        self.assertLess(sum(v for _, v in losses[-20:]) / 20, sum(v for _, v in losses[:20]) / 20)

        # Per epoch: the figures of summary.json's history, at the epoch's last step.
        history = summary["history"]
        self.assertEqual(len(history), 2)
        epoch_steps = [235, STEPS]
        for tag, key in [("test/accuracy", "test_accuracy"), ("test/loss", "test_loss"),
                         ("train/accuracy", "train_accuracy"), ("perf/samples_per_sec", "samples_per_sec")]:
            got = scalars[tag]
            self.assertEqual([s for s, _ in got], epoch_steps, tag)
            for (_, value), record in zip(got, history):
                self.assertAlmostEqual(value, record[key], delta=abs(record[key]) * 1e-6 + 1e-7, msg=tag)
        # The scheduled rate of every step (constant here).
        rates = scalars["optimizer/learning_rate"]
        self.assertEqual([s for s, _ in rates], list(range(1, STEPS + 1)))
        self.assertTrue(all(round(v, 6) == 0.05 for _, v in rates), rates[:5])
        # Wall times are real and in order.
        times = [e["wall_time"] for e in events]
        self.assertEqual(times[1:], sorted(times[1:]))
        self.assertGreater(times[0], 1.6e9)

    def test_only_the_chief_writes_events_in_a_cluster(self):
        model_dir = os.path.join(self.tmp, "cluster")
        task = self.start(["launch", "--workers", "2", "--config", REFERENCE, "--epochs", "1",
                           "--max-steps", "40", "--model-dir", model_dir], name="launch")
        self.assert_exit(task, 0, timeout=120)
        files = self.event_files(model_dir)
        self.assertEqual(len(files), 1, files)
        scalars = tfevents_reader.scalars(tfevents_reader.read_events(files[0]))
        self.assertEqual(len(scalars["train/loss"]), 40)
        self.assertAlmostEqual(scalars["test/accuracy"][0][1], self.summary(model_dir)["test_accuracy"], places=6)

    def test_reader_catches_a_flipped_bit(self):
        model_dir = os.path.join(self.tmp, "flip")
        task = self.start(["train", "--config", REFERENCE, "--max-steps", "5", "--model-dir", model_dir],
                          name="train")
        self.assert_exit(task, 0, timeout=120)
        original = self.event_files(model_dir)[0]
        damaged = os.path.join(self.tmp, "damaged")
        shutil.copy(original, damaged)
        with open(damaged, "r+b") as f:
            data = bytearray(f.read())
            data[len(data) // 2] ^= 0x10
            f.seek(0)
            f.write(data)
        tfevents_reader.read_events(original)  # the undamaged file reads
        with self.assertRaises(tfevents_reader.CorruptFile):
            tfevents_reader.read_events(damaged)


class ReaderSelfTest(unittest.TestCase):
    def test_crc32c_check_value(self):
        # RFC 3720's check value.
        self.assertEqual(tfevents_reader.crc32c(b"123456789"), 0xE3069283)


if __name__ == "__main__":
    unittest.main()

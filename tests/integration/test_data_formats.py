"""Data a user has (docs/data.md): `meshtrain data convert` turns Fashion-MNIST's
IDX files into 8 TFRecord shards of tf.train.Example, `meshtrain data inspect`
shows their features, and the reference job trained from the shards under
multi_worker_mirrored with 2 workers ends with the very parameters of the run
from the IDX files (auto_shard data), and with auto_shard file each worker
reads only its 4 shards and the job reaches the accuracy of the IDX files; a
corrupt shard stops the run with the file and record;
arrays saved by NumPy, as .npy files or as members of .npz archives (stored
and deflated), train to those parameters too, and so do they converted to
TFRecord shards (a whole .npz or a missing member is named); two workers learn
from CSV files, converted to TFRecord shards they train to the same
parameters, and a short line is named; a training set larger than the
memory limit of its process trains from the dataset cache to the parameters
of a run from memory."""
import gzip
import json
import os
import re
import subprocess
import unittest

import memory_limit

from harness import (BIN, FASHION_MNIST_DIR, NUMPY_PYTHON, REFERENCE, ClusterTestCase, have_numpy_python,
                     requires, requires_fashion_mnist)


@requires_fashion_mnist
class TfRecordTest(ClusterTestCase):

    def convert(self, out, *extra):
        return subprocess.run([BIN, "data", "convert", "--from", "idx", "--dir", FASHION_MNIST_DIR,
                               "--out", out] + list(extra), capture_output=True, text=True, timeout=120)

    def config(self, shards, auto_shard="auto"):
        with open(REFERENCE) as f:
            job = json.load(f)
        job["data"] = {"dataset": "tfrecord", "train_files": os.path.join(shards, "train-*.tfrecord*"),
                       "test_files": os.path.join(shards, "test-*.tfrecord*"), "input_feature": "image",
                       "label_feature": "label", "divisor": 255, "num_classes": 10, "shuffle": True,
                       "auto_shard": auto_shard}
        path = os.path.join(self.tmp, f"tfrecord-{auto_shard}.json")
        with open(path, "w") as f:
            json.dump(job, f)
        return path

    def train(self, name, config, epochs=1):
        model_dir = os.path.join(self.tmp, name)
        task = self.start(["launch", "--workers", "2", "--strategy", "multi_worker_mirrored", "--config", config,
                           "--epochs", str(epochs), "--model-dir", model_dir], name=name)
        self.assert_exit(task, 0, timeout=240)
        return self.summary(model_dir), task.output()

    def test_eight_shards_train_to_the_parameters_of_the_idx_files(self):
        shards = os.path.join(self.tmp, "shards")
        made = self.convert(shards, "--shards", "8", "--gzip")
        self.assertEqual(made.returncode, 0, made.stderr)
        self.assertIn("train: 60000 examples into 8 shards", made.stdout)
        self.assertEqual(len([f for f in os.listdir(shards) if f.startswith("train-")]), 8)
        inspected = subprocess.run([BIN, "data", "inspect", os.path.join(shards, "test-00007-of-00008.tfrecord.gz"),
                                    "--records", "1"], capture_output=True, text=True, timeout=60)
        self.assertEqual(inspected.returncode, 0, inspected.stderr)
        self.assertIn("'image': bytes x1 (first: 784 bytes)", inspected.stdout)
        self.assertIn("1250 records", inspected.stdout)
        # The data policy keeps the one global order of the IDX run; with 8
        # files for 2 workers auto would read by file.
        from_tfrecord, _ = self.train("tfrecord", self.config(shards, auto_shard="data"))
        from_idx, _ = self.train("idx", REFERENCE)
        self.assertEqual(from_tfrecord["param_checksums"], from_idx["param_checksums"])
        self.assertEqual(from_tfrecord["test_accuracy"], from_idx["test_accuracy"])

    def test_file_sharding_reads_each_workers_own_shards_and_reaches_the_idx_accuracy(self):
        shards = os.path.join(self.tmp, "shards")
        made = self.convert(shards, "--shards", "8")
        self.assertEqual(made.returncode, 0, made.stderr)
        # The reference job's 10 epochs: about 10 s each run on the 2-core machine.
        by_file, output = self.train("file", self.config(shards, auto_shard="file"), epochs=10)
        read = {}
        for m in re.finditer(r"\[(worker:\d)\] .*data: auto_shard file \(as data.auto_shard says: 8 train files for 2 "
                             r"input workers\): input worker (\d) of 2 reads 4 of 8 files \(30000 examples\): (.*)$",
                             output, re.MULTILINE):
            read[m.group(1)] = m.group(3).split(", ")
        self.assertEqual(sorted(read), ["worker:0", "worker:1"], output)
        self.assertEqual(read["worker:0"], [f"train-{i:05d}-of-00008.tfrecord" for i in (0, 2, 4, 6)])
        self.assertEqual(read["worker:1"], [f"train-{i:05d}-of-00008.tfrecord" for i in (1, 3, 5, 7)])
        # 30000 examples in batches of 128: 234 steps an epoch, 48 examples skipped.
        self.assertEqual(output.count("data: auto_shard file: 234 steps an epoch of 128 examples"), 2, output)
        self.assertEqual(by_file["final_step"], 2340)
        by_idx, _ = self.train("idx", REFERENCE, epochs=10)
        # Seeds 1-10 and 1234 (docs/data.md): from IDX 0.8692-0.8871 (mean
        # 0.8788), by file 0.8714-0.8897 (mean 0.8806); the largest difference
        # between two of those 22 runs is 0.0205, and seed 1234 (this job's)
        # gives 0.8692 and 0.8866.
        self.assertGreater(by_file["test_accuracy"], 0.865)
        self.assertLess(abs(by_file["test_accuracy"] - by_idx["test_accuracy"]), 0.025)

    def test_file_sharding_resumes_where_its_checkpoint_stands(self):
        shards = os.path.join(self.tmp, "shards")
        self.assertEqual(self.convert(shards, "--shards", "8").returncode, 0)
        config = self.config(shards)  # auto: by file, 8 files for 2 workers
        self.train("resumed", config, epochs=1)
        resumed, output = self.train("resumed", config, epochs=2)
        self.assertIn("input resumes at epoch 2 step 0", output)
        straight, _ = self.train("straight", config, epochs=2)
        self.assertEqual(resumed["final_step"], 468)
        self.assertEqual(resumed["param_checksums"], straight["param_checksums"])

    def test_a_corrupt_shard_names_the_file_and_record(self):
        shards = os.path.join(self.tmp, "shards")
        self.assertEqual(self.convert(shards, "--shards", "2").returncode, 0)
        victim = os.path.join(shards, "train-00001-of-00002.tfrecord")
        with open(victim, "r+b") as f:
            f.seek(5000)
            byte = f.read(1)
            f.seek(5000)
            f.write(bytes([byte[0] ^ 0x40]))
        task = self.start(["train", "--config", self.config(shards), "--epochs", "1"], name="corrupt")
        self.assert_exit(task, 1, timeout=120)
        self.assertRegex(task.output(), r"train-00001-of-00002\.tfrecord: record 5 \(at byte 4190\): the data's CRC "
                                        r"does not match")
        bad = self.convert(os.path.join(self.tmp, "x"), "--shards", "0")
        self.assertEqual(bad.returncode, 1)
        self.assertIn("--shards 0", bad.stderr)


@requires_fashion_mnist
@requires(have_numpy_python(), "Debian's python3-numpy writes the .npy files")
class NpyTest(ClusterTestCase):

    def test_arrays_saved_by_numpy_train_to_the_parameters_of_the_idx_files(self):
        # np.save of the IDX arrays, as a Keras user has x_train.npy and friends.
        script = f"""
import gzip, numpy as np, os
d, out = {FASHION_MNIST_DIR!r}, {self.tmp!r}
def idx(name, skip):
    with gzip.open(os.path.join(d, name + ".gz")) as f:
        return np.frombuffer(f.read()[skip:], dtype=np.uint8)
np.save(os.path.join(out, "x_train.npy"), idx("train-images-idx3-ubyte", 16).reshape(-1, 28, 28))
np.save(os.path.join(out, "y_train.npy"), idx("train-labels-idx1-ubyte", 8).astype(np.int64))
np.save(os.path.join(out, "x_test.npy"), idx("t10k-images-idx3-ubyte", 16).reshape(-1, 28, 28))
np.save(os.path.join(out, "y_test.npy"), idx("t10k-labels-idx1-ubyte", 8).astype(np.int64))
# keras' mnist.npz layout: the train split stored (np.savez, read in place),
# the test split deflated (np.savez_compressed, inflated).
np.savez(os.path.join(out, "train.npz"), x_train=np.load(os.path.join(out, "x_train.npy")),
         y_train=np.load(os.path.join(out, "y_train.npy")))
np.savez_compressed(os.path.join(out, "test.npz"), x_test=np.load(os.path.join(out, "x_test.npy")),
                    y_test=np.load(os.path.join(out, "y_test.npy")))
"""
        subprocess.run([NUMPY_PYTHON, "-c", script], check=True, timeout=120)
        with open(REFERENCE) as f:
            job = json.load(f)

        def config(name, data):
            job["data"] = {"divisor": 255, "num_classes": 10, "shuffle": True, **data}
            path = os.path.join(self.tmp, f"{name}.json")
            with open(path, "w") as f:
                json.dump(job, f)
            return path

        npy = config("npy", {"dataset": "npy", **{
            f"{split}_{part}": os.path.join(self.tmp, f"{'x' if part == 'inputs' else 'y'}_{split}.npy")
            for split in ("train", "test") for part in ("inputs", "labels")}})
        members = {f"{split}_{part}": os.path.join(self.tmp, f"{split}.npz:{'x' if part == 'inputs' else 'y'}_{split}")
                   for split in ("train", "test") for part in ("inputs", "labels")}
        npz = config("npz", {"dataset": "npy", **members})
        # The .npz members converted to TFRecord shards train to the same
        # parameters under auto_shard data (the one global order).
        shards = os.path.join(self.tmp, "shards")
        made = subprocess.run([BIN, "data", "convert", "--from", "npy", "--to", "tfrecord", "--out", shards,
                               "--shards", "4", "--num-classes", "10"] +
                              [a for key, value in members.items() for a in ("--" + key.replace("_", "-"), value)],
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(made.returncode, 0, made.stderr)
        self.assertIn("train: 60000 examples into 4 shards, input as bytes", made.stdout)
        tfrecord = config("tfrecord", {"dataset": "tfrecord", "train_files": os.path.join(shards, "train-*"),
                                       "test_files": os.path.join(shards, "test-*"), "auto_shard": "data"})
        runs = {}
        for name, cfg in (("npy", npy), ("idx", REFERENCE), ("npz", npz), ("tfrecord", tfrecord)):
            model_dir = os.path.join(self.tmp, name)
            task = self.start(["launch", "--workers", "2", "--strategy", "multi_worker_mirrored", "--config", cfg,
                               "--epochs", "1", "--model-dir", model_dir], name=name)
            self.assert_exit(task, 0, timeout=240)
            runs[name] = self.summary(model_dir)
        for name in ("npy", "npz", "tfrecord"):
            self.assertEqual(runs[name]["param_checksums"], runs["idx"]["param_checksums"], name)
        self.assertEqual(runs["npz"]["test_accuracy"], runs["idx"]["test_accuracy"])
        bad = self.start(["train", "--config", config("bad", {"dataset": "npy", **members,
                                                              "train_inputs": os.path.join(self.tmp, "train.npz")})],
                         name="npz-whole")
        self.assert_exit(bad, 1, timeout=60)
        self.assertIn("train.npz: it is a zip archive (.npz) of x_train.npy, y_train.npy; name an array inside as",
                      bad.output())
        missing = self.start(["train", "--config", config("bad", {"dataset": "npy", **members, "train_inputs":
                                                                  os.path.join(self.tmp, "train.npz:x")})],
                             name="npz-missing")
        self.assert_exit(missing, 1, timeout=60)
        self.assertIn("train.npz: no array 'x' (members: x_train.npy, y_train.npy)", missing.output())


class CsvTest(ClusterTestCase):

    def test_two_workers_learn_from_csv_files(self):
        # Two gaussian blobs a user might have in a spreadsheet export.
        import random
        rng = random.Random(7)
        for split, rows in (("train", 2048), ("test", 512)):
            with open(os.path.join(self.tmp, f"{split}.csv"), "w") as f:
                f.write("a,b,label,c\n")
                for _ in range(rows):
                    label = rng.randrange(2)
                    centre = 2.0 if label else -2.0
                    f.write(f"{rng.gauss(centre, 1):.4f},{rng.gauss(-centre, 1):.4f},{label},"
                            f"{rng.gauss(0, 1):.4f}\n")
        job = {"name": "csv", "data": {"dataset": "csv", "train_files": os.path.join(self.tmp, "train.csv"),
                                       "test_files": os.path.join(self.tmp, "test.csv"), "num_classes": 2},
               "model": {"type": "mlp", "hidden_units": [16]},
               "optimizer": {"type": "sgd", "learning_rate": 0.1},
               "training": {"global_batch_size": 64, "epochs": 3}}
        config = os.path.join(self.tmp, "csv.json")
        with open(config, "w") as f:
            json.dump(job, f)
        model_dir = os.path.join(self.tmp, "run")
        task = self.start(["launch", "--workers", "2", "--strategy", "multi_worker_mirrored", "--config", config,
                           "--model-dir", model_dir], name="csv")
        self.assert_exit(task, 0, timeout=120)
        summary = self.summary(model_dir)
        self.assertGreater(summary["test_accuracy"], 0.95)  # the blobs are 4 sigma apart
        # Converted to 3 TFRecord shards (a float list: the values are not
        # bytes), the same job under auto_shard data ends with the very parameters.
        shards = os.path.join(self.tmp, "shards")
        made = subprocess.run([BIN, "data", "convert", "--from", "csv", "--train-files", job["data"]["train_files"],
                               "--test-files", job["data"]["test_files"], "--out", shards, "--shards", "3"],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(made.returncode, 0, made.stderr)
        self.assertIn("train: 2048 examples into 3 shards, input as float list", made.stdout)
        job["data"] = {"dataset": "tfrecord", "train_files": os.path.join(shards, "train-*"),
                       "test_files": os.path.join(shards, "test-*"), "num_classes": 2, "auto_shard": "data"}
        converted = os.path.join(self.tmp, "tfrecord.json")
        with open(converted, "w") as f:
            json.dump(job, f)
        task = self.start(["launch", "--workers", "2", "--strategy", "multi_worker_mirrored", "--config", converted,
                           "--model-dir", os.path.join(self.tmp, "tfrecord")], name="tfrecord")
        self.assert_exit(task, 0, timeout=120)
        from_tfrecord = self.summary(os.path.join(self.tmp, "tfrecord"))
        self.assertEqual(from_tfrecord["param_checksums"], summary["param_checksums"])
        with open(os.path.join(self.tmp, "train.csv"), "a") as f:
            f.write("1.0,2.0,1\n")
        bad = self.start(["train", "--config", config], name="bad")
        self.assert_exit(bad, 1, timeout=60)
        self.assertIn("train.csv: line 2050: 3 fields, the header names 4", bad.output())


if __name__ == "__main__":
    unittest.main()


def write_repeated_idx(out_dir, copies):
    """Fashion-MNIST's train split repeated `copies` times as plain IDX files in
    `out_dir` (the test split as it is): a set as large as we like."""
    os.makedirs(out_dir, exist_ok=True)
    for name, header_bytes in (("train-images-idx3-ubyte", 16), ("train-labels-idx1-ubyte", 8)):
        with gzip.open(os.path.join(FASHION_MNIST_DIR, name + ".gz")) as f:
            data = f.read()
        header = bytearray(data[:header_bytes])
        header[4:8] = (int.from_bytes(data[4:8], "big") * copies).to_bytes(4, "big")
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(header)
            for _ in range(copies):
                f.write(memoryview(data)[header_bytes:])
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        os.symlink(os.path.join(FASHION_MNIST_DIR, name), os.path.join(out_dir, name))


MEMORY_CGROUP, MEMORY_CGROUP_REASON = memory_limit.available()


@requires_fashion_mnist
@requires(MEMORY_CGROUP, MEMORY_CGROUP_REASON)
class LargerThanMemoryTest(ClusterTestCase):
    """480,000 examples (376 MB of pixels) under a 256 MiB limit: loaded into
    memory the task is killed; from data.cache_dir it trains, twice (building
    the cache, then from it), to the parameters of an unlimited run from memory."""

    LIMIT_BYTES = 256 << 20
    STEPS = "150"

    def config(self, shards, cache_dir):
        with open(REFERENCE) as f:
            job = json.load(f)
        job["data"] = {"dataset": "tfrecord", "train_files": os.path.join(shards, "train-*"),
                       "test_files": os.path.join(shards, "test-*"), "divisor": 255, "num_classes": 10,
                       "auto_shard": "data"}
        if cache_dir:
            job["data"]["cache_dir"] = cache_dir
        path = os.path.join(self.tmp, "cached.json" if cache_dir else "memory.json")
        with open(path, "w") as f:
            json.dump(job, f)
        return path

    def train(self, config, name, limit=None):
        model_dir = os.path.join(self.tmp, name)
        run = subprocess.run([BIN, "train", "--config", config, "--max-steps", self.STEPS, "--epochs", "1",
                              "--model-dir", model_dir],
                             capture_output=True, text=True, timeout=180,
                             preexec_fn=limit.enter if limit else None)
        return run, model_dir

    def test_a_set_larger_than_the_memory_limit_trains_from_the_cache(self):
        idx_dir = os.path.join(self.tmp, "idx")
        write_repeated_idx(idx_dir, 8)
        shards = os.path.join(self.tmp, "shards")
        made = subprocess.run([BIN, "data", "convert", "--from", "idx", "--dir", idx_dir, "--out", shards,
                               "--shards", "8"], capture_output=True, text=True, timeout=120)
        self.assertEqual(made.returncode, 0, made.stderr)
        self.assertIn("train: 480000 examples into 8 shards", made.stdout)
        os.remove(os.path.join(idx_dir, "train-images-idx3-ubyte"))  # 376 MB less on disk
        cache = os.path.join(self.tmp, "cache")
        with memory_limit.MemoryLimit(self.LIMIT_BYTES) as limit:
            in_memory, _ = self.train(self.config(shards, None), "memory-limited", limit)
            self.assertEqual(in_memory.returncode, -9, "the set should not fit the limit:\n" + in_memory.stderr)
            built, built_dir = self.train(self.config(shards, cache), "built", limit)
            self.assertEqual(built.returncode, 0, built.stderr)
            self.assertIn("480000 records of 8 file(s) decoded into the cache", built.stderr)
            reused, reused_dir = self.train(self.config(shards, cache), "reused", limit)
            self.assertEqual(reused.returncode, 0, reused.stderr)
            self.assertIn("data: tfrecord/train trains from its cache", reused.stderr)
        unlimited, unlimited_dir = self.train(self.config(shards, None), "unlimited")
        self.assertEqual(unlimited.returncode, 0, unlimited.stderr)
        expected = self.summary(unlimited_dir)["param_checksums"]
        self.assertEqual(self.summary(built_dir)["param_checksums"], expected)
        self.assertEqual(self.summary(reused_dir)["param_checksums"], expected)


@requires_fashion_mnist
class AugmentTest(ClusterTestCase):
    """Random flips and crops of the training images (data.augment) draw per
    example of the global batch: two replicas in one process and two workers
    train to the same parameters, which differ from a run without it."""

    def config(self, augment):
        with open(REFERENCE) as f:
            job = json.load(f)
        if augment:
            job["data"]["augment"] = {"image_shape": [28, 28, 1], "flip_left_right": True, "crop_padding": 2}
        path = os.path.join(self.tmp, "augment.json" if augment else "plain.json")
        with open(path, "w") as f:
            json.dump(job, f)
        return path

    def run_job(self, name, config, *launch):
        model_dir = os.path.join(self.tmp, name)
        task = self.start(list(launch) + ["--config", config, "--max-steps", "120", "--epochs", "1",
                                          "--model-dir", model_dir], name=name)
        self.assert_exit(task, 0, timeout=180)
        return self.summary(model_dir)

    def test_augmented_batches_are_the_same_for_two_replicas_and_two_workers(self):
        augmented = self.config(True)
        one = self.run_job("one", augmented, "train", "--strategy", "mirrored", "--devices", "2")
        two = self.run_job("two", augmented, "launch", "--workers", "2", "--strategy", "multi_worker_mirrored")
        plain = self.run_job("plain", self.config(False), "train", "--strategy", "mirrored", "--devices", "2")
        self.assertEqual(set(two["param_checksums"].values()), {one["param_checksums"]["worker:0"]})
        self.assertNotEqual(one["param_checksums"], plain["param_checksums"])
        bad = subprocess.run([BIN, "train", "--config", self.write_bad_shape(), "--max-steps", "1"],
                             capture_output=True, text=True, timeout=60)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("data.augment.image_shape [28, 28, 3] holds 2352 values but each input has 784",
                      bad.stderr)

    def write_bad_shape(self):
        with open(REFERENCE) as f:
            job = json.load(f)
        job["data"]["augment"] = {"image_shape": [28, 28, 3], "flip_left_right": True}
        path = os.path.join(self.tmp, "bad.json")
        with open(path, "w") as f:
            json.dump(job, f)
        return path

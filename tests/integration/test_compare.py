"""meshtrain compare over the five strategies on the reference job (two
epochs): report.json has a complete row per strategy, the table and progress
are printed, and report.html renders in a real browser (headless Chromium):
every chart is there with its data drawn, and a screenshot is saved in the
build directory (compare-report.png).

Until parameter_server exists its row is an error row; the other four must
be complete either way."""
import html.parser
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import (BIN, CONFIGS, REFERENCE, Task, requires, requires_fashion_mnist)

STRATEGIES = ["one_device", "mirrored", "central_storage", "multi_worker_mirrored", "parameter_server"]
EPOCHS = 2
# The reference MLP's gradient: (784*300 + 300) + (300*100 + 100) + (100*10 + 10) floats.
GRADIENT_BYTES = 266610 * 4
CHARTS = ["chart-accuracy", "chart-throughput", "chart-time-split", "chart-bytes", "chart-memory"]
BUILD_DIR = os.environ.get("MESHTRAIN_BUILD_DIR") or os.path.dirname(os.path.dirname(os.path.abspath(BIN)))


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_args(profile):
    return [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}"]


class ChartParser(html.parser.HTMLParser):
    """The charts of a DOM: attributes of each svg.chart and its data marks."""

    def __init__(self):
        super().__init__()
        self.charts = {}
        self.current = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg" and "chart" in (a.get("class") or "").split():
            self.current = {"attrs": a, "marks": []}
            self.charts[a.get("id")] = self.current
            return
        if self.current is None:
            return
        klass = (a.get("class") or "").split()
        if {"series", "point", "bar"} & set(klass):
            self.current["marks"].append((tag, klass[0], a))

    def handle_endtag(self, tag):
        if tag == "svg":  # charts hold no nested svg
            self.current = None


@requires_fashion_mnist
class CompareTest(unittest.TestCase):
    """One compare run shared by the tests (it takes about half a minute)."""

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="meshtrain-compare-")
        cls.out = os.path.join(cls._tmp.name, "report")
        cls.task = Task(["compare", "--config", REFERENCE, "--epochs", str(EPOCHS),
                         "--strategies", ",".join(STRATEGIES), "--workers", "2", "--ps", "1",
                         "--out", cls.out], name="compare")
        cls.code = cls.task.wait(timeout=300)
        cls.stdout = cls.task.output()
        with open(os.path.join(cls.out, "report.json")) as f:
            cls.report = json.load(f)
        cls.rows = {r["strategy"]: r for r in cls.report["strategies"]}
        cls.ps_landed = cls.rows.get("parameter_server", {}).get("status") == "ok"
        cls.complete = STRATEGIES if cls.ps_landed else STRATEGIES[:4]

    @classmethod
    def tearDownClass(cls):
        cls.task.kill()
        cls._tmp.cleanup()

    def test_every_strategy_has_a_complete_row(self):
        self.assertEqual([r["strategy"] for r in self.report["strategies"]], STRATEGIES, self.stdout)
        self.assertEqual(self.report["job"]["name"], "fashion_mnist_mlp")
        self.assertEqual(self.report["job"]["target_accuracy"], 0.87)
        self.assertGreaterEqual(self.report["machine"]["cores"], 1)
        for name in self.complete:
            with self.subTest(strategy=name):
                row = self.rows[name]
                self.assertEqual(row["status"], "ok", row.get("error"))
                s = row["summary"]
                self.assertGreater(s["samples_per_sec"], 0)
                self.assertGreater(s["wall_seconds"], 0)
                self.assertTrue(0.7 < s["final_test_accuracy"] <= 1, s["final_test_accuracy"])
                f = s["time_fractions"]
                self.assertAlmostEqual(f["compute"] + f["communicate"] + f["wait"] + f["input"], 1.0,
                                       delta=0.05)
                self.assertGreater(f["compute"], 0)
                self.assertGreater(s["peak_rss_bytes"]["max"], 10 << 20)
                self.assertEqual(len(row["curves"]), EPOCHS)
                self.assertTrue(all(0 < c["test_accuracy"] <= 1 and c["elapsed_seconds"] > 0 for c in row["curves"]))
                self.assertEqual(s["steps"], 235 * EPOCHS)
                model_dir = os.path.join(self.out, row["model_dir"])
                self.assertTrue(os.path.exists(os.path.join(model_dir, "summary.json")))
                self.assertTrue(any(n.startswith("events.out.tfevents.") for n in os.listdir(model_dir)))
                self.assertTrue(os.path.exists(os.path.join(self.out, row["trace"])))
        # Same data, seed and global batch: every synchronous strategy reaches the
        # same accuracy within noise of float summation order.
        accuracies = [self.rows[n]["summary"]["final_test_accuracy"] for n in STRATEGIES[:4]]
        self.assertLess(max(accuracies) - min(accuracies), 0.01, accuracies)

    def test_bytes_on_the_wire_are_the_real_volume(self):
        # One process: gradients never leave it.
        for name in ["one_device", "mirrored", "central_storage"]:
            self.assertEqual(self.rows[name]["summary"]["bytes_per_step"], 0, name)
        # A two-worker ring sends and receives the whole gradient once per step.
        mwm = self.rows["multi_worker_mirrored"]["summary"]
        self.assertEqual(mwm["bytes_sent_per_step"], GRADIENT_BYTES)
        self.assertEqual(mwm["bytes_received_per_step"], GRADIENT_BYTES)
        self.assertEqual(set(mwm["peak_rss_bytes"]["per_task"]), {"worker:0", "worker:1"})

    def test_a_missing_strategy_is_an_error_row_and_the_rest_still_run(self):
        if self.ps_landed:
            self.assertEqual(self.code, 0, self.stdout)
            return
        self.assertEqual(self.code, 3, self.stdout)  # report written, a strategy failed
        row = self.rows["parameter_server"]
        self.assertEqual(row["status"], "failed")
        self.assertIn("parameter_server", row["error"])
        self.assertEqual(row["launch"]["processes"], 3)

    def test_table_and_progress_on_stdout(self):
        for i, name in enumerate(STRATEGIES, 1):
            self.assertIn(f"[{i}/{len(STRATEGIES)}] {name}", self.stdout)
        self.assertIn(f"epoch {EPOCHS}/{EPOCHS}", self.stdout)
        table = self.stdout[self.stdout.index("strategy "):]
        for name in STRATEGIES:
            self.assertRegex(table, rf"\n{name}\s")
        self.assertIn("report.html", self.stdout)

    @requires(chromium(), "chromium is not installed (scripts/install-deps.sh installs it)")
    def test_report_renders_in_chromium(self):
        page = "file://" + os.path.join(self.out, "report.html")
        with tempfile.TemporaryDirectory() as profile:
            dom = subprocess.run(chromium_args(profile) + ["--dump-dom", page], capture_output=True,
                                 text=True, timeout=120)
        self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
        parser = ChartParser()
        parser.feed(dom.stdout)
        self.assertEqual(sorted(parser.charts), sorted(CHARTS))
        for chart_id, chart in parser.charts.items():
            with self.subTest(chart=chart_id):
                attrs = chart["attrs"]
                # Set by the page's script once laid out: every data mark has a box.
                self.assertGreater(int(attrs["data-marks"]), 0)
                self.assertEqual(attrs["data-drawn"], attrs["data-marks"])
                names = {a.get("data-series") or a.get("data-row") for _, _, a in chart["marks"]}
                for name in self.complete:
                    self.assertIn(name, names)
        accuracy = parser.charts["chart-accuracy"]["marks"]
        for name in self.complete:
            points = [a for tag, k, a in accuracy if k == "point" and a["data-series"] == name]
            self.assertEqual(len(points), EPOCHS, name)
            self.assertTrue(all(0 < float(p["data-y"]) <= 1 for p in points))
        self.assertIn('id="figures"', dom.stdout)

        shot = os.path.join(BUILD_DIR, "compare-report.png")
        if os.path.exists(shot):
            os.remove(shot)
        with tempfile.TemporaryDirectory() as profile:
            result = subprocess.run(chromium_args(profile) + [f"--screenshot={shot}", "--window-size=1280,2000",
                                                              "--hide-scrollbars", page],
                                    capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        with open(shot, "rb") as f:
            png = f.read()
        self.assertTrue(png.startswith(b"\x89PNG\r\n\x1a\n"))
        self.assertGreater(len(png), 50_000)  # a page of charts, not a blank one



@requires_fashion_mnist
class CompareCnnTest(unittest.TestCase):
    """The reference CNN (a layer list: convolutions, pooling) under compare:
    the same config runs under every strategy, 40 steps of 256 each. The
    synchronous strategies train the same batches: test accuracy 0.62-0.63
    (2026-12-06), chance being 0.1. parameter_server's 40 asynchronous steps
    from a cold start scatter (0.22 and 0.69 measured), so its row is checked
    for completion, not accuracy (ReferenceCnnTest checks it on 120 steps)."""

    def test_every_strategy_trains_the_cnn(self):
        with tempfile.TemporaryDirectory(prefix="meshtrain-compare-cnn-") as tmp:
            out = os.path.join(tmp, "report")
            task = Task(["compare", "--config", os.path.join(CONFIGS, "fashion_mnist_cnn.json"),
                         "--epochs", "1", "--max-steps", "40", "--strategies", ",".join(STRATEGIES),
                         "--out", out], name="compare-cnn")
            try:
                code = task.wait(timeout=300)
            finally:
                task.kill()
            self.assertEqual(code, 0, task.output()[-3000:])
            with open(os.path.join(out, "report.json")) as f:
                report = json.load(f)
        self.assertEqual(report["job"]["name"], "fashion-mnist-cnn")
        self.assertEqual([r["strategy"] for r in report["strategies"]], STRATEGIES)
        for row in report["strategies"]:
            with self.subTest(strategy=row["strategy"]):
                self.assertEqual(row["status"], "ok", row.get("error"))
                self.assertEqual(row["summary"]["steps"], 40)
                if row["strategy"] != "parameter_server":
                    self.assertGreater(row["summary"]["final_test_accuracy"], 0.4)


class CompareFlagsTest(unittest.TestCase):
    """Bad invocations fail at once, saying what to do, before anything runs."""

    def run_compare(self, *args):
        with tempfile.TemporaryDirectory() as out:
            task = Task(["compare", "--config", REFERENCE, "--out", out] + list(args), name="compare")
            return task.wait(timeout=60), task.output()

    def test_flags_compare_sets_itself_are_refused(self):
        code, output = self.run_compare("--model-dir", "/tmp/x")
        self.assertEqual(code, 2, output)
        self.assertIn("--model-dir is set by compare", output)

    def test_unknown_strategy_is_named(self):
        code, output = self.run_compare("--strategies", "one_device,mirored")
        self.assertEqual(code, 2, output)
        self.assertIn("'mirored' is unknown", output)


if __name__ == "__main__":
    unittest.main()

"""The cost model's arithmetic (scripts/cost_model.py): buckets, the ring's
messages and bytes, the fits, and each strategy's step against hand-computed
figures. Pure: no processes, no namespaces."""
import math
import os
import sys
import unittest

SOURCE_DIR = os.environ.get("MESHTRAIN_SOURCE_DIR",
                            os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
sys.path.insert(0, os.path.join(SOURCE_DIR, "scripts"))
import cost_model as cm  # noqa: E402

ALPHA, BETA = 20e-6, 1e-8  # 20 us a message, 100 MB/s
LINK = cm.Link(ALPHA, BETA)
LOCAL = cm.Link(1e-6, 1e-10)
COMPUTE = cm.Compute(100e-6, 10e-6)


def counting_link(log):
    """A Link that records (messages, bytes) of every call."""
    class Counting(cm.Link):
        def time(self, messages, nbytes):
            log.append((messages, nbytes))
            return super().time(messages, nbytes)
    return Counting(ALPHA, BETA)


class BucketsTest(unittest.TestCase):
    def test_reference_job(self):
        job = cm.REFERENCE_JOB
        self.assertEqual(job.elems * 4, 1066440)  # summary.json's bytes_sent_per_step on 2 workers
        # Reverse declaration order; a bucket closes past 64 KiB: the last two
        # layers and the first bias + kernel.
        self.assertEqual(cm.buckets(job), [10 + 1000 + 100 + 30000, 300 + 235200])

    def test_pack_sizes(self):
        vars_ = (5, 7, 20000, 3)
        self.assertEqual(cm.buckets(cm.Job(vars_, 1, bytes_per_pack=0)), [20015])
        self.assertEqual(cm.buckets(cm.Job(vars_, 1, bytes_per_pack=1)), [3, 20000, 7, 5])
        self.assertEqual(cm.buckets(cm.Job(vars_, 1, bytes_per_pack=40)), [20003, 12])


class RingTest(unittest.TestCase):
    def test_messages_and_bytes(self):
        for n in (1, 2, 3, 8):
            log = []
            t = cm.ring_allreduce_s(1000, n, counting_link(log))
            self.assertEqual(log, [(2 * (n - 1), 2 * (n - 1) * math.ceil(1000 / n))] if n > 1 else [])
            self.assertAlmostEqual(t, 2 * (n - 1) * (ALPHA + math.ceil(1000 / n) * BETA))
        # Each worker sends 2(n-1)/n of the data: 1000 bytes on 2, 1750 on 8.
        self.assertAlmostEqual(cm.ring_allreduce_s(1000, 2, cm.Link(0, 1)), 1000)
        self.assertAlmostEqual(cm.ring_allreduce_s(8000, 8, cm.Link(0, 1)), 14000)

    def test_fit_link_recovers_alpha_beta(self):
        for n in (2, 3, 8):
            rows = [(s, 2 * (n - 1) * ALPHA + 2 * (n - 1) / n * s * BETA) for s in (4096, 1 << 20, 1 << 24)]
            alpha, beta = cm.fit_link(rows, n)
            self.assertAlmostEqual(alpha / ALPHA, 1.0, places=6)
            self.assertAlmostEqual(beta / BETA, 1.0, places=6)

    def test_fit_link_never_negative_latency(self):
        alpha, _ = cm.fit_link([(4096, 1e-6), (1 << 20, 0.01), (1 << 22, 0.04)])
        self.assertEqual(alpha, 0.0)

    def test_fit_compute(self):
        c = cm.fit_compute([(b, 1e-4 + b * 1e-5) for b in (32, 64, 128, 256)])
        self.assertAlmostEqual(c.fixed_s, 1e-4)
        self.assertAlmostEqual(c.per_sample_s, 1e-5)


class StrategiesTest(unittest.TestCase):
    def cluster(self, **kw):
        return cm.Cluster(link=kw.pop("link", LINK), local=LOCAL, compute=COMPUTE, **kw)

    def test_mwms_two_workers_by_hand(self):
        job = cm.REFERENCE_JOB
        p = cm.mwms(job, self.cluster(), 2)
        compute = 100e-6 + 128 * 10e-6
        comm = sum(2 * (ALPHA + math.ceil(e * 4 / 2) * BETA) for e in cm.buckets(job))
        self.assertAlmostEqual(p.compute_s, compute)
        self.assertAlmostEqual(p.communicate_s, comm)
        self.assertAlmostEqual(p.samples_per_s, 256 / (compute + comm))
        self.assertEqual(p.bound, "network")

    def test_bfloat16_halves_the_bytes_not_the_messages(self):
        job = cm.REFERENCE_JOB
        for n in (2, 3, 8):
            f32 = cm.mwms(job, self.cluster(), n, wire="float32").communicate_s
            bf16 = cm.mwms(job, self.cluster(), n, wire="bfloat16").communicate_s
            latency = len(cm.buckets(job)) * 2 * (n - 1) * ALPHA
            self.assertAlmostEqual((bf16 - latency) / (f32 - latency), 0.5, places=4)

    def test_hidden_and_contention(self):
        job = cm.REFERENCE_JOB
        self.assertAlmostEqual(cm.mwms(job, self.cluster(hidden=1.0), 4).samples_per_s,
                               256 / COMPUTE.step(64))
        self.assertAlmostEqual(cm.mwms(job, self.cluster(cores=2), 8).compute_s, COMPUTE.step(32) * 4)
        self.assertAlmostEqual(cm.mwms(job, self.cluster(cores=2), 2).compute_s, COMPUTE.step(128))

    def test_tbf_burst_saves_what_the_bucket_refilled(self):
        job = cm.REFERENCE_JOB
        plain = cm.mwms(job, self.cluster(), 2)
        big = cm.mwms(job, self.cluster(link=cm.Link(ALPHA, BETA, 10 ** 9)), 2)
        small = cm.mwms(job, self.cluster(link=cm.Link(ALPHA, BETA, 1000)), 2)
        # The bucket refills at the rate while compute runs, up to its size.
        self.assertAlmostEqual(plain.communicate_s - big.communicate_s, plain.compute_s)
        self.assertAlmostEqual(plain.communicate_s - small.communicate_s, 1000 * BETA)

    def test_hierarchy(self):
        job = cm.REFERENCE_JOB
        flat = cm.mwms(job, self.cluster(), 4, per_host=2)
        hier = cm.mwms(job, self.cluster(), 4, per_host=2, hierarchical=True)
        # Leaders' ring over 2 hosts plus the local stages, against a ring over 4.
        local = sum(cm.ring_allreduce_s(e * 4, 2, LOCAL) + LOCAL.time(1, e * 4) for e in cm.buckets(job))
        leaders = sum(cm.ring_allreduce_s(e * 4, 2, LINK) for e in cm.buckets(job))
        self.assertAlmostEqual(hier.communicate_s, local + leaders)
        self.assertGreater(hier.samples_per_s, flat.samples_per_s)
        # One worker per host: the hierarchy is the flat ring.
        self.assertAlmostEqual(cm.mwms(job, self.cluster(), 4, 1, hierarchical=True).samples_per_s,
                               cm.mwms(job, self.cluster(), 4, 1).samples_per_s)

    def test_parameter_server(self):
        job = cm.REFERENCE_JOB
        s = job.elems * 4
        one = cm.parameter_server(job, self.cluster(), 4, [s])
        self.assertEqual(one.bound, "ps link")
        self.assertAlmostEqual(one.samples_per_s, 256 / (4 * (2 * ALPHA + s * BETA)))
        two = cm.parameter_server(job, self.cluster(), 4, [s / 2, s / 2])
        self.assertEqual(two.bound, "worker link")
        worker = COMPUTE.step(64) + 4 * ALPHA + 2 * s * BETA
        self.assertAlmostEqual(two.samples_per_s, 256 / worker)
        bf16 = cm.parameter_server(job, self.cluster(), 4, [s], "bfloat16")
        self.assertAlmostEqual(bf16.samples_per_s, 256 / (4 * (2 * ALPHA + s / 2 * BETA)))
        cores = cm.parameter_server(job, self.cluster(link=cm.Link(0, 1e-15), cores=1), 4, [s])
        self.assertEqual(cores.bound, "cores")
        self.assertAlmostEqual(cores.samples_per_s, 256 / (4 * COMPUTE.step(64)))

    def test_relative_error(self):
        self.assertAlmostEqual(cm.relative_error(120, 100), 0.2)
        self.assertAlmostEqual(cm.relative_error(80, 100), -0.2)


if __name__ == "__main__":
    unittest.main()

"""meshtrain's cost model: samples/s of a data-parallel job from an alpha-beta
model of its links and a linear model of its compute. Pure arithmetic, standard
library only; scripts/bench_cost_model.py measures the inputs and checks the
predictions against runs on emulated hosts (docs/benchmarks.md, "Cost model").

A link moves m messages of b bytes in m * alpha + b * beta seconds (alpha: the
per-message latency, software included; beta: seconds per byte, 1 / bandwidth).
A replica computes a step of b samples in fixed + b * per_sample seconds
(forward, backward and the optimizer's apply, one thread).

multi_worker_mirrored, synchronous (strategies/mirrored.h), per step:
  - the gradient is cut into buckets as GradientBuckets cuts it (variables in
    reverse declaration order; a bucket closes once it holds more than
    bytes_per_pack bytes); each bucket is one AllReduce;
  - flat ring over n workers: 2(n-1) messages of S/n bytes per bucket of S
    wire bytes, one after another, each hop as slow as the slowest link of the
    ring (a link between hosts wherever the ring crosses one);
  - hierarchical, k workers on each of h hosts: an AllReduce over the host's
    shared memory (float32), a ring between the h leaders (wire dtype), a
    broadcast over shared memory (one message of S float32 bytes);
  - step = compute x contention + (1 - hidden) x communication, where
    contention = max(1, tasks / cores) when tasks share `cores` cores (the
    emulated hosts: every host on this machine's cores), and hidden is the
    fraction of communication overlapped with backward (0 for --overlap
    inline, the default with one thread per worker: a bucket is summed
    before backward goes on).
parameter_server, asynchronous: each worker pulls every variable and pushes
every gradient each step (two request/reply exchanges per ps), so a worker's
step is its compute plus its own link moving S in and S out one after the
other; ps p's link carries W x bytes_p and 2W messages each way per round of
worker steps; and all tasks share the cores. The slowest of the three bounds
the round.

On an emulated link (tc tbf) each step also passes up to `burst_bytes` at once:
the token bucket refills while the link idles during compute. A real link has
no such bucket: burst_bytes = 0.
"""
import math
from dataclasses import dataclass, field

WIRE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Link:
    alpha_s: float       # seconds per message
    beta_s: float        # seconds per byte
    burst_bytes: float = 0.0  # bytes a tbf bucket passes at once after idling (emulation only)

    def time(self, messages, nbytes):
        return messages * self.alpha_s + nbytes * self.beta_s

    @property
    def bytes_per_s(self):
        return 1.0 / self.beta_s


@dataclass(frozen=True)
class Compute:
    fixed_s: float       # per step: optimizer apply, layer calls
    per_sample_s: float

    def step(self, samples):
        return self.fixed_s + samples * self.per_sample_s


@dataclass(frozen=True)
class Job:
    """A dense model as its variables' element counts, in declaration order."""
    variable_elems: tuple
    global_batch: int
    bytes_per_pack: int = 64 << 10   # strategies/strategy_config.h kDefaultBytesPerPack

    @property
    def elems(self):
        return sum(self.variable_elems)


def mlp(layers, global_batch=256):
    """Dense layers as kernel, bias pairs: mlp([784, 300, 100, 10])."""
    sizes = []
    for a, b in zip(layers, layers[1:]):
        sizes += [a * b, b]
    return Job(tuple(sizes), global_batch)


REFERENCE_JOB = mlp([784, 300, 100, 10])  # configs/fashion_mnist_mlp.json


def buckets(job):
    """Element counts of the gradient buckets, in the order backward fills them."""
    out, current = [], 0
    for elems in reversed(job.variable_elems):
        current += elems
        if current * 4 > job.bytes_per_pack > 0:
            out.append(current)
            current = 0
    if current:
        out.append(current)
    return out


def ring_allreduce_s(nbytes, n, link):
    """One ring AllReduce of nbytes over n ranks: 2(n-1) hops of nbytes/n."""
    if n <= 1:
        return 0.0
    hops = 2 * (n - 1)
    return link.time(hops, hops * math.ceil(nbytes / n))


def fit_link(rows, n=2):
    """alpha, beta from ring AllReduce timings [(size_bytes, seconds)] over n
    ranks: weighted least squares of t = 2(n-1) alpha + 2(n-1)/n size beta, each
    row weighted by 1/t so that small and large sizes count alike."""
    xs = [(2 * (n - 1), 2 * (n - 1) / n * s, t) for s, t in rows]
    w = [1 / t ** 2 for _, _, t in xs]
    a11 = sum(wi * x1 * x1 for wi, (x1, _, _) in zip(w, xs))
    a12 = sum(wi * x1 * x2 for wi, (x1, x2, _) in zip(w, xs))
    a22 = sum(wi * x2 * x2 for wi, (_, x2, _) in zip(w, xs))
    b1 = sum(wi * x1 * t for wi, (x1, _, t) in zip(w, xs))
    b2 = sum(wi * x2 * t for wi, (_, x2, t) in zip(w, xs))
    det = a11 * a22 - a12 * a12
    alpha, beta = (b1 * a22 - b2 * a12) / det, (a11 * b2 - a12 * b1) / det
    return max(alpha, 0.0), beta


def fit_compute(rows):
    """fixed, per_sample from one-replica step times [(batch, seconds)], least squares."""
    n = len(rows)
    mb = sum(b for b, _ in rows) / n
    mt = sum(t for _, t in rows) / n
    sbb = sum((b - mb) ** 2 for b, _ in rows)
    per_sample = sum((b - mb) * (t - mt) for b, t in rows) / sbb
    return Compute(max(mt - per_sample * mb, 0.0), per_sample)


@dataclass(frozen=True)
class Cluster:
    """Where the tasks run: `link` between hosts, `local` between the workers of
    one host (shared memory), `cores` shared by every task (None: a core per task)."""
    link: Link
    local: Link
    compute: Compute
    cores: float = None
    hidden: float = 0.0   # fraction of the communication overlapped with compute

    def contention(self, tasks):
        return 1.0 if self.cores is None else max(1.0, tasks / self.cores)


@dataclass
class Prediction:
    samples_per_s: float
    compute_s: float
    communicate_s: float
    bound: str = ""
    parts: dict = field(default_factory=dict)


def _burst_saved_s(link, idle_s):
    """Seconds a tbf bucket refilled during idle_s saves the next transfer."""
    return min(link.burst_bytes, idle_s * link.bytes_per_s) * link.beta_s


def mwms(job, cluster, workers, per_host=1, wire="float32", hierarchical=False):
    """samples/s of multi_worker_mirrored: `workers` in all, `per_host` on each host."""
    hosts = workers // per_host
    b = job.global_batch / workers
    compute = cluster.compute.step(b) * cluster.contention(workers)
    wire_bytes = WIRE_BYTES[wire]
    comm = 0.0
    for elems in buckets(job):
        if hierarchical and per_host > 1:
            comm += (ring_allreduce_s(elems * 4, per_host, cluster.local)
                     + ring_allreduce_s(elems * wire_bytes, hosts, cluster.link)
                     + (cluster.local.time(1, elems * 4) if hosts > 1 else 0.0))
        else:
            # Every hop waits for the ring's slowest link: between hosts where
            # there are several hosts, shared memory where there is one.
            link = cluster.link if hosts > 1 else cluster.local
            comm += ring_allreduce_s(elems * wire_bytes, workers, link)
    if hosts > 1:
        comm = max(comm - _burst_saved_s(cluster.link, compute), 0.0)
    exposed = (1 - cluster.hidden) * comm
    step = compute + exposed
    return Prediction(job.global_batch / step, compute, exposed,
                      "network" if exposed > compute else "compute")


def parameter_server(job, cluster, workers, ps_bytes, wire="float32"):
    """samples/s of parameter_server: `workers` asynchronous workers, one task per
    host, ps p holding ps_bytes[p] bytes of float32 variables."""
    b = job.global_batch / workers
    scale = WIRE_BYTES[wire] / 4
    total = sum(ps_bytes) * scale
    c = cluster.compute.step(b)
    link = cluster.link
    # A worker: compute, pull S in, push S out, two exchanges with each ps in parallel.
    moved = max(2 * total * link.beta_s - _burst_saved_s(link, c), 0.0)
    worker = c + 4 * link.alpha_s + moved
    # The busiest ps link: W pulls out and W pushes in per round, each direction
    # apart, and 2 of the 4 messages of each worker's exchanges in each direction.
    ps_link = workers * (2 * link.alpha_s + max(ps_bytes) * scale * link.beta_s)
    cpu = c * cluster.contention(workers) if cluster.cores else 0.0
    bounds = {"worker link": worker, "ps link": ps_link, "cores": cpu}
    bound = max(bounds, key=bounds.get)
    rnd = bounds[bound]
    return Prediction(workers * b / rnd, c, rnd - c, bound, bounds)


def relative_error(predicted, measured):
    return (predicted - measured) / measured

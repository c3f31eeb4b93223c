#!/usr/bin/env python3
"""The cost model (scripts/cost_model.py), measured and checked on this machine.

  1. measure: the per-message latency (alpha) and per-byte cost (beta) of each
     link, fitted to `meshtrain bench allreduce` timings over 2 ranks
     (t = 2 alpha + size x beta): loopback shm, tcp and grpc
     (scripts/bench_allreduce.py), and tcp between 2 emulated hosts at each
     --rates rate (scripts/bench_hosts.py, beside iperf3's line rate); and the
     compute of one step of the reference job, one_device with one thread at
     global batch 32, 64, 128 and 256 (scripts/bench_train.py), fitted to
     fixed + batch x per_sample;
  2. validate: the reference job on emulated hosts, 1 epoch each, predicted
     beside measured samples/s and the relative error of every point:
     multi_worker_mirrored on --hosts hosts x 1 worker per --wire dtype, 2
     hosts x 2 workers flat ring and hierarchical, parameter_server with
     --ps-workers workers and each of --ps ps tasks (float32 and bfloat16);
     every emulated host shares this machine's --cores cores; with --calibrate
     point (the default) the compute and the point's link are measured again
     right after each point's run and predict that point, so that a load that
     comes and goes on this machine's cores is in the prediction as in the run
     (--calibrate repeat: the compute at each repeat's start, links from 1.);
  3. scale: the predicted samples/s for 8, 64 and 256 workers on real 10 and
     100 Gbit/s links, as a markdown table (docs/benchmarks.md, "Cost model",
     lists the assumptions).

  scripts/bench-cost-model.sh [--rates 1gbit] [--hosts 2,4,8] [--wire float32,bfloat16]
                              [--ps 1,2,4] [--ps-workers 4] [--repeat 1] [--epochs 1]
                              [--only measure,mwms,hier,ps,scale] [--calibrate point|repeat] [--json FILE]
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
from types import SimpleNamespace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import bench_allreduce  # noqa: E402
import bench_hosts  # noqa: E402
import bench_train  # noqa: E402
import cost_model as cm  # noqa: E402
from emulated_hosts import EmulatedHosts, available  # noqa: E402

LOOPBACK_SIZES = "4096,65536,262144,1048576,4194304"
HOST_SIZES = "4096,4194304,16777216"  # far above tbf's 128 KiB bucket, and 4 KiB for the latency
COMPUTE_BATCHES = (32, 64, 128, 256)


def tbf_burst_bytes(rate_bits):
    """scripts/emulate-hosts.sh's burst_for: 0.25 ms of traffic, at least 128 KiB."""
    return max(131072, rate_bits // 8 // 4000)


def rate_bits(rate):
    units = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
    for suffix, mult in units.items():
        if rate.endswith(suffix):
            return int(float(rate[:-len(suffix)]) * mult)
    raise ValueError(f"rate '{rate}': give e.g. 1gbit")


def measure_loopback(args, tmp):
    links = {}
    for layer in ("shm", "tcp", "grpc"):
        ns = SimpleNamespace(workers=2, sizes=LOOPBACK_SIZES, min_time=args.min_time)
        times = bench_allreduce.meshtrain(args.meshtrain, layer, ns, tmp, field="time_s")
        alpha, beta = cm.fit_link(sorted(times.items()))
        links[layer] = {"alpha_s": alpha, "beta_s": beta, "times": times}
    return links


def measure_compute(args, tmp):
    rows = []
    for batch in COMPUTE_BATCHES:
        sps, _, _ = bench_train.run_meshtrain(
            args.meshtrain, ["train", "--strategy", "one_device", "--threads", "1", "--global-batch-size",
                             str(batch)], "mlp", 1, tmp)
        rows.append((batch, batch / sps))
    c = cm.fit_compute(rows)
    return {"fixed_s": c.fixed_s, "per_sample_s": c.per_sample_s, "steps": rows}


def host_counts(args):
    return sorted(set(args.hosts) | {2})


def measure_host_links(args, rate, tmp):
    """{n: alpha, beta} of the tcp ring over n emulated hosts at rate, for each
    host count the validation uses: the per-message latency grows with the tasks
    that share this machine's cores."""
    with EmulatedHosts(max(host_counts(args)), rate=rate) as hosts:
        return measure_links_on(args, hosts, tmp)


def measure_links_on(args, hosts, tmp, counts=None):
    out = {}
    line = bench_hosts.line_rate(hosts)
    for n in counts or host_counts(args):
        times = bench_hosts.meshtrain_allreduce(args.meshtrain, hosts, n, HOST_SIZES, "tcp", tmp, field="time_s")
        alpha, beta = cm.fit_link(sorted((int(s), t) for s, t in times.items()), n)
        out[str(n)] = {"alpha_s": alpha, "beta_s": beta, "iperf3_mbps": line, "times": times}
    return out


def cluster_for(m, links, rate, hosts, cores, compute):
    """The emulated cluster at rate, its link as `links` holds it for `hosts` hosts."""
    link = links[str(hosts)]
    return cm.Cluster(link=cm.Link(link["alpha_s"], link["beta_s"], tbf_burst_bytes(rate_bits(rate))),
                      local=cm.Link(m["links"]["shm"]["alpha_s"], m["links"]["shm"]["beta_s"]),
                      compute=cm.Compute(compute["fixed_s"], compute["per_sample_s"]), cores=cores)


def validate(args, m, rate, tmp):
    """[(point, predicted, [measured samples/s per repeat])] on emulated hosts at rate."""
    only = set(args.only.split(","))
    job = cm.REFERENCE_JOB
    points = {}
    max_hosts = max(args.hosts + [args.ps_workers + p for p in args.ps] + [2])
    with EmulatedHosts(max_hosts, rate=rate) as hosts:
        for rep in range(args.repeat):
            load = os.getloadavg()[0]
            print(f"{rate}: validation repeat {rep + 1}/{args.repeat} (load average {load:.1f})", flush=True)
            m.setdefault("load_average", []).append(load)
            # The compute (and with --calibrate point, the link) measured again
            # right before the runs it predicts, so that the cores' other load
            # at the time is in the prediction as it is in the runs.
            compute = measure_compute(args, tmp)
            m.setdefault("compute_per_repeat", []).append(compute)

            def cluster(n):
                if args.calibrate != "point":
                    return cluster_for(m, m["host_links"][rate], rate, n, args.cores, compute)
                now = {"compute": measure_compute(args, tmp),
                       "links": measure_links_on(args, hosts, tmp, [n]), "load": os.getloadavg()[0]}
                m.setdefault("calibration_per_point", []).append(now)
                return cluster_for(m, now["links"], rate, n, args.cores, now["compute"])
            if "mwms" in only:
                for wire in args.wire:
                    for n in args.hosts:
                        s = bench_hosts.meshtrain_train(args.meshtrain, hosts, {"worker": n}, "multi_worker_mirrored",
                                                        args.epochs, tmp, ["--wire-dtype", wire])
                        p = cm.mwms(job, cluster(n), n, 1, wire)
                        points.setdefault(f"mwms {n} hosts x 1, {wire}", [p.samples_per_s, []])[1].append(
                            s["samples_per_sec"])
            if "hier" in only:
                for comm in ("ring", "hierarchical"):
                    s = bench_hosts.meshtrain_train_placed(args.meshtrain, [1, 1, 2, 2], hosts, args.epochs, tmp,
                                                           ["--communication", comm])
                    p = cm.mwms(job, cluster(2), 4, 2, "float32", hierarchical=comm == "hierarchical")
                    points.setdefault(f"mwms 2 hosts x 2, {comm}, float32", [p.samples_per_s, []])[1].append(
                        s["samples_per_sec"])
            if "ps" in only:
                for wire in args.wire:
                    for ps in args.ps:
                        s = bench_hosts.meshtrain_train(
                            args.meshtrain, hosts, {"worker": args.ps_workers, "ps": ps}, "parameter_server",
                            args.epochs, tmp, bench_hosts.PS_PLACEMENT + ["--wire-dtype", wire])
                        p = cm.parameter_server(job, cluster(2), args.ps_workers, s["ps_bytes"], wire)
                        points.setdefault(f"ps {args.ps_workers} workers + {ps} ps, {wire}",
                                          [p.samples_per_s, [], p.bound])[1].append(s["samples_per_sec"])
    return points


def scale_table(m, rates_gbit, workers, efficiency, wire_latency_s):
    """Markdown: predicted samples/s on real links (no tbf bucket, a core per
    worker). A link's alpha is loopback tcp's plus the wire's latency; its beta
    the wire's at `efficiency` of the nominal rate, or loopback tcp's where this
    CPU moves bytes through TCP more slowly than the wire does."""
    tcp = m["links"]["tcp"]
    local = cm.Link(m["links"]["shm"]["alpha_s"], m["links"]["shm"]["beta_s"])
    compute = cm.Compute(m["compute"]["fixed_s"], m["compute"]["per_sample_s"])
    lines = ["| link | workers | batch per worker | ring f32 | ring bf16 | hier. 8/host f32 | hier. 8/host bf16 | "
             "ps (N/4 ps) f32 | ps bf16 | compute alone |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for gbit in rates_gbit:
        link = cm.Link(tcp["alpha_s"] + wire_latency_s, max(8 / (gbit * 1e9 * efficiency), tcp["beta_s"]))
        cluster = cm.Cluster(link=link, local=local, compute=compute)
        for n in workers:
            for job in (cm.REFERENCE_JOB, cm.Job(cm.REFERENCE_JOB.variable_elems, 256 * n)):
                b = job.global_batch / n
                ps = max(1, n // 4)
                ps_bytes = [job.elems * 4 / ps] * ps
                cells = [cm.mwms(job, cluster, n, 1, "float32"), cm.mwms(job, cluster, n, 1, "bfloat16"),
                         cm.mwms(job, cluster, n, min(8, n), "float32", hierarchical=True),
                         cm.mwms(job, cluster, n, min(8, n), "bfloat16", hierarchical=True),
                         cm.parameter_server(job, cluster, n, ps_bytes, "float32"),
                         cm.parameter_server(job, cluster, n, ps_bytes, "bfloat16")]
                lines.append(f"| {gbit} Gbit/s | {n} | {b:g} | " +
                             " | ".join(f"{c.samples_per_s:,.0f}" for c in cells) +
                             f" | {job.global_batch / compute.step(b):,.0f} |")
    return "\n".join(lines)


def report(args, m, validation):
    print("\n== measured inputs ==")
    for layer, l in m["links"].items():
        print(f"loopback {layer:>4}: alpha {l['alpha_s'] * 1e6:7.1f} us, beta {1 / l['beta_s'] / 1e9:6.2f} GB/s")
    for rate, by_n in m["host_links"].items():
        for n, l in by_n.items():
            print(f"emulated {rate}, {n} hosts: alpha {l['alpha_s'] * 1e6:7.1f} us, beta {8 / l['beta_s'] / 1e6:6.0f} "
                  f"Mbit/s (iperf3 {l['iperf3_mbps']:.0f} Mbit/s, tbf burst {tbf_burst_bytes(rate_bits(rate))} B)")
    for c in m.get("calibration_per_point", []):
        (n, l), = c["links"].items()
        print(f"calibrated at load {c['load']:.1f}: {n} hosts alpha {l['alpha_s'] * 1e6:.1f} us, beta "
              f"{8 / l['beta_s'] / 1e6:.0f} Mbit/s; compute {c['compute']['fixed_s'] * 1e6:.0f} us + "
              f"{c['compute']['per_sample_s'] * 1e6:.2f} us/sample")
    for c in [m["compute"]] + m.get("compute_per_repeat", []):
        print(f"compute (one_device, 1 thread): {c['fixed_s'] * 1e6:.0f} us + {c['per_sample_s'] * 1e6:.2f} "
              f"us/sample (steps: {', '.join(f'{b}: {t * 1e3:.2f} ms' for b, t in c['steps'])})")
    worst = 0.0
    for rate, points in validation.items():
        print(f"\n== validation, emulated hosts at {rate}, {args.epochs} epoch(s), median of {args.repeat}; "
              f"{args.cores:g} cores shared; load average at each repeat's start: "
              f"{', '.join(f'{x:.1f}' for x in m.get('load_average', []))} ==")
        print(f"{'point':<42} {'predicted':>10} {'measured':>10} {'error':>7}")
        for name, (pred, runs, *bound) in points.items():
            meas = statistics.median(runs)
            err = cm.relative_error(pred, meas)
            worst = max(worst, abs(err))
            flag = "" if abs(err) <= 0.2 else "  MISS (> 20%)"
            note = f"  [{bound[0]}]" if bound else ""
            print(f"{name:<42} {pred:10,.0f} {meas:10,.0f} {err:+7.1%}{flag}{note}"
                  f"   runs: {', '.join(f'{x:,.0f}' for x in runs)}")
    if validation:
        print(f"\nlargest error: {worst:.1%}")
    if "scale" in args.only:
        print("\n== predicted scaling (real links; assumptions in docs/benchmarks.md, \"Cost model\") ==")
        print(scale_table(m, (10, 100), (8, 64, 256), args.efficiency, args.wire_latency_us * 1e-6))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--meshtrain", default=os.path.join(ROOT, "build/launcher/meshtrain"))
    p.add_argument("--rates", default="1gbit")
    p.add_argument("--hosts", default="2,4,8")
    p.add_argument("--wire", default="float32,bfloat16")
    p.add_argument("--ps", default="1,2,4")
    p.add_argument("--ps-workers", type=int, default=4)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--min-time", type=float, default=0.5, help="seconds per size in the loopback AllReduce")
    p.add_argument("--cores", type=float, default=os.cpu_count(), help="cores the emulated hosts share")
    p.add_argument("--efficiency", type=float, default=0.95,
                   help="scaling table: share of a real link's nominal rate TCP delivers")
    p.add_argument("--wire-latency-us", type=float, default=10.0,
                   help="scaling table: one-way latency of a real link, added to loopback tcp's alpha")
    p.add_argument("--calibrate", choices=("repeat", "point"), default="point",
                   help="when the inputs are measured again during validation: the compute at each repeat's "
                        "start (links from the start), or the compute and the point's link right after each "
                        "point's run")
    p.add_argument("--only", default="measure,mwms,hier,ps,scale")
    p.add_argument("--inputs", help="reuse measured inputs from a --json file instead of measuring")
    p.add_argument("--json", help="write inputs and validation here")
    args = p.parse_args()
    args.hosts = [int(h) for h in args.hosts.split(",") if h]
    args.ps = [int(x) for x in args.ps.split(",") if x]
    args.wire = [w for w in args.wire.split(",") if w]
    rates = [r for r in args.rates.split(",") if r]
    validating = bool(set(args.only.split(",")) & {"mwms", "hier", "ps"})
    needs_hosts = validating or not args.inputs
    if needs_hosts:
        ok, why = available()
        if not ok:
            print(f"bench-cost-model: {why}", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory() as tmp:
        if args.inputs:
            with open(args.inputs) as f:
                m = json.load(f)["inputs"]
        else:
            print("measuring: loopback links, compute", flush=True)
            m = {"links": measure_loopback(args, tmp), "compute": measure_compute(args, tmp), "host_links": {}}
        for rate in rates if needs_hosts else []:
            if rate not in m["host_links"]:
                print(f"measuring: emulated links at {rate}", flush=True)
                m["host_links"][rate] = measure_host_links(args, rate, tmp)
        validation = {rate: validate(args, m, rate, tmp) for rate in rates} if validating else {}
    report(args, m, validation)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"inputs": m, "validation": validation}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

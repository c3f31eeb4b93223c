#!/usr/bin/env python3
"""meshtrain across emulated hosts (scripts/emulate-hosts.sh), beside its peers
on the same links, in one run, as ratios.

For each link rate, each repeat (interleaved, so a noisy minute hits every
system alike), on hosts that each run one task in a namespace of their own:
  line rate      iperf3 between hosts 1 and 2 (TCP, 3 s);
  allreduce      `meshtrain bench allreduce` over tcp and grpc beside torch gloo
                 (scripts/peers/torch_allreduce.py) and Open MPI's MPI_Allreduce
                 (scripts/peers/mpi_allreduce.c; mpirun runs on host 1 and starts
                 host 2's rank through an rsh agent that enters host 2), 2 hosts,
                 busbw per size;
  mwms H         the reference job, multi_worker_mirrored, one worker per host,
                 beside PyTorch DDP over gloo (scripts/peers/torch_mlp.py with
                 RANK, WORLD_SIZE, MASTER_ADDR and GLOO_SOCKET_IFNAME per host);
  tls H          the reference job, multi_worker_mirrored on H hosts (the
                 first of --hosts), plain, then with TLS on every link (a
                 cluster certificate from `meshtrain certs`), data path
                 encrypted, then authenticated only (docs/security.md);
  hier           the reference job, multi_worker_mirrored, 2 hosts x 2 workers:
                 the flat ring (--communication ring: shared memory between
                 the neighbours of a host, TCP between hosts) beside the
                 hierarchical AllReduce (--communication hierarchical: a sum
                 on each host, a ring between the two hosts' leaders);
  overlap        the reference job, multi_worker_mirrored, 2 hosts x 1 worker,
                 gradient buckets summed inline after each bucket's backward
                 (--overlap inline, the default with one thread per worker)
                 beside a combiner thread that sums them while backward goes on
                 (--overlap thread), with summary.json's communication_overlap;
  ps P           the reference job, parameter_server, --ps-workers workers (4)
                 and P ps tasks, one task per host, variables partitioned over
                 the ps tasks by size (--placement greedy --max-shard-bytes
                 131072: round_robin, TensorFlow's default and meshtrain's, puts
                 every kernel of this MLP on ps 0, which no added ps relieves).
The link limit of a synchronous job is what the measured line rate allows when
each step's bytes cross a host's link: global batch x line rate / bytes each
worker sends per step (from meshtrain's summary.json).

Every host shares this machine's cores: compute competes for them as the number
of hosts grows, so the figures show the network's share only where it dominates.

  scripts/bench-hosts.sh [--rates 1gbit,10gbit] [--hosts 2,4,8] [--ps 1,2,4] [--ps-workers 4]
                         [--repeat 2] [--epochs 2] [--only line,allreduce,mwms,tls,hier,overlap,ps]
                         [--wire-dtype bfloat16]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from emulated_hosts import EmulatedHosts, available  # noqa: E402

CONFIG = os.path.join(ROOT, "configs/fashion_mnist_mlp.json")
TORCH = "/usr/bin/python3"
PORT = 2222
TORCH_PORT = 29600
TIMEOUT_S = 600
PS_PLACEMENT = ["--placement", "greedy", "--max-shard-bytes", "131072"]


def tf_config(cluster, job, index):
    return json.dumps({"cluster": cluster, "task": {"type": job, "index": index}})


def run_on_hosts(hosts, commands, timeout=TIMEOUT_S):
    """Runs [(host, argv, env)] at once; returns the outputs; raises if one fails."""
    procs = []
    for host, argv, env in commands:
        full = dict(os.environ)
        full.update(env)
        procs.append(subprocess.Popen(hosts.command(host, argv), env=full, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, start_new_session=True))
    deadline = time.monotonic() + timeout
    outputs, failed = [], None
    for p in procs:
        try:
            out, _ = p.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            failed = failed or f"timed out after {timeout}s"
        outputs.append(out)
        if p.returncode != 0 and failed is None:
            failed = f"exit {p.returncode}"
    if failed:
        for p in procs:
            if p.poll() is None:
                p.kill()
        raise RuntimeError(f"{failed}:\n" + "\n---\n".join(o[-2000:] for o in outputs))
    return outputs


def cluster_of(hosts, **jobs):
    cluster, host = {}, 1
    for job, count in jobs.items():
        cluster[job] = [f"{hosts.address(host + i)}:{PORT}" for i in range(count)]
        host += count
    return cluster


def task_commands(binary, cluster, args):
    cmds, host = [], 1
    for job, addresses in cluster.items():
        for i in range(len(addresses)):
            cmds.append((host, [binary] + args, {"TF_CONFIG": tf_config(cluster, job, i)}))
            host += 1
    return cmds


def line_rate(hosts):
    """iperf3 from host 2 to host 1, Mbit/s received."""
    server = subprocess.Popen(hosts.command(1, ["iperf3", "-s", "-1", "-B", hosts.address(1)]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(50):  # the server needs a moment to listen: retry the client
            proc = subprocess.run(hosts.command(2, ["iperf3", "-c", hosts.address(1), "-t", "3", "-J"]),
                                  capture_output=True, text=True, timeout=30)
            try:
                return json.loads(proc.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6
            except (ValueError, KeyError):
                time.sleep(0.1)  # e.g. {"error": "unable to connect to server"}
        raise RuntimeError(f"iperf3 failed: {proc.stdout[-500:]}{proc.stderr[-500:]}")
    finally:
        server.kill()
        server.wait()


def meshtrain_allreduce(binary, hosts, n, sizes, layer, tmp, field="busbw_gbps"):
    out = os.path.join(tmp, "allreduce.json")
    cluster = cluster_of(hosts, worker=n)
    run_on_hosts(hosts, task_commands(binary, cluster, ["bench", "allreduce", "--sizes", sizes, "--rpc-layer",
                                                        layer, "--min-time", "1s", "--json", out]))
    with open(out) as f:
        return {r["size_bytes"]: r[field] for r in json.load(f)}


def torch_env(hosts, rank, world):
    return {"RANK": str(rank), "WORLD_SIZE": str(world), "MASTER_ADDR": hosts.address(1),
            "MASTER_PORT": str(TORCH_PORT), "GLOO_SOCKET_IFNAME": "eth0", "OMP_NUM_THREADS": "1"}


def torch_allreduce(hosts, n, sizes):
    script = os.path.join(ROOT, "scripts/peers/torch_allreduce.py")
    outs = run_on_hosts(hosts, [(r + 1, [TORCH, script, "--sizes", sizes, "--min-time", "1"],
                                 torch_env(hosts, r, n)) for r in range(n)])
    rows = json.loads([l for l in outs[0].splitlines() if l.startswith("[")][-1])
    return {r["size_bytes"]: r["busbw_gbps"] for r in rows}


MPI_AGENT = """#!/bin/sh
# Open MPI's rsh agent for emulated hosts: agent [options] 198.18.0.I COMMAND...
while [ "${1#-}" != "$1" ]; do shift; done
host="$1"; shift
exec %s exec "${host##*.}" --name %s -- sh -c "$*"
"""


def build_mpi(hosts, tmp):
    """The MPI peer and its rsh agent, or None where Open MPI is missing."""
    if not (shutil.which("mpirun") and shutil.which("mpicc")):
        return None
    exe = os.path.join(tmp, "mpi_allreduce")
    subprocess.run(["mpicc", "-O2", "-o", exe, os.path.join(ROOT, "scripts/peers/mpi_allreduce.c")], check=True)
    agent = os.path.join(tmp, "mpi_agent.sh")
    with open(agent, "w") as f:
        f.write(MPI_AGENT % (os.path.join(ROOT, "scripts/emulate-hosts.sh"), hosts.name))
    os.chmod(agent, 0o755)
    hostfile = os.path.join(tmp, "hostfile")
    with open(hostfile, "w") as f:
        f.write(f"{hosts.address(1)} slots=1\n{hosts.address(2)} slots=1\n")
    return exe, agent, hostfile


def mpi_allreduce(hosts, mpi, sizes):
    exe, agent, hostfile = mpi
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--hostfile", hostfile, "-np", "2",
           "--mca", "plm_rsh_agent", agent, "--mca", "btl_tcp_if_include", "eth0",
           "--mca", "oob_tcp_if_include", "eth0", "--mca", "pml", "ob1", "--mca", "btl", "tcp,self",
           exe, "1"] + sizes.split(",")
    out = run_on_hosts(hosts, [(1, cmd, {})])[0]
    rows = json.loads([l for l in out.splitlines() if l.startswith("[")][-1])
    return {r["size_bytes"]: r["busbw_gbps"] for r in rows}


def meshtrain_train(binary, hosts, jobs, strategy, epochs, tmp, extra=()):
    model_dir = tempfile.mkdtemp(dir=tmp)
    cluster = cluster_of(hosts, **jobs)
    args = ["train", "--config", CONFIG, "--epochs", str(epochs), "--threads", "1", "--strategy", strategy,
            "--model-dir", model_dir, "--quiet"] + list(extra)
    run_on_hosts(hosts, task_commands(binary, cluster, args))
    with open(os.path.join(model_dir, "summary.json")) as f:
        s = json.load(f)
    shutil.rmtree(model_dir, ignore_errors=True)
    return s


def meshtrain_train_placed(binary, worker_hosts, hosts, epochs, tmp, extra=()):
    """multi_worker_mirrored with worker i on host worker_hosts[i] (several per host)."""
    model_dir = tempfile.mkdtemp(dir=tmp)
    cluster = {"worker": [f"{hosts.address(h)}:{PORT + i}" for i, h in enumerate(worker_hosts)]}
    args = ["train", "--config", CONFIG, "--epochs", str(epochs), "--threads", "1", "--strategy",
            "multi_worker_mirrored", "--model-dir", model_dir, "--quiet"] + list(extra)
    run_on_hosts(hosts, [(h, [binary] + args, {"TF_CONFIG": tf_config(cluster, "worker", i)})
                         for i, h in enumerate(worker_hosts)])
    with open(os.path.join(model_dir, "summary.json")) as f:
        s = json.load(f)
    shutil.rmtree(model_dir, ignore_errors=True)
    return s


def torch_train(hosts, n, epochs):
    script = os.path.join(ROOT, "scripts/peers/torch_mlp.py")
    outs = run_on_hosts(hosts, [(r + 1, [TORCH, script, "--epochs", str(epochs), "--threads", "1"],
                                 torch_env(hosts, r, n)) for r in range(n)])
    return json.loads([l for l in outs[0].splitlines() if l.startswith("{")][-1])


def parse_size(s):
    s = s.strip().upper()
    mult = {"K": 1 << 10, "M": 1 << 20}.get(s[-1:], 1)
    return int(s[:-1] if mult > 1 else s) * mult


def measure_rate(args, rate, results):
    max_hosts = max(args.hosts + [args.ps_workers + p for p in args.ps] + [2])
    only = set(args.only.split(","))
    with EmulatedHosts(max_hosts, rate=rate) as hosts, tempfile.TemporaryDirectory() as tmp:
        r = results.setdefault(rate, {})
        mpi = build_mpi(hosts, tmp) if "allreduce" in only else None
        if "allreduce" in only and not mpi:
            print("note: Open MPI (mpirun, mpicc) is not installed: MPI skipped")
        for rep in range(args.repeat):
            print(f"{rate}, repeat {rep + 1}/{args.repeat}", flush=True)
            if only & {"line", "allreduce", "mwms"}:
                r.setdefault("line_mbps", []).append(line_rate(hosts))
            if "allreduce" in only:
                for layer in ("tcp", "grpc"):
                    r.setdefault(f"allreduce_meshtrain_{layer}", []).append(
                        meshtrain_allreduce(args.meshtrain, hosts, 2, args.sizes, layer, tmp))
                r.setdefault("allreduce_torch", []).append(torch_allreduce(hosts, 2, args.sizes))
                if mpi:
                    r.setdefault("allreduce_mpi", []).append(mpi_allreduce(hosts, mpi, args.sizes))
            if "mwms" in only:
                for n in args.hosts:
                    s = meshtrain_train(args.meshtrain, hosts, {"worker": n}, "multi_worker_mirrored",
                                        args.epochs, tmp, ["--wire-dtype", args.wire_dtype])
                    r.setdefault(f"mwms_{n}", []).append(
                        {"samples_per_sec": s["samples_per_sec"], "bytes_sent_per_step": s["bytes_sent_per_step"],
                         "global_batch": s["global_batch_size"], "test_accuracy": s["test_accuracy"],
                         "communication": s["communication"]})
                    t = torch_train(hosts, n, args.epochs)
                    r.setdefault(f"ddp_{n}", []).append({"samples_per_sec": t["samples_per_sec"],
                                                         "test_accuracy": t["test_accuracy"]})
            if "tls" in only:
                n = args.hosts[0]
                creds = os.path.join(tmp, "tls")
                if not os.path.exists(creds):
                    subprocess.run([args.meshtrain, "certs", "--out", creds], check=True, capture_output=True)
                for mode, extra in (("plain", []), ("tls", ["--tls-dir", creds]),
                                    ("auth", ["--tls-dir", creds, "--data-path-encryption", "off"])):
                    s = meshtrain_train(args.meshtrain, hosts, {"worker": n}, "multi_worker_mirrored",
                                        args.epochs, tmp, extra)
                    r.setdefault(f"tls_{mode}", []).append({"samples_per_sec": s["samples_per_sec"],
                                                            "test_accuracy": s["test_accuracy"]})
            if "hier" in only:
                for comm in ("ring", "hierarchical"):
                    s = meshtrain_train_placed(args.meshtrain, [1, 1, 2, 2], hosts, args.epochs, tmp,
                                               ["--communication", comm])
                    r.setdefault(f"hier_{comm}", []).append(
                        {"samples_per_sec": s["samples_per_sec"], "test_accuracy": s["test_accuracy"],
                         "bytes_sent_per_step": s["bytes_sent_per_step"], "communication": s["communication"]})
            if "overlap" in only:
                for mode in ("inline", "thread"):
                    s = meshtrain_train_placed(args.meshtrain, [1, 2], hosts, args.epochs, tmp,
                                               ["--overlap", mode])
                    r.setdefault(f"overlap_{mode}", []).append(
                        {"samples_per_sec": s["samples_per_sec"], "hidden": s["communication_overlap"]})
            if "ps" in only:
                for p in args.ps:
                    s = meshtrain_train(args.meshtrain, hosts, {"worker": args.ps_workers, "ps": p},
                                        "parameter_server", args.epochs, tmp, PS_PLACEMENT)
                    r.setdefault(f"ps_{p}", []).append({"samples_per_sec": s["samples_per_sec"],
                                                        "test_accuracy": s["test_accuracy"],
                                                        "ps_bytes": s["ps_bytes"]})


def med(xs, key=None):
    return statistics.median([x[key] for x in xs] if key else xs)


def report(args, results):
    for rate, r in results.items():
        print(f"\n== links {rate}: median of {args.repeat} interleaved repeats ==")
        line = med(r["line_mbps"]) if "line_mbps" in r else None
        if line:
            print(f"iperf3 line rate: {line:.0f} Mbit/s (runs: {', '.join(f'{x:.0f}' for x in r['line_mbps'])})")
        if "allreduce_meshtrain_tcp" in r:
            print(f"\nallreduce, 2 hosts, busbw Gbit/s {'mt tcp':>8} {'mt grpc':>8} {'gloo':>8} {'MPI':>8} "
                  f"{'tcp/gloo':>8} {'tcp/MPI':>8} {'tcp/line':>8} {'grpc/line':>9}")
            for size in r["allreduce_meshtrain_tcp"][0]:
                tcp = med([x[size] for x in r["allreduce_meshtrain_tcp"]]) * 8
                grpc = med([x[size] for x in r["allreduce_meshtrain_grpc"]]) * 8
                pt = med([x[size] for x in r["allreduce_torch"]]) * 8
                mpi = med([x[size] for x in r["allreduce_mpi"]]) * 8 if "allreduce_mpi" in r else float("nan")
                print(f"  {size >> 10:>8} KiB {'':>14} {tcp:8.3f} {grpc:8.3f} {pt:8.3f} {mpi:8.3f} "
                      f"{tcp / pt:7.2f}x {tcp / mpi:7.2f}x {tcp * 1000 / line:8.2f} {grpc * 1000 / line:9.2f}")
        if any(k.startswith("mwms_") for k in r):
            print(f"\nreference job, wire {args.wire_dtype}, samples/s   {'meshtrain':>10} {'DDP':>8} {'ratio':>6} "
                  f"{'link limit':>10} {'mt/limit':>8} {'DDP/limit':>9}")
            for n in args.hosts:
                mt, pt = r[f"mwms_{n}"], r[f"ddp_{n}"]
                limit = mt[0]["global_batch"] * line * 1e6 / 8 / mt[0]["bytes_sent_per_step"]
                m, p = med(mt, "samples_per_sec"), med(pt, "samples_per_sec")
                print(f"  mwms {n} hosts {'':>12} {m:10.0f} {p:8.0f} {m / p:5.2f}x {limit:10.0f} "
                      f"{m / limit:8.2f} {p / limit:9.2f}")
        if "tls_plain" in r:
            plain = med(r["tls_plain"], "samples_per_sec")
            tls, auth = med(r["tls_tls"], "samples_per_sec"), med(r["tls_auth"], "samples_per_sec")
            runs = lambda k: ", ".join(f"{x['samples_per_sec']:.0f}" for x in r[k])
            print(f"\nreference job, mwms {args.hosts[0]} hosts, samples/s: plain {plain:.0f} ({runs('tls_plain')}), "
                  f"TLS {tls:.0f} ({runs('tls_tls')}) = {tls / plain:.2f}x, "
                  f"authenticated only {auth:.0f} ({runs('tls_auth')}) = {auth / plain:.2f}x")
        if "hier_ring" in r:
            ring, hier = med(r["hier_ring"], "samples_per_sec"), med(r["hier_hierarchical"], "samples_per_sec")
            runs = lambda k: ", ".join(f"{x['samples_per_sec']:.0f}" for x in r[k])
            print(f"\nreference job, mwms 2 hosts x 2 workers, samples/s: flat ring {ring:.0f} ({runs('hier_ring')}), "
                  f"hierarchical {hier:.0f} ({runs('hier_hierarchical')}) = {hier / ring:.2f}x; test accuracy "
                  f"{r['hier_ring'][-1]['test_accuracy']:.4f} / {r['hier_hierarchical'][-1]['test_accuracy']:.4f}")
        if "overlap_inline" in r:
            for mode in ("inline", "thread"):
                runs = r[f"overlap_{mode}"]
                print(f"  mwms 2 hosts, --overlap {mode}: {med(runs, 'samples_per_sec'):.0f} samples/s, "
                      f"communication hidden {med([x['hidden']['hidden_fraction'] for x in runs]):.0%}")
        for p in args.ps:
            if f"ps_{p}" in r:
                runs = r[f"ps_{p}"]
                print(f"  parameter_server {args.ps_workers} workers + {p} ps: "
                      f"{med(runs, 'samples_per_sec'):.0f} samples/s (bytes per ps: {runs[0]['ps_bytes']})")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--meshtrain", default=os.path.join(ROOT, "build/launcher/meshtrain"))
    p.add_argument("--rates", default="1gbit,10gbit")
    p.add_argument("--hosts", default="2,4,8")
    p.add_argument("--ps", default="1,2,4")
    p.add_argument("--ps-workers", type=int, default=4)
    p.add_argument("--sizes", default="64K,1M,16M,64M")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--only", default="line,allreduce,mwms,ps")
    p.add_argument("--wire-dtype", default="float32",
                   help="the gradients' dtype on the wire in the mwms runs (float32, bfloat16, float16)")
    p.add_argument("--json", help="write every measurement here")
    args = p.parse_args()
    args.hosts = [int(h) for h in args.hosts.split(",") if h]
    args.ps = [int(x) for x in args.ps.split(",") if x]
    args.sizes = ",".join(str(parse_size(s)) for s in args.sizes.split(","))
    ok, why = available()
    if not ok:
        print(f"bench-hosts: {why}", file=sys.stderr)
        return 2
    for tool in ("iperf3",):
        if not shutil.which(tool):
            print(f"bench-hosts: {tool} is missing (scripts/install-deps.sh --peers)", file=sys.stderr)
            return 2
    results = {}
    for rate in args.rates.split(","):
        measure_rate(args, rate, results)
    report(args, results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

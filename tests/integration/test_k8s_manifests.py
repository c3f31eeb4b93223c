"""The manifests under configs/k8s and the batch scripts under configs/slurm
resolve, pod by pod (task by task), to the cluster they describe.

There is no Kubernetes here, so each pod's start is reproduced: the environment
the operator or controller gives the pod (a TFJob's TF_CONFIG, a PyTorchJob's
MASTER_ADDR/MASTER_PORT/WORLD_SIZE/RANK, an Indexed Job's JOB_COMPLETION_INDEX)
plus the container's own `env`, then the container's command itself, run as the
kubelet would run it, with `meshtrain` on PATH replaced by a shim that records
its arguments and runs the real `meshtrain check-config` (with the --ps,
--evaluator and --port-base the command gave `train`) in that environment. The
test reads check-config's answer and asserts the roles, counts, chief and this
pod's task. It also checks what Kubernetes would only show at run time: the
termination grace period against the SIGTERM checkpoint, probes on the port the
task serves, the shared ReadWriteMany model dir, resources, restart policy and
exit 2 handling, and the job config in the ConfigMap.

YAML: PyYAML from this interpreter, else from Debian's /usr/bin/python3
(python3-yaml, which scripts/install-deps.sh installs) through a subprocess
that turns the YAML into JSON, so it works whichever Python CTest found. Where
neither has it the tests skip, and under CI=true fail, with the reason.
"""
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import tempfile
import unittest

from harness import BIN, REFERENCE, SOURCE_DIR, requires

K8S = os.path.join(SOURCE_DIR, "configs", "k8s")
SLURM = os.path.join(SOURCE_DIR, "configs", "slurm")
DEBIAN_PYTHON = "/usr/bin/python3"
NAMESPACE = "default"  # the manifests name none: kubectl apply -n picks it
# A worker or ps waits at most this long for the chief's SIGTERM checkpoint
# (docs/fault_tolerance.md 5.4); the grace period must cover it with a margin.
PREEMPT_WAIT_S = 20
MODEL_DIR = "/mnt/run"
JOB_CONFIG = "/etc/meshtrain/job.json"


def _yaml_loader():
    try:
        import yaml  # noqa: F401
        return lambda text: [d for d in yaml.safe_load_all(text) if d is not None]
    except ImportError:
        pass
    if os.path.exists(DEBIAN_PYTHON) and subprocess.run(
            [DEBIAN_PYTHON, "-c", "import yaml"], capture_output=True).returncode == 0:
        script = ("import json, sys, yaml; "
                  "json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)")

        def load(text):
            r = subprocess.run([DEBIAN_PYTHON, "-c", script], input=text, capture_output=True,
                               text=True, check=True)
            return json.loads(r.stdout)
        return load
    return None


LOAD_YAML = _yaml_loader()
requires_yaml = requires(
    LOAD_YAML is not None,
    "no YAML parser: neither this Python nor /usr/bin/python3 can import yaml "
    "(apt-get install python3-yaml; scripts/install-deps.sh installs it)")
requires_meshtrain = requires(os.path.exists(BIN), f"MESHTRAIN_BIN={BIN} does not exist")

SHIM = """#!{python}
# Stands in for meshtrain in a pod's command: records argv, then runs the real
# binary's check-config with the cluster flags `train` was given.
import json, os, sys
args = sys.argv[1:]
with open(os.environ["SHIM_ARGV"], "a") as f:
    f.write(json.dumps(args) + "\\n")
if args[:1] == ["check-config"]:
    os.execv({bin!r}, [{bin!r}] + args)
if args[:1] != ["train"]:
    sys.exit("shim: not a meshtrain train command: %r" % args)
flags = []
i = 1
while i < len(args):
    if args[i] in ("--ps", "--port-base"):
        flags += args[i:i + 2]
        i += 2
        continue
    if args[i] == "--evaluator":
        flags.append(args[i])
    i += 1
os.execv({bin!r}, [{bin!r}, "check-config"] + flags)
"""

TASK_LINE = re.compile(r"^  (\w+):(\d+)\s+(\(not listed\)|\S+)\s+(.*?)(  <- this process)?$")


def parse_check_config(out):
    """check-config's answer: the source line, the listed tasks
    {(type, index): address}, this task, and the summary lines by key."""
    lines = out.splitlines()
    # skip what a wrapper printed before exec'ing meshtrain
    start = next((i for i, line in enumerate(lines) if line.startswith(("cluster from ", "local: "))), 0)
    lines = lines[start:]
    tasks, me, keyed = {}, None, {}
    for line in lines[1:]:
        m = TASK_LINE.match(line)
        if m:
            tasks[(m.group(1), int(m.group(2)))] = m.group(3)
            if m.group(5):
                me = (m.group(1), int(m.group(2)))
        elif ": " in line and not line.startswith(" "):
            key, value = line.split(": ", 1)
            keyed[key] = value
    return {"source": lines[0] if lines else "", "tasks": tasks, "me": me, "keyed": keyed}


def containers_of(template):
    return template["spec"]["containers"]


class PodRunner:
    """Runs a container's command as the kubelet would, with the meshtrain shim on PATH."""

    def __init__(self, testcase):
        self.dir = tempfile.mkdtemp(prefix="k8s-manifests-")
        testcase.addCleanup(subprocess.run, ["rm", "-rf", self.dir])
        shim = os.path.join(self.dir, "meshtrain")
        with open(shim, "w") as f:
            f.write(SHIM.format(python=sys.executable, bin=os.path.abspath(BIN)))
        os.chmod(shim, os.stat(shim).st_mode | stat.S_IXUSR)

    def run(self, argv, env):
        argv_file = os.path.join(self.dir, "argv.jsonl")
        if os.path.exists(argv_file):
            os.remove(argv_file)
        full_env = {"PATH": f"{self.dir}:/usr/bin:/bin", "HOME": self.dir, "SHIM_ARGV": argv_file}
        full_env.update(env)
        r = subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=60)
        calls = []
        if os.path.exists(argv_file):
            with open(argv_file) as f:
                calls = [json.loads(line) for line in f]
        return r, calls


def container_env(container):
    """The container's literal env values (valueFrom entries need a cluster)."""
    return {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}


def flag_value(argv, flag):
    return argv[argv.index(flag) + 1] if flag in argv else None


def global_batch(argv):
    """The global batch `train` would use: the flag, else the reference job's."""
    flag = flag_value(argv, "--global-batch-size")
    if flag is not None:
        return int(flag)
    with open(REFERENCE) as f:
        return json.load(f)["training"]["global_batch_size"]


@requires_yaml
@requires_meshtrain
class ManifestsTest(unittest.TestCase):
    maxDiff = None

    def load(self, name):
        with open(os.path.join(K8S, name)) as f:
            return LOAD_YAML(f.read())

    def setUp(self):
        self.pods = PodRunner(self)
        common = self.load("common.yaml")
        self.pvc = next(d for d in common if d["kind"] == "PersistentVolumeClaim")
        self.configmap = next(d for d in common if d["kind"] == "ConfigMap")

    # --- what every pod template must have ---------------------------------

    def check_pod_template(self, where, template, container, probe_port=None):
        spec = template["spec"]
        grace = spec.get("terminationGracePeriodSeconds")
        self.assertIsNotNone(grace, f"{where}: no terminationGracePeriodSeconds")
        self.assertGreaterEqual(grace, 2 * PREEMPT_WAIT_S,
                                f"{where}: the grace period must cover a worker's {PREEMPT_WAIT_S} s wait "
                                "for the chief's SIGTERM checkpoint, with a margin")
        for kind in ("readinessProbe", "livenessProbe"):
            probe = container.get(kind)
            self.assertIsNotNone(probe, f"{where}: no {kind}")
            if probe_port is not None:
                self.assertIn("tcpSocket", probe, f"{where}: {kind} should probe the task port")
            if "tcpSocket" in probe:
                port = probe["tcpSocket"]["port"]
                ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
                number = ports.get(port, port)
                self.assertIn(number, ports.values(), f"{where}: {kind} probes a port the container does not declare")
                if probe_port is not None:
                    self.assertEqual(number, probe_port, f"{where}: {kind} probes another port than the task's")
            else:
                self.assertIn("exec", probe, f"{where}: {kind} is neither tcpSocket nor exec")
        resources = container.get("resources", {})
        for part in ("requests", "limits"):
            self.assertIn("cpu", resources.get(part, {}), f"{where}: no cpu {part}")
            self.assertIn("memory", resources.get(part, {}), f"{where}: no memory {part}")
        argv = container.get("command", []) + container.get("args", [])
        text = " ".join(argv)
        self.assertNotIn("$(", text, f"{where}: the kubelet would expand $(...) in the command")
        # The model dir: the shared RWX claim, mounted where --model-dir points.
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
                  for v in spec["volumes"] if "persistentVolumeClaim" in v}
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        self.assertIn(MODEL_DIR, mounts, f"{where}: nothing mounted at {MODEL_DIR}")
        self.assertEqual(claims.get(mounts[MODEL_DIR]["name"]), self.pvc["metadata"]["name"],
                         f"{where}: {MODEL_DIR} is not the shared claim")
        self.assertFalse(mounts[MODEL_DIR].get("readOnly", False), f"{where}: {MODEL_DIR} read-only")
        configmaps = {v["name"]: v["configMap"]["name"] for v in spec["volumes"] if "configMap" in v}
        config_mount = mounts.get(os.path.dirname(JOB_CONFIG))
        self.assertIsNotNone(config_mount, f"{where}: the job config is not mounted")
        self.assertEqual(configmaps.get(config_mount["name"]), self.configmap["metadata"]["name"])

    def check_train_argv(self, where, argv, container, strategy):
        self.assertEqual(argv[0], "train", f"{where}: {argv}")
        self.assertEqual(flag_value(argv, "--config"), JOB_CONFIG, where)
        self.assertEqual(flag_value(argv, "--model-dir"), MODEL_DIR, where)
        self.assertEqual(flag_value(argv, "--strategy"), strategy, where)
        self.assertEqual(flag_value(argv, "--threads"), str(container["resources"]["limits"]["cpu"]),
                         f"{where}: --threads should match the CPU limit")

    def check_batch_divides(self, where, argv, replicas):
        # Otherwise every task fails at start-up ("global batch size 256 does
        # not divide by 3 replicas in sync"), with exit 1, so it is restarted.
        self.assertEqual(global_batch(argv) % replicas, 0,
                         f"{where}: global batch {global_batch(argv)} does not divide by {replicas} replicas")

    def test_common_pieces(self):
        self.assertIn("ReadWriteMany", self.pvc["spec"]["accessModes"])
        with open(REFERENCE) as f:
            reference = json.load(f)
        self.assertEqual(json.loads(self.configmap["data"][os.path.basename(JOB_CONFIG)]), reference,
                         "the ConfigMap's job.json is no longer configs/fashion_mnist_mlp.json")

    # --- TFJob ---------------------------------------------------------------

    def test_tfjob_each_pod_resolves_to_the_cluster(self):
        (job,) = self.load("tfjob.yaml")
        self.assertEqual(job["kind"], "TFJob")
        name = job["metadata"]["name"]
        specs = job["spec"]["tfReplicaSpecs"]
        self.assertEqual({k: v["replicas"] for k, v in specs.items()},
                         {"Chief": 1, "Worker": 2, "PS": 1, "Evaluator": 1})
        self.assertIn("backoffLimit", job["spec"].get("runPolicy", {}),
                      "exit 2 would restart forever without runPolicy.backoffLimit")

        def port_of(rtype):  # the operator's GetPortFromTFJob
            for c in containers_of(specs[rtype]["template"]):
                if c["name"] == "tensorflow":
                    for p in c.get("ports", []):
                        if p.get("name") == "tfjob-port":
                            return p["containerPort"]
            return 2222

        # genClusterSpec: every replica type but the evaluator, lower-cased.
        cluster = {rtype.lower(): [f"{name}-{rtype.lower()}-{i}.{NAMESPACE}.svc:{port_of(rtype)}"
                                   for i in range(spec["replicas"])]
                   for rtype, spec in specs.items() if rtype != "Evaluator"}
        expected_tasks = {(t, i): a for t, addrs in cluster.items() for i, a in enumerate(addrs)}
        for rtype, spec in specs.items():
            self.assertEqual(spec["restartPolicy"], "OnFailure", rtype)
            template = spec["template"]
            (container,) = [c for c in containers_of(template) if c["name"] == "tensorflow"]
            serves = rtype != "Evaluator"
            for index in range(spec["replicas"]):
                where = f"TFJob pod {name}-{rtype.lower()}-{index}"
                self.check_pod_template(where, template, container,
                                        probe_port=port_of(rtype) if serves else None)
                tf_config = {"cluster": cluster, "task": {"type": rtype.lower(), "index": index},
                             "environment": "cloud"}
                env = container_env(container)
                env["TF_CONFIG"] = json.dumps(tf_config)
                r, calls = self.pods.run(container["command"] + container.get("args", []), env)
                self.assertEqual(r.returncode, 0, f"{where}: {r.stdout}{r.stderr}")
                self.check_train_argv(where, calls[0], container, "parameter_server")
                got = parse_check_config(r.stdout)
                self.assertTrue(got["source"].startswith("cluster from TF_CONFIG"), got["source"])
                # The evaluator is outside the cluster: listed only in its own view.
                expected = dict(expected_tasks)
                if not serves:
                    expected[("evaluator", index)] = "(not listed)"
                self.assertEqual(got["tasks"], expected, where)
                self.assertEqual(got["me"], (rtype.lower(), index), where)
                self.assertEqual(got["keyed"]["chief"], f"chief:0 at {cluster['chief'][0]}", where)
                self.assertTrue(got["keyed"]["training workers"].startswith("3 "), where)
                self.check_batch_divides(where, calls[0], 3)
                self.assertEqual(got["keyed"]["parameter servers"], "1 (ps:0)", where)
                if not serves:
                    # Its exec readiness probe (check-config) passes in this environment.
                    probe = container["readinessProbe"]["exec"]["command"]
                    r, _ = self.pods.run(probe, env)
                    self.assertEqual(r.returncode, 0, f"{where}: readiness probe: {r.stdout}{r.stderr}")

    # --- PyTorchJob ----------------------------------------------------------

    def test_pytorchjob_each_pod_resolves_to_the_cluster(self):
        (job,) = self.load("pytorchjob.yaml")
        self.assertEqual(job["kind"], "PyTorchJob")
        name = job["metadata"]["name"]
        specs = job["spec"]["pytorchReplicaSpecs"]
        self.assertEqual(specs["Master"]["replicas"], 1)
        self.assertIn("backoffLimit", job["spec"].get("runPolicy", {}))
        world = sum(s["replicas"] for s in specs.values())
        self.assertEqual(world, 4)
        master_port = next(p["containerPort"] for c in containers_of(specs["Master"]["template"])
                           if c["name"] == "pytorch" for p in c["ports"] if p["name"] == "pytorchjob-port")
        ranks = []
        for rtype, spec in specs.items():
            self.assertEqual(spec["restartPolicy"], "OnFailure", rtype)
            template = spec["template"]
            (container,) = [c for c in containers_of(template) if c["name"] == "pytorch"]
            for index in range(spec["replicas"]):
                where = f"PyTorchJob pod {name}-{rtype.lower()}-{index}"
                self.check_pod_template(where, template, container)
                rank = index + 1 if rtype == "Worker" else index  # the operator's setPodEnv
                ranks.append(rank)
                env = container_env(container)
                env.update({"MASTER_ADDR": f"{name}-master-0", "MASTER_PORT": str(master_port),
                            "WORLD_SIZE": str(world), "RANK": str(rank), "PYTHONUNBUFFERED": "0"})
                r, calls = self.pods.run(container["command"] + container.get("args", []), env)
                self.assertEqual(r.returncode, 0, f"{where}: {r.stdout}{r.stderr}")
                self.check_train_argv(where, calls[0], container, "multi_worker_mirrored")
                self.check_batch_divides(where, calls[0], world)
                lines = r.stdout.splitlines()
                self.assertEqual(
                    lines[0],
                    f"cluster from torchrun-style variables (RANK={rank}, WORLD_SIZE={world}, "
                    f"MASTER_ADDR={name}-master-0, MASTER_PORT={master_port}); "
                    "TF_CONFIG is not set, no Slurm step, no MPI launcher", where)
                self.assertTrue(lines[1].startswith(f"torchrun-style rank {rank} of {world} (local rank 0); "),
                                f"{where}: {lines[1]}")
                verb = "listens at" if rank == 0 else "connects to"
                self.assertIn(f"this task {verb} {name}-master-0:{master_port} when `meshtrain train` starts",
                              lines[1], where)
                self.assertIn("rank 0 is worker:0, the chief", lines[1], where)
        self.assertEqual(sorted(ranks), list(range(world)))

    # --- Indexed Job + headless Service -------------------------------------

    def test_indexed_job_each_pod_resolves_to_the_cluster(self):
        docs = self.load("indexed-job.yaml")
        service = next(d for d in docs if d["kind"] == "Service")
        job = next(d for d in docs if d["kind"] == "Job")
        name = job["metadata"]["name"]
        spec = job["spec"]
        template = spec["template"]
        pod = template["spec"]
        self.assertEqual(spec["completionMode"], "Indexed")
        self.assertEqual(spec["parallelism"], spec["completions"], "every task must run at once")
        self.assertEqual(service["spec"]["clusterIP"], "None")
        self.assertTrue(service["spec"].get("publishNotReadyAddresses"))
        self.assertEqual(pod["subdomain"], service["metadata"]["name"])
        self.assertEqual(service["spec"]["selector"], {"job-name": name})
        # podFailurePolicy (the API takes it with restartPolicy Never only):
        # exit 2 fails the Job, exit 75 and disruptions do not count.
        self.assertEqual(pod["restartPolicy"], "Never")
        (container,) = containers_of(template)
        rules = spec["podFailurePolicy"]["rules"]
        by_action = {}
        for rule in rules:
            codes = rule.get("onExitCodes")
            if codes:
                self.assertEqual(codes["containerName"], container["name"])
                self.assertEqual(codes["operator"], "In")
                by_action.setdefault(rule["action"], set()).update(codes["values"])
        self.assertEqual(by_action.get("FailJob"), {2})
        self.assertEqual(by_action.get("Ignore"), {75})
        port = next(p["containerPort"] for p in container["ports"] if p["name"] == "meshtrain")
        self.assertIn(port, [p["port"] for p in service["spec"]["ports"]])
        n = spec["completions"]
        # Pod i's host name is <job>-<i>; with the subdomain, <job>-<i>.<service>.
        expected = {("worker", i): f"{name}-{i}.{service['metadata']['name']}:{port}" for i in range(n)}
        for index in range(n):
            where = f"Indexed Job pod {name}-{index}"
            self.check_pod_template(where, template, container, probe_port=port)
            env = container_env(container)
            env["JOB_COMPLETION_INDEX"] = str(index)
            r, calls = self.pods.run(container["command"] + container.get("args", []), env)
            self.assertEqual(r.returncode, 0, f"{where}: {r.stdout}{r.stderr}")
            self.check_train_argv(where, calls[0], container, "multi_worker_mirrored")
            got = parse_check_config(r.stdout)
            self.assertTrue(got["source"].startswith("cluster from TF_CONFIG"), f"{where}: {r.stdout}")
            self.assertEqual(got["tasks"], expected, where)
            self.assertEqual(got["me"], ("worker", index), where)
            self.assertTrue(got["keyed"]["chief"].startswith(f"worker:0 at {expected[('worker', 0)]}"), where)
            self.assertEqual(got["keyed"]["parameter servers"], "none", where)
            self.check_batch_divides(where, calls[0], n)
        # Without the index the wrapper refuses instead of guessing.
        env = container_env(container)
        r, calls = self.pods.run(container["command"] + container.get("args", []), env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("JOB_COMPLETION_INDEX", r.stderr)
        self.assertEqual(calls, [])


SBATCH_LINE = re.compile(r"^#SBATCH\s+--([\w-]+)=(\S+)")


def slurm_script(path):
    """#SBATCH options and the srun command lines (continuations joined) of a batch script."""
    with open(path) as f:
        text = f.read()
    options = {}
    for line in text.splitlines():
        m = SBATCH_LINE.match(line)
        if m:
            options[m.group(1)] = m.group(2)
    joined = text.replace("\\\n", " ")
    sruns = []
    for line in joined.splitlines():
        if line.strip().startswith("srun "):
            words = shlex.split(line.strip(), comments=True)
            ends = [i for i, w in enumerate(words) if w in ("||", "&&", ";", "|")]
            sruns.append(words[:ends[0]] if ends else words)
    return options, sruns


@requires_meshtrain
class SlurmScriptsTest(unittest.TestCase):
    """Each task of the sbatch scripts' steps, given the variables Slurm would set
    for block distribution, resolves to the intended cluster."""

    def run_step(self, path, expect_roles):
        options, sruns = slurm_script(path)
        nodes, per_node = int(options["nodes"]), int(options["ntasks-per-node"])
        train = [s for s in sruns if "train" in s]
        self.assertEqual(len(train), 1, path)
        argv = train[0]
        self.assertIn("--distribution=block", argv)
        mt = argv.index("meshtrain")
        flags = []
        for flag in ("--ps", "--port-base"):
            if flag in argv:
                flags += [flag, flag_value(argv, flag)]
        if "--evaluator" in argv:
            flags.append("--evaluator")
        checks = [s for s in sruns if "check-config" in s]
        self.assertEqual(len(checks), 1, f"{path}: check the cluster before training")
        self.assertEqual(checks[0][checks[0].index("check-config") + 1:], flags,
                         f"{path}: check-config must get train's --ps/--evaluator/--port-base")
        ntasks = nodes * per_node
        hosts = [f"node{n + 1:02d}" for n in range(nodes)]
        port_base = int(flag_value(argv, "--port-base") or 8888)
        roles = {}
        for rank in range(ntasks):
            env = {"PATH": "/usr/bin:/bin", "SLURM_PROCID": str(rank), "SLURM_STEP_ID": "0",
                   "SLURM_NTASKS": str(ntasks), "SLURM_LOCALID": str(rank % per_node),
                   "SLURM_STEP_NODELIST": f"node[01-{nodes:02d}]",
                   "SLURM_STEP_TASKS_PER_NODE": f"{per_node}(x{nodes})"}
            r = subprocess.run([BIN, "check-config"] + flags, env=env, capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 0, f"{path} rank {rank}: {r.stdout}{r.stderr}")
            got = parse_check_config(r.stdout)
            self.assertTrue(got["source"].startswith("cluster from Slurm"), got["source"])
            self.assertEqual(len(got["tasks"]), ntasks)
            address = f"{hosts[rank // per_node]}:{port_base + rank % per_node}"
            self.assertEqual(got["tasks"][got["me"]], address, f"{path} rank {rank}")
            roles[rank] = got["me"]
        self.assertEqual(roles, expect_roles, path)
        workers = sum(1 for role in roles.values() if role[0] in ("worker", "chief"))
        self.assertEqual(global_batch(argv) % workers, 0,
                         f"{path}: global batch {global_batch(argv)} does not divide by {workers} workers")
        self.assertEqual(argv[mt + 1], "train")

    def test_multi_worker_mirrored_sbatch(self):
        self.run_step(os.path.join(SLURM, "multi_worker_mirrored.sbatch"),
                      {0: ("worker", 0), 1: ("worker", 1)})

    def test_parameter_server_sbatch(self):
        self.run_step(os.path.join(SLURM, "parameter_server.sbatch"),
                      {0: ("ps", 0), 1: ("worker", 0), 2: ("worker", 1), 3: ("worker", 2)})

    def test_scripts_parse(self):
        for name in os.listdir(SLURM):
            if name.endswith(".sbatch"):
                r = subprocess.run(["bash", "-n", os.path.join(SLURM, name)], capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, f"{name}: {r.stderr}")


if __name__ == "__main__":
    unittest.main()

"""A secure mesh (docs/security.md): `meshtrain certs` makes a cluster's
credentials; clusters train with mutual TLS on every link; a client without a
certificate, one with another CA's certificate and a plain TCP connection that
sends random bytes are refused on every port a task listens on, while the
cluster trains on undisturbed; a task that serves other hosts in the clear
warns, and --require-tls refuses to start without credentials."""
import os
import re
import socket
import ssl
import subprocess
import time
import unittest

from harness import BIN, CONFIGS, ClusterTestCase, make_cluster

SMALL = os.path.join(CONFIGS, "synthetic_small.json")  # 4096 examples, batch 128
# --threads 1: the same sums in the same order, so runs agree bit for bit.
RUN = ["--config", SMALL, "--threads", "1", "--progress-every", "1s"]
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def certs(out, *extra):
    return subprocess.run([BIN, "certs", "--out", out] + list(extra), capture_output=True,
                          text=True, timeout=60)


def listening_ports(pid):
    """The TCP ports process `pid` listens on (ss from iproute2)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, timeout=10).stdout
    ports = set()
    for line in out.splitlines():
        if f"pid={pid}," in line:
            ports.add(int(line.split()[3].rsplit(":", 1)[1]))
    return sorted(ports)


def tls_probe(port, cert_dir=None, stem="cluster"):
    """Speaks TLS then HTTP/2 to 127.0.0.1:port, with the client certificate
    of `cert_dir` (or none). Returns the first bytes the server answers after
    the handshake, or None when it refused (an alert, a reset, or a close)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    if cert_dir:
        ctx.load_cert_chain(os.path.join(cert_dir, f"{stem}.crt"), os.path.join(cert_dir, f"{stem}.key"))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="meshtrain") as s:
                s.sendall(HTTP2_PREFACE)
                data = s.recv(64)
                return data or None
    except (ssl.SSLError, OSError):
        return None


def plain_probe(port, payload):
    """Sends `payload` over plain TCP; True when the server closed or reset the
    connection within 5 s (it read the bytes and refused them)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(payload)
            while True:
                data = s.recv(4096)
                if not data:
                    return True
    except socket.timeout:
        return False
    except OSError:
        return True


class SecurityTest(ClusterTestCase):

    def setUp(self):
        super().setUp()
        self.creds = os.path.join(self.tmp, "tls")
        made = certs(self.creds)
        self.assertEqual(made.returncode, 0, made.stderr)

    def launch(self, name, extra, workers=2, ps=0, code=0):
        model_dir = os.path.join(self.tmp, name)
        args = ["launch", "--workers", str(workers), "--model-dir", model_dir] + RUN + list(extra)
        if ps:
            args += ["--ps", str(ps)]
        task = self.start(args, name=name)
        self.assert_exit(task, code, timeout=180)
        return (self.summary(model_dir) if code == 0 else None), task

    def test_certs_makes_shared_and_per_task_pairs_and_keeps_an_existing_ca(self):
        for name in ("ca.crt", "ca.key", "cluster.crt", "cluster.key"):
            self.assertTrue(os.path.exists(os.path.join(self.creds, name)), name)
        self.assertEqual(os.stat(os.path.join(self.creds, "cluster.key")).st_mode & 0o777, 0o600)
        again = certs(self.creds, "--tasks", "worker:0")
        self.assertEqual(again.returncode, 1)
        self.assertIn("already holds a cluster CA", again.stderr)
        self.assertIn("--add", again.stderr)
        added = certs(self.creds, "--tasks", "worker:0,ps:0", "--add")
        self.assertEqual(added.returncode, 0, added.stderr)
        self.assertIn("worker-0.crt", added.stdout)
        bad = certs(os.path.join(self.tmp, "bad"), "--tasks", "worker:0,../x")
        self.assertEqual(bad.returncode, 1)
        self.assertIn("is not a task name", bad.stderr)
        tf = {"cluster": {"worker": ["node-a:2222", "198.18.0.2:2222"]}, "task": {"type": "worker", "index": 0}}
        per_host = subprocess.run([BIN, "certs", "--out", os.path.join(self.tmp, "tf"), "--from-tf-config"],
                                  capture_output=True, text=True, timeout=60,
                                  env=dict(os.environ, TF_CONFIG=__import__("json").dumps(tf)))
        self.assertEqual(per_host.returncode, 0, per_host.stderr)
        text = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                               os.path.join(self.tmp, "tf", "worker-1.crt")],
                              capture_output=True, text=True).stdout
        self.assertIn("DNS:meshtrain", text)
        self.assertIn("IP Address:198.18.0.2", text)

    def test_workers_train_with_tls_and_match_a_plain_run(self):
        plain, _ = self.launch("plain", ["--strategy", "multi_worker_mirrored", "--rpc-layer", "grpc"])
        for layer, encryption in (("grpc", "on"), ("tcp", "on"), ("tcp", "off")):
            secure, task = self.launch(f"tls-{layer}-{encryption}", [
                "--strategy", "multi_worker_mirrored", "--rpc-layer", layer, "--tls-dir", self.creds,
                "--data-path-encryption", encryption])
            self.assertIn("security: mutual TLS with", task.output())
            self.assertEqual(secure["communication"], f"ring over {layer}")
            self.assertEqual(secure["final_step"], plain["final_step"])
            self.assertEqual(secure["param_checksums"], plain["param_checksums"])

    def test_parameter_server_trains_with_tls(self):
        for layer in ("grpc", "tcp", "auto"):
            summary, task = self.launch(f"ps-{layer}", ["--strategy", "parameter_server", "--rpc-layer", layer,
                                                        "--tls-dir", self.creds], ps=1)
            self.assertEqual(summary["strategy"], "parameter_server")
            self.assertIn("[ps:0]", task.output())
            self.assertIn("security: mutual TLS with", task.output())

    def test_outsiders_are_refused_on_every_port_and_the_cluster_trains_on(self):
        other = os.path.join(self.tmp, "other")
        self.assertEqual(certs(other).returncode, 0)
        baseline, _ = self.launch("baseline", ["--strategy", "multi_worker_mirrored", "--rpc-layer", "tcp",
                                               "--tls-dir", self.creds, "--epochs", "20"])
        cluster = make_cluster(workers=2)
        model_dir = os.path.join(self.tmp, "attacked")
        args = RUN + ["--strategy", "multi_worker_mirrored", "--rpc-layer", "tcp", "--tls-dir", self.creds,
                      "--epochs", "20", "--model-dir", model_dir]
        tasks = [self.start_cluster_task(cluster, "worker", i, args) for i in range(2)]
        self.assertTrue(tasks[0].wait_for_line(lambda l: "startup: all 2 tasks" in l, 60), tasks[0].output())
        self.assertTrue(tasks[0].wait_for_line(lambda l: re.search(r"epoch \d+", l) or "step" in l, 60))
        probed = 0
        for task in tasks:
            ports = listening_ports(task.proc.pid)
            self.assertTrue(ports, f"{task.name} listens on no port")
            grpc_port = int(cluster["worker"][int(task.name[-1])].rsplit(":", 1)[1])
            self.assertIn(grpc_port, ports)
            # The control: a peer of the cluster gets past the handshake and
            # hears HTTP/2 back, so the refusals below are the certificates'.
            self.assertIsNotNone(tls_probe(grpc_port, self.creds), "the cluster's own certificate was refused")
            for port in ports:
                self.assertIsNone(tls_probe(port), f"{task.name}:{port} served a client without a certificate")
                self.assertIsNone(tls_probe(port, other), f"{task.name}:{port} served another CA's client")
                self.assertTrue(plain_probe(port, os.urandom(4096)), f"{task.name}:{port} kept random bytes open")
                self.assertTrue(plain_probe(port, HTTP2_PREFACE), f"{task.name}:{port} kept plaintext HTTP/2 open")
                probed += 1
        for task in tasks:
            self.assert_exit(task, 0, timeout=180)
        # Both gRPC ports. A tcp data path's listener closes once its ring has
        # connected; outsiders racing that set-up are refused too
        # (tests/unit/transport/tcp_transport_tls_test.cc).
        self.assertGreaterEqual(probed, 2)
        summary = self.summary(model_dir)
        self.assertEqual(summary["final_step"], baseline["final_step"])
        self.assertEqual(summary["param_checksums"], baseline["param_checksums"])

    def test_tasks_that_disagree_on_data_path_encryption_are_refused(self):
        # The tcp links carry the mesh's TLS settings: a peer that would send
        # in the clear where this task encrypts never gets a stream.
        cluster = make_cluster(workers=2)
        tasks = [self.start_cluster_task(cluster, "worker", i, RUN + [
            "--strategy", "multi_worker_mirrored", "--rpc-layer", "tcp", "--tls-dir", self.creds,
            "--data-path-encryption", ("on", "off")[i], "--recovery-timeout", "0s"]) for i in range(2)]
        for task in tasks:
            self.assertNotEqual(task.wait(120), 0, task.output())
        out = tasks[0].output() + tasks[1].output()
        self.assertIn("data-path encryption differs between the ranks", out)

    def test_bad_credentials_and_require_tls_stop_a_task_with_the_fix(self):
        empty = os.path.join(self.tmp, "empty")
        os.makedirs(empty)
        _, missing = self.launch("missing", ["--tls-dir", empty], workers=1, code=1)
        self.assertIn("ca.crt is missing", missing.output())
        self.assertIn("meshtrain certs --out", missing.output())
        cluster = make_cluster(workers=1)
        refused = self.start_cluster_task(cluster, "worker", 0, RUN + ["--require-tls"])
        self.assert_exit(refused, 1, timeout=60)
        self.assertIn("--require-tls: this task has no credentials", refused.output())
        # Serving every interface in the clear is allowed, with a warning.
        open_task = self.start_cluster_task(cluster, "worker", 0, RUN + ["--bind-host", "0.0.0.0", "--max-steps", "5"])
        self.assert_exit(open_task, 0, timeout=60)
        self.assertIn("without TLS: any host that reaches its ports can abort the cluster", open_task.output())
        loopback = self.start_cluster_task(cluster, "worker", 0, RUN + ["--max-steps", "5"])
        self.assert_exit(loopback, 0, timeout=60)
        self.assertNotIn("without TLS", loopback.output())
        bad_flag = self.start_cluster_task(cluster, "worker", 0, RUN + ["--tls-dir", self.creds,
                                                                        "--data-path-encryption", "maybe"])
        self.assert_exit(bad_flag, 1, timeout=60)
        self.assertIn("--data-path-encryption 'maybe': say on", bad_flag.output())


if __name__ == "__main__":
    unittest.main()

"""Tests across emulated hosts: each task in a network namespace of its own host
(scripts/emulate-hosts.sh), behind a link shaped to a rate, with its own hostname.

A MultiHostTestCase class brings HOSTS hosts up once for its tests and down
after them; a test places tasks on hosts by number (1-based) and talks to them
as the other integration tests do. Under CI=true a machine where namespaces
cannot be made fails these tests with the reason; elsewhere they skip.
"""
import os
import sys

from harness import SOURCE_DIR, ClusterTestCase, requires, tf_config

sys.path.insert(0, os.path.join(SOURCE_DIR, "scripts"))
from emulated_hosts import EmulatedHosts, available  # noqa: E402

_AVAILABLE, _WHY = available()
requires_hosts = requires(_AVAILABLE, f"emulated hosts: {_WHY}")

FIRST_PORT = 2222


def placed_cluster(hosts, **jobs):
    """A cluster spec from a placement: placed_cluster(hosts, worker=[1, 2], ps=[3]).
    Tasks of one host get ports 2222, 2223, ... in the order given."""
    next_port = {}
    cluster = {}
    for job, on in jobs.items():
        cluster[job] = []
        for host in on:
            port = next_port.get(host, FIRST_PORT)
            next_port[host] = port + 1
            cluster[job].append(f"{hosts.address(host)}:{port}")
    return cluster


def host_of(cluster, job, index):
    """The emulated host (1-based) a task of `cluster` is placed on."""
    return int(cluster[job][index].split(":")[0].rsplit(".", 1)[1])


class MultiHostTestCase(ClusterTestCase):
    HOSTS = 2
    RATE = "1gbit"
    hosts = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hosts = EmulatedHosts(cls.HOSTS, rate=cls.RATE)
        cls.hosts.up()

    @classmethod
    def tearDownClass(cls):
        if cls.hosts is not None:
            cls.hosts.down()
        super().tearDownClass()

    def tearDown(self):
        super().tearDown()
        # A test that reshaped or pulled a link leaves the next one a clean network.
        for i in range(1, self.HOSTS + 1):
            self.hosts.link(i, up=True)
            self.hosts.set_rate(i, self.RATE)

    def cluster(self, **jobs):
        return placed_cluster(self.hosts, **jobs)

    def start_task(self, cluster, job, index, args, command="train"):
        """`meshtrain COMMAND args` as task job:index, on the host the cluster places it."""
        host = host_of(cluster, job, index)
        return self.start([command] + list(args), env={"TF_CONFIG": tf_config(cluster, job, index)},
                          name=f"{job}:{index}", wrapper=self.hosts.command(host, []))

    def start_all(self, cluster, args, command="train"):
        return {f"{job}:{i}": self.start_task(cluster, job, i, args, command)
                for job, addresses in cluster.items() for i in range(len(addresses))}

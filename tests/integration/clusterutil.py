"""A local Redis Cluster for the tests: six redis-servers on loopback (three
primaries, three replicas), each in its own folder with its own nodes.conf,
joined by redis-cli --cluster create. cluster-node-timeout is short so that
failovers take a couple of seconds."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import redis

from harness import RedisServer, wait_until

NODE_TIMEOUT_MS = 2000


class Cluster:
    def __init__(self, nodes=6, replicas=1):
        self.dir = Path(tempfile.mkdtemp(prefix="prc-"))
        self.nodes = []
        try:
            for i in range(nodes):
                workdir = self.dir / f"node{i}"
                workdir.mkdir()
                srv = RedisServer(workdir, ["--cluster-enabled", "yes",
                                            "--cluster-config-file", str(workdir / "nodes.conf"),
                                            "--cluster-node-timeout", str(NODE_TIMEOUT_MS)])
                self.nodes.append(srv)
                srv.start()
            self.cli("--cluster", "create",
                     *[f"127.0.0.1:{n.port}" for n in self.nodes],
                     "--cluster-replicas", str(replicas), "--cluster-yes")
            self.wait_ok()
        except BaseException:
            self.close()
            raise

    def cli(self, *args, timeout=60):
        p = subprocess.run(["redis-cli"] + list(args), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError(f"redis-cli {args}: {p.stdout.decode()}{p.stderr.decode()}")
        return p.stdout.decode()

    def live(self):
        return [n for n in self.nodes if n.proc is not None]

    def wait_ok(self, timeout=30):
        """Every live node says cluster_state:ok and they agree on the slot owners."""
        def ok():
            maps = []
            for n in self.live():
                c = n.client(socket_timeout=2)
                try:
                    if b"cluster_state:ok" not in c.execute_command("CLUSTER", "INFO"):
                        return False
                    maps.append(sorted((s[0], s[1], s[2][1]) for s in
                                       c.execute_command("CLUSTER", "SLOTS")))
                except redis.RedisError:
                    return False
                finally:
                    c.close()
            return all(m == maps[0] for m in maps)
        wait_until(ok, timeout, interval=0.1, what="the cluster to be ok and agree")

    @property
    def seeds(self):
        return ",".join(f"127.0.0.1:{n.port}" for n in self.live())

    def url(self, seeds=None, scheme="redis+cluster"):
        return f"{scheme}://{seeds or self.seeds}"

    def keyslot(self, key):
        c = self.live()[0].client()
        try:
            return c.execute_command("CLUSTER", "KEYSLOT", key)
        finally:
            c.close()

    def owner(self, key):
        """The RedisServer that is the primary of key's slot, by a live node's map."""
        slot = self.keyslot(key)
        c = self.live()[0].client()
        try:
            for lo, hi, primary, *_ in c.execute_command("CLUSTER", "SLOTS"):
                if lo <= slot <= hi:
                    return self.by_port(primary[1])
        finally:
            c.close()
        raise AssertionError(f"slot {slot} has no owner")

    def replica_of(self, primary):
        c = primary.client()
        try:
            for r in c.info("replication").values():
                if isinstance(r, dict) and "port" in r:
                    return self.by_port(int(r["port"]))
        finally:
            c.close()
        raise AssertionError(f"{primary.port} has no replica")

    def failover_to(self, srv, key, timeout=20):
        """CLUSTER FAILOVER on the replica srv, once in sync; until it serves key's slot."""
        c = srv.client()
        try:
            wait_until(lambda: c.info("replication").get("master_link_status") == "up",
                       timeout, interval=0.1, what=f"{srv.port} in sync with its primary")
            c.execute_command("CLUSTER", "FAILOVER")
            wait_until(lambda: c.info("replication").get("role") == "master"
                       and self.owner(key) is srv, timeout, interval=0.1,
                       what=f"{srv.port} promoted")
        finally:
            c.close()

    def by_port(self, port):
        for n in self.nodes:
            if n.port == int(port):
                return n
        raise AssertionError(f"no node on port {port}")

    def node_id(self, srv):
        c = srv.client()
        try:
            return c.execute_command("CLUSTER", "MYID").decode()
        finally:
            c.close()

    def close(self):
        for n in self.nodes:
            n.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

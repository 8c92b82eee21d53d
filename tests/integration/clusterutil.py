"""A local Redis Cluster for the tests: six redis-servers on loopback (three
primaries, three replicas), each in its own folder with its own nodes.conf,
joined by redis-cli --cluster create. cluster-node-timeout is short so that
failovers take a couple of seconds."""

import re
import shutil
import time
import subprocess
import tempfile
from pathlib import Path

import redis

from harness import RedisServer, free_port, wait_until
from tlsutil import TlsRedisServer

NODE_TIMEOUT_MS = 2000


class Cluster:
    """certs: a tlsutil.Certs, for TLS on every node's port and on the cluster bus;
    extra: more redis-server arguments for every node (e.g. an ACL user)."""

    def __init__(self, nodes=6, replicas=1, certs=None, extra=()):
        self.dir = Path(tempfile.mkdtemp(prefix="prc-"))
        self.nodes = []
        self.certs = certs
        if certs:
            certs.cert("node", "ca", "localhost", ("DNS:localhost", "IP:127.0.0.1"),
                       usage="serverAuth,clientAuth")
        try:
            for i in range(nodes):
                self.nodes.append(self._node(i, list(extra)))
            tls = ["--tls", "--cacert", certs.path("ca.crt")] if certs else []
            self.cli(*tls, "--cluster", "create",
                     *[f"127.0.0.1:{n.port}" for n in self.nodes],
                     "--cluster-replicas", str(replicas), "--cluster-yes")
            self.wait_ok()
        except BaseException:
            self.close()
            raise

    def _node(self, i, extra):
        workdir = self.dir / f"node{i}"
        workdir.mkdir()
        # Its own bus port: the default (port + 10000) may pass 65535.
        args = ["--cluster-enabled", "yes", "--cluster-config-file", str(workdir / "nodes.conf"),
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                "--cluster-port", str(free_port())] + extra
        if self.certs:
            # A node's certificate is also its client certificate on the bus.
            srv = TlsRedisServer(workdir, self.certs, cert="node", extra_args=args + [
                "--tls-cluster", "yes", "--tls-replication", "yes"])
        else:
            srv = RedisServer(workdir, args)
        srv.start()
        return srv

    def cli(self, *args, timeout=60):
        p = subprocess.run(["redis-cli"] + list(args), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError(f"redis-cli {args}: {p.stdout.decode()}{p.stderr.decode()}")
        return p.stdout.decode()

    def live(self):
        return [n for n in self.nodes if n.proc is not None]

    def wait_ok(self, timeout=30):
        """Every live node says cluster_state:ok, and they agree on the slot owners and on
        the current epoch (a replica elected while it lags behind a failover just made may
        take the epoch its old primary holds, and the others then never accept it)."""
        def ok():
            maps = []
            for n in self.live():
                c = n.client(socket_timeout=2)
                try:
                    info = c.execute_command("CLUSTER", "INFO").decode()
                    if "cluster_state:ok" not in info:
                        return False
                    epoch = re.search(r"cluster_current_epoch:(\d+)", info).group(1)
                    maps.append((epoch, sorted((s[0], s[1], s[2][1]) for s in
                                               c.execute_command("CLUSTER", "SLOTS"))))
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

    def failover_to(self, srv, key, *how, attempts=4):
        """CLUSTER FAILOVER [how] on the replica srv, once in sync, until it serves key's
        slot. A manual failover that gets no majority is abandoned by Redis after 5 s
        (the primaries vote for one failover of a primary per 2 node timeouts), its
        primary's clients paused meanwhile: ask again. TAKEOVER needs no votes."""
        c = srv.client()

        def promoted():
            return c.info("replication").get("role") == "master" and self.owner(key) is srv
        try:
            for attempt in range(attempts):
                wait_until(lambda: c.info("replication").get("master_link_status") == "up",
                           20, interval=0.1, what=f"{srv.port} in sync with its primary")
                c.execute_command("CLUSTER", "FAILOVER", *how)
                try:
                    wait_until(promoted, 7, interval=0.1, what=f"{srv.port} promoted")
                    return
                except AssertionError:
                    if attempt == attempts - 1:
                        raise
        finally:
            c.close()

    def clear_slot(self, key):
        """Delete every key in key's slot: a test starts from an empty slot."""
        c = self.owner(key).client()
        try:
            keys = c.execute_command("CLUSTER", "GETKEYSINSLOT", self.keyslot(key), 1000000)
            if keys:
                c.delete(*keys)
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


class Router:
    """A realtime server's view of one slot through a Cluster: follows MOVED,
    ASK (ASKING, then the command, on the node named) and TRYAGAIN."""

    def __init__(self, cluster, node, realtime):
        self.cluster = cluster
        self.node = node
        self.realtime = realtime      # Realtime(client, online=..., prefix=...) factory
        self.redirects = {"MOVED": 0, "ASK": 0, "TRYAGAIN": 0}

    def call(self, method, *args):
        deadline = time.monotonic() + 20     # a migration's pauses add up
        while time.monotonic() < deadline:
            c = self.node.client()
            try:
                return getattr(self.realtime(c), method)(*args)
            except redis.ResponseError as e:
                code, _, rest = str(e).partition(" ")
                if "non local key" in str(e):     # refused whole mid-migration: as TRYAGAIN
                    code = "TRYAGAIN"
                if code not in self.redirects:
                    raise
                self.redirects[code] += 1
                if code == "MOVED":
                    self.node = self.cluster.by_port(rest.rsplit(":", 1)[1])
                elif code == "ASK":
                    if self._asking(self.cluster.by_port(rest.rsplit(":", 1)[1]), method,
                                    args):
                        return None
                else:
                    time.sleep(0.005)
            finally:
                c.close()
        raise AssertionError(f"{method}{args}: redirected for ever")

    def _asking(self, node, method, args):
        c = node.client()
        try:
            pipe = c.pipeline(transaction=False)
            pipe.execute_command("ASKING")
            getattr(self.realtime(c), method)(*args, client=pipe)
            pipe.execute()
            return True
        except redis.ResponseError as e:
            # A script on the importing node that meets a key not moved yet is
            # refused whole ("non local key"): as TRYAGAIN, try again.
            if "TRYAGAIN" not in str(e) and "non local key" not in str(e):
                raise
            self.redirects["TRYAGAIN"] += 1
            time.sleep(0.005)
            return False
        finally:
            c.close()


def migrate_slot(cluster, slot, src, dst, batch=5, pause=0.05, during=None):
    """Move slot from src to dst as redis-cli --cluster reshard does, batch keys
    per MIGRATE with a pause between; during(src, dst, keys) runs while it is half done, with the keys
    just moved."""
    s, d = src.client(), dst.client()
    sid, did = cluster.node_id(src), cluster.node_id(dst)
    try:
        d.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", sid)
        s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", did)
        moved = 0
        while True:
            keys = s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch)
            if not keys:
                break
            s.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *keys)
            moved += 1
            if moved == 2 and during is not None:
                during(src, dst, keys)
            time.sleep(pause)
        d.execute_command("CLUSTER", "SETSLOT", slot, "NODE", did)
        s.execute_command("CLUSTER", "SETSLOT", slot, "NODE", did)
        for n in cluster.live():
            c = n.client()
            try:
                if c.info("replication").get("role") == "master":
                    c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", did)
            finally:
                c.close()
    finally:
        s.close()
        d.close()

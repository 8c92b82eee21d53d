"""Redis Sentinel: discovery, failover, the Sentinel credentials, -t, metrics.

One primary, one replica and three Sentinel processes on loopback, shared by
the module (the data nodes want a password, and so do the Sentinels, each
their own). Tests that need a world of their own (a Sentinel that names a
replica, Sentinels that come up late) start small ones.
"""

import calendar
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import redis

from harness import (EX_CONFIG, EX_OK, EX_UNAVAILABLE, LIVE_ONLINE_CHECK, ONLINE, Realtime,
                     RedisServer, closed_port, free_port, hold_for, wait_until)
from test_metrics import scrape
from tlsutil import TlsRedisServer, make_pki

SERVICE = "mymaster"
DATA_PW = "data-secret"
SENTINEL_PW = "sentinel-secret"


def sentinel_conf(port, workdir, monitors, quorum=2, down_after=1000, password=SENTINEL_PW,
                  auth_pass=DATA_PW):
    """A Sentinel's config file; Sentinel rewrites it, so each gets its own."""
    lines = [f"port {port}", "bind 127.0.0.1", f"dir {workdir}",
             f"logfile {workdir}/sentinel.log", "sentinel resolve-hostnames no"]
    if password:
        lines += [f"requirepass {password}", f"sentinel sentinel-pass {password}"]
    for name, addr in monitors:
        lines += [f"sentinel monitor {name} 127.0.0.1 {addr} {quorum}",
                  f"sentinel down-after-milliseconds {name} {down_after}",
                  f"sentinel failover-timeout {name} 4000",
                  f"sentinel parallel-syncs {name} 1"]
        if auth_pass:
            lines.append(f"sentinel auth-pass {name} {auth_pass}")
    path = Path(workdir) / "sentinel.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


class Sentinel:
    """One redis-server --sentinel process with its own folder and config file."""

    def __init__(self, workdir, port, monitors, **kw):
        self.dir = Path(workdir)
        self.dir.mkdir(exist_ok=True)
        self.port = port
        self.password = kw.get("password", SENTINEL_PW)
        self.conf = sentinel_conf(port, self.dir, monitors, **kw)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["redis-server", str(self.conf), "--sentinel"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until(self._answers, 10, what=f"sentinel on {self.port}")

    def _answers(self):
        try:
            return self.client().ping()
        except (redis.ConnectionError, redis.ResponseError):
            return False

    def client(self):
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password,
                           socket_timeout=5, decode_responses=True)

    def primary(self, service=SERVICE):
        host, port = self.client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", service)
        return f"{host}:{port}"

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"


def data_client(port):
    return redis.Redis(host="127.0.0.1", port=port, password=DATA_PW, socket_timeout=10)


def password_nodes(folder, nodes, n=2):
    """Start n redis-servers in folder/node<i>, appended to nodes as each
    starts (for the caller's cleanup), each wanting DATA_PW and using it to
    replicate."""
    for i in range(n):
        (folder / f"node{i}").mkdir()
        srv = RedisServer(folder / f"node{i}")
        nodes.append(srv)
        srv.start()
        c = srv.client()
        c.config_set("masterauth", DATA_PW)
        c.config_set("requirepass", DATA_PW)
        c.close()
    return nodes


def sentinels_settled(sentinels):
    """Each Sentinel knows the others and the one replica, and sees the primary up."""
    for s in sentinels:
        m = s.client().execute_command("SENTINEL", "MASTER", SERVICE)
        m = dict(zip(m[::2], m[1::2]))
        if (int(m["num-other-sentinels"]) != len(sentinels) - 1 or int(m["num-slaves"]) != 1
                or "s_down" in m["flags"] or "o_down" in m["flags"]):
            return False
    return True


class Cluster:
    """Primary, replica, three Sentinels; any node may be the primary after a failover."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="prt-sentinel-"))
        self.nodes, self.sentinels = password_nodes(self.dir, []), []
        data_client(self.nodes[1].port).execute_command(
            "REPLICAOF", "127.0.0.1", str(self.nodes[0].port))
        for i in range(3):
            s = Sentinel(self.dir / f"sentinel{i}", free_port(), [(SERVICE, self.nodes[0].port)])
            self.sentinels.append(s)
            s.start()
        self.wait_stable()

    def url(self, sentinels=None, service=SERVICE, scheme="redis+sentinel"):
        hosts = ",".join(sentinels or [s.addr for s in self.sentinels])
        return f"{scheme}://:{DATA_PW}@{hosts}/{service}/0"

    def primary_port(self):
        return int(self.sentinels[0].primary().split(":")[1])

    def primary(self):
        return data_client(self.primary_port())

    def wait_stable(self, timeout=40):
        """Sentinels agree, know each other and the replica; the replica is in sync."""
        def stable():
            try:
                addrs = {s.primary() for s in self.sentinels}
                if len(addrs) != 1:
                    return False
                port = int(addrs.pop().split(":")[1])
                other = next(n.port for n in self.nodes if n.port != port)
                rep = data_client(other)
                if rep.info("replication")["role"] != "slave":
                    # Sentinel converts the old primary after a while; do it now.
                    rep.execute_command("REPLICAOF", "127.0.0.1", str(port))
                    return False
                if rep.info("replication").get("master_link_status") != "up":
                    return False
                return sentinels_settled(self.sentinels)
            except (redis.ConnectionError, redis.ResponseError, redis.TimeoutError):
                return False
        wait_until(stable, timeout, interval=0.2, what="the sentinel cluster to be stable")

    def close(self):
        for s in self.sentinels:
            s.stop()
        for n in self.nodes:
            n.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def cl(cluster, bare):
    """The shared cluster, stable, with an empty data set, and a per-test harness."""
    cluster.wait_stable()
    cluster.primary().flushall()
    return cluster


def run_conf(bare, cl, url=None, settings=None):
    conf = {"sentinel.password": SENTINEL_PW}
    conf.update(settings or {})
    conf = {k: v for k, v in conf.items() if v is not None}
    return bare.config(conf, url=url or cl.url(), mode=0o600)


def seed(r, live, stale):
    rt = Realtime(r)
    rt.connect_many(live + stale)
    rt.crash_many(stale)
    return rt


def endpoint_of(port):
    try:
        m = scrape(port)
    except OSError:
        return None
    for k, v in m.items():
        if k.startswith("presence_reaper_redis_endpoint_info") and v == 1:
            return dict(re.findall(r'(\w+)="([^"]*)"', k))
    return None


LIVE = [b"live-%d" % i for i in range(5)]
STALE = [b"stale-%d" % i for i in range(3)]


# --- discovery ------------------------------------------------------------------

def test_once_reaps_through_the_sentinel_url(cl, bare):
    r = cl.primary()
    seed(r, LIVE, STALE)
    rc, _, err = bare.run(["-c", run_conf(bare, cl), "--once"])
    assert rc == EX_OK, err
    assert set(r.smembers(ONLINE)) == set(LIVE)
    assert f"redis endpoint: 127.0.0.1:{cl.primary_port()}, primary of mymaster" in err, err
    assert DATA_PW not in err and SENTINEL_PW not in err


def test_loop_reaps_and_the_metrics_name_the_primary(cl, bare):
    r = cl.primary()
    seed(r, LIVE, STALE)
    port = free_port()
    d = bare.start(["-c", run_conf(bare, cl, settings={"metrics.listen": f"127.0.0.1:{port}"})],
                   env={"POD_NAME": "s-1"})
    d.wait_cycles(1, 15)
    assert set(r.smembers(ONLINE)) == set(LIVE)
    ep = wait_until(lambda: endpoint_of(port), 5, what="the endpoint metric")
    assert ep == {"address": f"127.0.0.1:{cl.primary_port()}", "tls": "false",
                  "role": "primary"}, ep
    assert scrape(port)["presence_reaper_redis_failovers_total"] == 0
    d.wait_log(r"listening for \+switch-master on sentinel 127\.0\.0\.1:\d+", 5)
    # --status through the Sentinels: the primary they name, the leader's summary.
    rc, out, err = bare.run(["-c", run_conf(bare, cl), "--status"])
    assert rc == 0, out + err.encode()
    assert f"redis: 127.0.0.1:{cl.primary_port()}\n".encode() in out, out
    assert re.search(rb"^presence-reaper OK: leader s-1:", out), out


def test_check_config_reports_each_sentinel_and_whether_they_agree(cl, bare):
    dead = f"127.0.0.1:{closed_port()}"
    url = cl.url([s.addr for s in cl.sentinels] + [dead])
    rc, out, err = bare.run(["-t", "-c", run_conf(bare, cl, url=url)])
    out = out.decode()
    assert rc == EX_OK, err
    primary = f"127.0.0.1:{cl.primary_port()}"
    for s in cl.sentinels:
        assert f"# sentinel {s.addr}: primary {primary}\n" in out, out
    assert re.search(rf"# sentinel {dead}: no answer: cannot connect", out), out
    assert "# sentinels: 3 of 4 answered; they agree\n" in out, out
    assert "# sentinel password: set (redacted)" in out
    assert SENTINEL_PW not in out + err and DATA_PW not in out + err


def test_check_config_says_when_the_sentinels_disagree(tmp_path, bare):
    a, b = RedisServer(tmp_path / "a"), RedisServer(tmp_path / "b")
    sents = []
    try:
        for srv in (a, b):
            srv.dir.mkdir()
            srv.start()
        for srv in (a, b):
            s = Sentinel(tmp_path / f"s-{srv.port}", free_port(), [(SERVICE, srv.port)],
                         quorum=1, down_after=60000, password=None, auth_pass=None)
            sents.append(s)
            s.start()
        url = "redis+sentinel://" + ",".join(s.addr for s in sents) + "/mymaster"
        rc, out, _ = bare.run(["-t", "-c", bare.config(url=url)])
        out = out.decode()
        assert rc == EX_OK
        assert f"# sentinel {sents[0].addr}: primary 127.0.0.1:{a.port}" in out, out
        assert f"# sentinel {sents[1].addr}: primary 127.0.0.1:{b.port}" in out, out
        assert "2 of 2 answered; they DISAGREE on the primary" in out, out
    finally:
        for s in sents:
            s.stop()
        a.stop()
        b.stop()


def test_a_sentinel_naming_a_replica_is_passed_over(tmp_path, bare):
    """S1 names a node that ROLE shows to be a replica; S2 names the real primary."""
    nodes = {n: RedisServer(tmp_path / n) for n in ("primary", "other", "replica")}
    sents = []
    try:
        for srv in nodes.values():
            srv.dir.mkdir()
            srv.start()
        nodes["replica"].client().execute_command("REPLICAOF", "127.0.0.1",
                                                  str(nodes["other"].port))
        seed(nodes["primary"].client(), LIVE, STALE)
        for target in ("replica", "primary"):
            s = Sentinel(tmp_path / f"s-{target}", free_port(), [(SERVICE, nodes[target].port)],
                         quorum=1, down_after=60000, password=None, auth_pass=None)
            sents.append(s)
            s.start()
        only_replica = f"redis+sentinel://{sents[0].addr}/mymaster"
        rc, _, err = bare.run(["-c", bare.config(url=only_replica), "--once"])
        assert rc == EX_UNAVAILABLE, err
        assert re.search(rf"sentinel {sents[0].addr} names 127\.0\.0\.1:{nodes['replica'].port}: "
                         r"ROLE says slave, not master", err), err

        both = "redis+sentinel://" + ",".join(s.addr for s in sents) + "/mymaster"
        rc, _, err = bare.run(["-c", bare.config(url=both), "--once"])
        assert rc == EX_OK, err
        assert "ROLE says slave" in err and "sentinels passed over" in err, err
        assert set(nodes["primary"].client().smembers(ONLINE)) == set(LIVE)
        assert nodes["replica"].client().scard(ONLINE) == 0
    finally:
        for s in sents:
            s.stop()
        for srv in nodes.values():
            srv.stop()


# --- credentials and bad input ------------------------------------------------------

def test_wrong_sentinel_password_is_a_clear_configuration_error(cl, bare):
    conf = run_conf(bare, cl, settings={"sentinel.password": "not-the-password"})
    rc, _, err = bare.run(["-c", conf, "--once"])
    assert rc == EX_CONFIG, err
    assert re.search(r"sentinel 127\.0\.0\.1:\d+: authentication failed: WRONGPASS", err), err
    assert "not-the-password" not in err and DATA_PW not in err

    # Without one, the Sentinels say they want it.
    rc, _, err = bare.run(["-c", run_conf(bare, cl, settings={"sentinel.password": None}),
                           "--once"])
    assert rc == EX_CONFIG, err
    assert "NOAUTH" in err, err


def test_wrong_sentinel_password_in_the_loop_is_said_once_and_retried(cl, bare):
    conf = run_conf(bare, cl, settings={"sentinel.password": "not-the-password"})
    d = bare.start(["-c", conf, "-v"], env={"POD_NAME": "s-pw"})
    wait_until(lambda: d.count(r"connect attempt \d+ failed") >= 3, 20,
               what="three more attempts", alive=[d])
    assert d.count(r"error: .*authentication failed: WRONGPASS") == 1, d.stderr()


def test_sentinel_password_from_a_file_and_from_the_environment(cl, bare, tmp_path):
    r = cl.primary()
    seed(r, LIVE, STALE)
    pwfile = tmp_path / "sentinel-pw"
    pwfile.write_text(SENTINEL_PW + "\n")
    pwfile.chmod(0o600)
    conf = run_conf(bare, cl, settings={"sentinel.password": None,
                                        "sentinel.password_file": str(pwfile)})
    rc, _, err = bare.run(["-c", conf, "--once"])
    assert rc == EX_OK, err
    assert set(r.smembers(ONLINE)) == set(LIVE)

    conf = run_conf(bare, cl, settings={"sentinel.password": "wrong"})
    rc, _, err = bare.run(["-c", conf, "--once"],
                          env={"PRESENCE_REAPER_SENTINEL_PASSWORD": SENTINEL_PW})
    assert rc == EX_OK, err


def test_sentinel_password_and_password_file_together_are_refused(bare, tmp_path):
    pwfile = tmp_path / "pw"
    pwfile.write_text("x\n")
    pwfile.chmod(0o600)
    conf = bare.config({"sentinel.password": "x", "sentinel.password_file": str(pwfile)},
                       url="redis+sentinel://127.0.0.1/mymaster")
    rc, _, err = bare.run(["-t", "-c", conf])
    assert rc == EX_CONFIG
    assert "sentinel.password_file: sentinel.password is set too; keep one" in err, err


@pytest.mark.parametrize("url,says", [
    ("redis+sentinel://127.0.0.1", "sentinel URL needs a service name"),
    ("redis+sentinel://127.0.0.1,/mymaster", "bad or missing host"),
    ("redis+sentinel://127.0.0.1:99999/mymaster", "bad port"),
    ("redis+sentinel://127.0.0.1/mymaster/x", "bad database number"),
    ("redis+sentinel://" + ",".join(["h"] * 17) + "/mymaster", "more than 16 sentinels"),
])
def test_sentinel_url_errors_exit_78(bare, url, says):
    rc, _, err = bare.run(["-t", "--redis-url", url, "-c", "/dev/null"])
    assert rc == EX_CONFIG, err
    assert f"--redis-url: redis.url: {says}" in err, err


class TlsSentinel(Sentinel):
    """A Sentinel that speaks only TLS, to clients and to the nodes it watches."""

    def __init__(self, workdir, port, monitors, certs):
        super().__init__(workdir, port, monitors, quorum=1, down_after=60000, password=None,
                         auth_pass=None)
        lines = self.conf.read_text().replace(f"port {port}\n", "port 0\n")
        lines += "".join(f"{k} {v}\n" for k, v in (
            ("tls-port", port), ("tls-cert-file", certs.path("server.crt")),
            ("tls-key-file", certs.path("server.key")),
            ("tls-ca-cert-file", certs.path("ca.crt")),
            ("tls-auth-clients", "no"), ("tls-replication", "yes")))
        self.conf.write_text(lines)
        self.certs = certs

    def client(self):
        return redis.Redis(host="127.0.0.1", port=self.port, ssl=True,
                           ssl_ca_certs=self.certs.path("ca.crt"), socket_timeout=5,
                           decode_responses=True)


@pytest.fixture
def tls_world(tmp_path):
    """A TLS-only primary watched by a TLS-only Sentinel."""
    certs = make_pki(tmp_path / "pki")
    srv = TlsRedisServer(tmp_path / "data", certs)
    srv.dir.mkdir()
    srv.start()
    s = TlsSentinel(tmp_path / "s", free_port(), [(SERVICE, srv.port)], certs)
    try:
        s.start()
        yield srv, s, certs
    finally:
        s.stop()
        srv.stop()


def tls_once(tls_world, bare, ca):
    """Seed the TLS world and run --once through its Sentinel trusting ca: (conf, rc, err)."""
    srv, s, certs = tls_world
    seed(srv.client(), LIVE, STALE)
    url = f"rediss+sentinel://{s.addr}/{SERVICE}/0"
    conf = bare.config({"tls.ca_file": certs.path(ca)}, url=url)
    rc, _, err = bare.run(["-c", conf, "--once"])
    return conf, rc, err


def test_rediss_sentinel_speaks_tls_to_the_sentinels_and_the_primary(tls_world, bare):
    srv, s, _ = tls_world
    conf, rc, err = tls_once(tls_world, bare, "ca.crt")
    assert rc == EX_OK, err
    assert set(srv.client().smembers(ONLINE)) == set(LIVE)
    assert f"redis endpoint: 127.0.0.1:{srv.port}, primary of {SERVICE}" in err, err
    rc, out, err = bare.run(["-c", conf, "-t"])
    assert rc == EX_OK, err
    assert f"# sentinel {s.addr}: primary 127.0.0.1:{srv.port}".encode() in out, out
    assert b"# tls: server certificate CN=localhost" in out, out


def test_rediss_sentinel_with_an_unknown_ca_fails_at_the_sentinel(tls_world, bare):
    srv, s, _ = tls_world
    _, rc, err = tls_once(tls_world, bare, "ca2.crt")
    assert rc == EX_UNAVAILABLE, err
    assert re.search(rf"sentinel {re.escape(s.addr)}: .*signed by an unknown CA", err), err
    assert srv.client().scard(ONLINE) == len(LIVE) + len(STALE)


def test_redis_sentinel_url_on_tls_sentinels_says_what_is_wrong(tls_world, bare):
    srv, s, certs = tls_world
    url = f"redis+sentinel://{s.addr}/{SERVICE}/0"
    rc, _, err = bare.run(["-c", bare.config(url=url), "--once"])
    assert rc == EX_UNAVAILABLE, err
    assert re.search(rf"sentinel {re.escape(s.addr)}: .*plain client on a TLS port", err), err


# --- Sentinels unreachable ----------------------------------------------------------

def test_all_sentinels_down_once_exits_69_naming_each(bare):
    ports = [closed_port() for _ in range(3)]
    url = "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in ports) + "/mymaster"
    rc, _, err = bare.run(["-c", bare.config(url=url), "--once"])
    assert rc == EX_UNAVAILABLE, err
    assert "no primary for service mymaster" in err, err
    for p in ports:
        assert re.search(rf"sentinel 127\.0\.0\.1:{p}: cannot connect", err), err


def test_all_sentinels_down_the_loop_retries_until_one_comes_up(tmp_path, bare):
    srv = RedisServer(tmp_path / "data")
    srv.dir.mkdir()
    srv.start()
    sport = free_port()
    s = Sentinel(tmp_path / "s", sport, [(SERVICE, srv.port)], quorum=1, down_after=60000,
                 password=None, auth_pass=None)
    try:
        seed(srv.client(), LIVE, STALE)
        d = bare.start(["-c", bare.config(url=f"redis+sentinel://127.0.0.1:{sport}/mymaster"),
                        "-v"], env={"POD_NAME": "s-late"})
        d.wait_log(r"warn: redis unreachable .*no primary for service mymaster", 10)
        wait_until(lambda: d.count(r"connect attempt \d+ failed") >= 3, 20,
                   what="three more attempts", alive=[d])
        assert set(srv.client().smembers(ONLINE)) == set(LIVE + STALE)
        s.start()
        d.wait_log(r"became leader", 20)
        wait_until(lambda: set(srv.client().smembers(ONLINE)) == set(LIVE), 15,
                   what="the stale users removed", alive=[d])
    finally:
        s.stop()
        srv.stop()


# --- failover -----------------------------------------------------------------------

def listened(d, after=0):
    """The Sentinel the daemon listens to for +switch-master (the latest one)."""
    found = re.findall(r"listening for \+switch-master on sentinel (127\.0\.0\.1:\d+)",
                       d.stderr())
    return found[-1] if len(found) > after else None


def test_killing_the_listened_sentinel_moves_the_subscription(cl, bare):
    r = cl.primary()
    seed(r, LIVE, STALE)
    d = bare.start(["-c", run_conf(bare, cl)], env={"POD_NAME": "s-kill"})
    first = wait_until(lambda: listened(d), 10, what="a subscription", alive=[d])
    victim = next(s for s in cl.sentinels if s.addr == first)
    victim.stop(signal.SIGKILL)
    try:
        d.wait_log(r"\+switch-master subscription lost: sentinel " + re.escape(first), 10)
        second = wait_until(lambda: listened(d, after=1), 10, what="a new subscription",
                            alive=[d])
        assert second != first
        d.wait_cycles(1, 10)
        assert set(r.smembers(ONLINE)) == set(LIVE)
    finally:
        victim.start()


class Announcements(threading.Thread):
    """+switch-master as each Sentinel announces it: {sentinel addr: (wall time, text)}."""

    def __init__(self, sentinels):
        super().__init__(daemon=True)
        self.subs = []
        for s in sentinels:
            p = s.client().pubsub()
            p.subscribe("+switch-master")
            p.get_message(timeout=5)      # the subscribe confirmation
            self.subs.append((s.addr, p))
        self.seen = {}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for addr, p in self.subs:
                try:
                    m = p.get_message(timeout=0.01)
                except redis.ConnectionError:
                    continue
                if m and m["type"] == "message" and addr not in self.seen:
                    self.seen[addr] = (time.time(), m["data"])

    def close(self):
        self.stop.set()
        self.join(5)
        for _, p in self.subs:
            p.close()


def log_time(line):
    """Wall time of a text log line ("2026-11-27T18:54:22.123Z info: ...")."""
    stamp = line.split(" ", 1)[0]
    secs = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    return secs + int(stamp[20:23]) / 1000


class Follower(threading.Thread):
    """A client of whichever node the Sentinels name; a failed step asks them again."""

    def __init__(self, cl, users, stop):
        super().__init__(daemon=True)
        self.cl, self.users, self.stop = cl, list(users), stop
        self.errors = 0

    def run(self):
        r = None
        while not self.stop.is_set():
            try:
                if r is None:
                    r = self.cl.primary()
                    self.follow(r)
                self.step(r)
            except (redis.ConnectionError, redis.ResponseError, redis.TimeoutError):
                self.errors += 1      # failover in progress
                r = None
            self.stop.wait(self.pause)


class Churn(Follower):
    """A realtime server: connects, disconnects, crashes users."""
    pause = 0.002

    def __init__(self, cl, users, seed_no, stop):
        super().__init__(cl, users, stop)
        self.rng = random.Random(seed_no)
        self.ops = 0

    def follow(self, r):
        self.rt = Realtime(r)

    def step(self, r):
        user = self.rng.choice(self.users)
        op = self.rng.random()
        if op < 0.5:
            self.rt.connect(user, b"s", ttl=60)
        elif op < 0.8:
            self.rt.disconnect(user, b"s")
        else:
            r.pexpire(self.rt.key(user), self.rng.randint(300, 800))   # crashed
        self.ops += 1


class Sampler(Follower):
    """Checks atomically, on whichever node is primary, that no live user is offline."""
    pause = 0.02

    def __init__(self, cl, users, stop):
        super().__init__(cl, users, stop)
        self.violations, self.samples = [], 0

    def follow(self, r):
        self.rt = Realtime(r)
        self.check = r.register_script(LIVE_ONLINE_CHECK)

    def step(self, r):
        bad = self.check(keys=[ONLINE] + [self.rt.key(u) for u in self.users], args=self.users)
        self.samples += 1
        if bad:
            self.violations.append(bad)


def test_failover_under_churn_and_during_a_pass_is_followed_within_2s(cl, bare):
    old = cl.primary_port()
    r = cl.primary()
    # Many users so that the leader's pass (paced by max_rate) is running at the switch.
    bulk = [b"bulk-%d" % i for i in range(20000)]
    Realtime(r).connect_many(bulk)
    stable = [b"stable-%d" % i for i in range(20)]
    seed(r, stable, STALE)
    port = free_port()
    settings = {"metrics.listen": f"127.0.0.1:{port}", "reaper.max_rate": 4000,
                "reaper.interval": 0.5, "reaper.batch_size": 200}
    leader = bare.start(["-c", run_conf(bare, cl, settings=settings)], env={"POD_NAME": "f-a"},
                        name="f-a")
    leader.wait_log(r"became leader", 10)
    standby = bare.start(["-c", run_conf(bare, cl)], env={"POD_NAME": "f-b"}, name="f-b")
    standby.wait_log(r"standby: lock held by f-a", 10)
    via = wait_until(lambda: listened(leader), 10, what="the leader's subscription")
    wait_until(lambda: listened(standby), 10, what="the standby's subscription")

    churners = [b"churn-%d" % i for i in range(100)]
    stop = threading.Event()
    threads = [Churn(cl, churners, n, stop) for n in range(3)]
    ann = Announcements(cl.sentinels)
    ann.start()
    sampler = Sampler(cl, stable + churners, stop)
    for t in threads + [sampler]:
        t.start()
    try:
        wait_until(lambda: sum(t.ops for t in threads) > 300, 10, what="some churn")
        # A pass is under way (paced: 20000 users at 4000/s, 5 s) when the switch comes.
        before = len(leader.stderr())
        t_failover = time.time()
        next(s for s in cl.sentinels if s.addr == via).client().execute_command(
            "SENTINEL", "FAILOVER", SERVICE)
        wait_until(lambda: via in ann.seen, 15, what="+switch-master from " + via)
        announced, text = ann.seen[via]
        new = int(text.split()[4])
        assert new != old and text.split()[2] == str(old), text
        switch_re = rf"info: redis endpoint: 127\.0\.0\.1:{old} -> 127\.0\.0\.1:{new}"
        for d in (leader, standby):
            d.wait_log(switch_re, 5)
        delays = {d.name: log_time(re.search(r"(?m)^.*" + switch_re + ".*$", d.stderr()).group(0))
                  - announced for d in (leader, standby)}
        earliest = min(t for t, _ in ann.seen.values())
        print(f"switch announced by {via} {announced - t_failover:.3f}s after SENTINEL FAILOVER "
              f"(earliest of all sentinels {earliest - t_failover:.3f}s); followed after {delays}")
        for name, delay in delays.items():
            assert delay < 2.0, f"{name} followed {delay:.3f}s after +switch-master"
        assert re.search(r"pass interrupted after|redis connection lost",
                         leader.stderr()[before:]), leader.stderr()[before:]
        ep = wait_until(lambda: endpoint_of(port), 5, what="the endpoint metric")
        assert ep["address"] == f"127.0.0.1:{new}" and ep["role"] == "primary", ep
        assert scrape(port)["presence_reaper_redis_failovers_total"] == 1
        hold_for(1.0, lambda: all(t.is_alive() for t in threads), what="churn goes on")
    finally:
        stop.set()
        for t in threads + [sampler]:
            t.join(10)
        ann.close()

    # Settle: crashed users' sets expire; then one full pass on the new primary.
    nr = data_client(new)
    everyone = stable + churners + STALE

    def settled():
        pipe = nr.pipeline(transaction=False)
        for u in everyone:
            pipe.pttl(Realtime(nr).key(u))
        return all(t == -2 or t > 10000 for t in pipe.execute())
    wait_until(settled, 10, interval=0.05, what="crashed users' sets to expire")
    nr.delete(Realtime(nr).key(bulk[0]))   # one more stale user, crashed on the new primary
    leader_now = wait_until(lambda: next((d for d in (leader, standby)
                                          if nr.get("presence:reaper:leader") and
                                          nr.get("presence:reaper:leader").startswith(
                                              d.name.encode() + b":")), None),
                            15, what="a leader on the new primary")
    leader_now.wait_cycles(1, 30)
    leader_now.wait_cycles(1, 30)
    check = nr.register_script(LIVE_ONLINE_CHECK)
    keys = [ONLINE] + [Realtime(nr).key(u) for u in everyone]
    assert check(keys=keys, args=everyone) == [], "a user with a live socket set is offline"
    assert not sampler.violations, f"live users seen offline: {sampler.violations[:3]}"
    assert sampler.samples >= 20, sampler.samples
    online = set(nr.smembers(ONLINE))
    pipe = nr.pipeline(transaction=False)
    for u in everyone + bulk:
        pipe.exists(Realtime(nr).key(u))
    existing = {u for u, e in zip(everyone + bulk, pipe.execute()) if e}
    assert online == existing, (sorted(online - existing)[:10], sorted(existing - online)[:10])
    assert set(stable) <= online
    assert all(d.alive() for d in (leader, standby))
    cl.wait_stable()


def test_readonly_makes_the_reaper_ask_the_sentinels_again(tmp_path, bare):
    """The primary turns replica behind Sentinel's back: READONLY, rediscover, follow."""
    a, b = RedisServer(tmp_path / "a"), RedisServer(tmp_path / "b")
    s = None
    try:
        for srv in (a, b):
            srv.dir.mkdir()
            srv.start()
        s = Sentinel(tmp_path / "s", free_port(), [(SERVICE, a.port)], quorum=1,
                     down_after=60000, password=None, auth_pass=None)
        s.start()
        d = bare.start(["-c", bare.config(url=f"redis+sentinel://{s.addr}/mymaster")],
                       env={"POD_NAME": "ro"})
        d.wait_log(r"became leader", 10)
        a.client().execute_command("REPLICAOF", "127.0.0.1", str(b.port))
        d.wait_log(r"READONLY.*asking the sentinels for the primary again", 10)
        d.wait_log(rf"sentinel {s.addr} names 127\.0\.0\.1:{a.port}: ROLE says slave", 10)
        seed(b.client(), LIVE, STALE)
        sc = s.client()
        sc.execute_command("SENTINEL", "REMOVE", SERVICE)
        sc.execute_command("SENTINEL", "MONITOR", SERVICE, "127.0.0.1", str(b.port), "1")
        d.wait_log(rf"redis endpoint: 127\.0\.0\.1:{a.port} -> 127\.0\.0\.1:{b.port}", 15)
        wait_until(lambda: set(b.client().smembers(ONLINE)) == set(LIVE), 15,
                   what="the stale users removed on the new primary", alive=[d])
    finally:
        if s:
            s.stop()
        a.stop()
        b.stop()


@pytest.mark.parametrize("over", ["tcp", "unix"])
def test_plain_urls_show_the_configured_endpoint(h, over):
    """Not only Sentinel: a redis:// or unix:// URL's address is the endpoint, role unknown."""
    port = free_port()
    url = h.redis.tcp_url if over == "tcp" else h.redis.unix_url
    want = f"127.0.0.1:{h.redis.port}" if over == "tcp" else f"unix:{h.redis.sock}"
    d = h.start(["-c", h.config({"metrics.listen": f"127.0.0.1:{port}"}, url=url)],
                env={"POD_NAME": "plain"})
    d.wait_cycles(1, 10)
    ep = wait_until(lambda: endpoint_of(port), 5, what="the endpoint metric")
    assert ep == {"address": want, "tls": "false", "role": "unknown"}, ep
    assert scrape(port)["presence_reaper_redis_failovers_total"] == 0
    h.redis.restart()
    d.wait_log(r"connected to", 15, after=1)
    d.wait_cycles(1, 15)
    assert scrape(port)["presence_reaper_redis_failovers_total"] == 0
    assert "redis endpoint:" not in d.stderr()

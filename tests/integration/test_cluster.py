"""Redis Cluster: discovery from seeds, single-slot presence, the keyslot check,
failover, MOVED and resharding.

One six-node Cluster (three primaries, three replicas) is shared by the module;
the tests that move slots or kill nodes leave it healthy again (wait_ok). A
second one, three TLS-only primaries with ACL users, serves the TLS tests.
"""

import random
import re
import shutil
import signal
import tempfile
import threading
import time
from contextlib import closing

import pytest
import redis

from clusterutil import Cluster, Router, migrate_slot
from harness import (EX_CONFIG, EX_OK, LIVE_ONLINE_CHECK, REPO, Harness, Realtime, closed_port,
                     free_port, render_config, wait_until)
from test_metrics import scrape
from tlsutil import make_pki

TAG = b"{presence}"
ONLINE = TAG + b":online-users"
PREFIX = TAG + b":user:"
LOCK = TAG + b":reaper:leader"
KEYS = {
    "keys.online_set": ONLINE.decode(),
    "keys.socket_prefix": PREFIX.decode(),
    "leader.key": LOCK.decode(),
}


@pytest.fixture(scope="module")
def cluster():
    with closing(Cluster()) as c:
        yield c


def world(cluster):
    """A per-test harness without a redis-server of its own, and the presence slot's owner."""
    cluster.wait_ok()
    h = Harness(with_redis=False)
    h.cluster = cluster
    h.owner = cluster.owner(ONLINE)
    h.r = h.owner.client()
    cluster.clear_slot(ONLINE)
    h.rt = Realtime(h.r, online=ONLINE, prefix=PREFIX)
    return h


@pytest.fixture
def w(cluster):
    with closing(world(cluster)) as h:
        yield h


def cfg(w, settings=None, url=None):
    merged = dict(KEYS)
    merged.update(settings or {})
    return w.config(merged, url=url or w.cluster.url())


def users(n, base="u"):
    return [f"{base}{i}".encode() for i in range(n)]


def test_once_reaps_single_slot_presence_through_a_seed(w):
    live, stale = users(20, "live"), users(15, "gone")
    w.rt.connect_many(live + stale)
    w.rt.crash_many(stale)
    # The first seed is closed: discovery moves on to the next.
    url = w.cluster.url(f"127.0.0.1:{closed_port()},{w.cluster.seeds}")
    rc, _, err = w.run(["-c", str(cfg(w, url=url)), "--once"])
    assert rc == EX_OK, err
    assert w.rt.members() == set(live)
    slot = w.cluster.keyslot(ONLINE)
    assert re.search(rf"redis endpoint: 127\.0\.0\.1:{w.owner.port}, primary of hash slot "
                     rf"{slot} \(slot map of 127\.0\.0\.1:\d+\)", err), err
    assert "removed=15" in err, err


def test_loop_reaps_and_reports_the_endpoint(w):
    live, stale = users(10, "live"), users(10, "gone")
    w.rt.connect_many(live + stale)
    d = w.start(["-c", str(cfg(w, {"metrics.listen": "127.0.0.1:0"}))])
    w.rt.crash_many(stale)
    wait_until(lambda: w.rt.members() == set(live), 15, what="the stale users reaped",
               alive=[d])
    later = users(5, "later")
    w.rt.connect_many(later)
    w.rt.crash_many(later[:2])
    wait_until(lambda: w.rt.members() == set(live) | set(later[2:]), 15,
               what="the later stale users reaped", alive=[d])
    assert w.r.get(LOCK) is not None


@pytest.mark.parametrize("mode", ["once", "check", "loop"])
def test_keys_in_several_slots_refused_with_the_layout(w, mode):
    conf = w.config({}, url=w.cluster.url())    # the untagged default keys
    args = ["-c", str(conf)] + {"once": ["--once"], "check": ["-t"], "loop": []}[mode]
    if mode == "loop":
        d = w.start(args)
        rc = d.wait_exit(10)
        err = d.stderr()
    else:
        rc, _, err = w.run(args)
    assert rc == EX_CONFIG, err
    assert "holds no hash tag" in err, err
    assert "hash tag" in err and "keys.online_set = \"{presence}:online-users\"" in err, err
    assert "keys.socket_prefix = \"{presence}:user:\"" in err, err
    assert "leader.key = \"{presence}:reaper:leader\"" in err, err
    assert "CROSSSLOT" in err


def test_lock_in_another_slot_refused(w):
    rc, _, err = w.run(["-c", str(cfg(w, {"leader.key": "reaper-lock"})), "--once"])
    assert rc == EX_CONFIG, err
    assert re.search(r"leader\.key \"reaper-lock\" is in hash slot \d+ and keys\.online_set",
                     err), err


def test_cluster_and_sentinel_or_db_exclude_each_other(w):
    rc, _, err = w.run(["-c", str(cfg(w, {"sentinel.username": "s"})), "-t"])
    assert rc == EX_CONFIG and "Sentinel and Cluster exclude each other" in err, err
    rc, _, err = w.run(["-c", str(cfg(w, {"redis.db": 2})), "--once"])
    assert rc == EX_CONFIG and "only database 0" in err, err
    rc, _, err = w.run(["-c", str(cfg(w)), "--redis-url", "redis+sentinel+cluster://h/s", "-t"])
    assert rc == EX_CONFIG and "exclude each other" in err, err


def test_check_config_shows_seeds_slot_and_owner(w):
    url = w.cluster.url(f"127.0.0.1:{closed_port()},{w.cluster.seeds}")
    rc, out, err = w.run(["-c", str(cfg(w, url=url)), "-t"])
    assert rc == EX_OK, err
    out = out.decode()
    slot = w.cluster.keyslot(ONLINE)
    assert re.search(r"# cluster seed 127\.0\.0\.1:\d+: no slot map: .*cannot connect", out), out
    assert len(re.findall(r"# cluster seed 127\.0\.0\.1:\d+: 16384 of 16384 slots covered "
                          r"by 3 primaries", out)) == 6, out
    assert f"# cluster: 6 of 7 seeds answered; every key is in hash slot {slot}" in out, out
    assert re.search(rf"# cluster: hash slot {slot} is served by primary "
                     rf"127\.0\.0\.1:{w.owner.port} ", out), out


def test_no_seed_answers(w):
    url = w.cluster.url(f"127.0.0.1:{closed_port()}")
    rc, _, err = w.run(["-c", str(cfg(w, url=url)), "--once"])
    assert rc == 69, err
    assert "no owner found for hash slot" in err and "cannot connect" in err, err


def replicated(w):
    """Wait until the presence slot's replica holds every write made so far."""
    wait_until(lambda: w.r.execute_command("WAIT", 1, 1000) >= 1, 20,
               what="the replica to acknowledge every write")


def endpoint(port):
    for k, v in scrape(port).items():
        if k.startswith("presence_reaper_redis_endpoint_info") and v == 1:
            return dict(re.findall(r'(\w+)="([^"]*)"', k))
    return None


def test_cluster_failover_followed(w):
    """CLUSTER FAILOVER during a paced pass: MOVED, a new map, the pass resumes there."""
    live, stale = users(1500, "live"), users(5, "gone")
    w.rt.connect_many(live)
    port = free_port()
    d = w.start(["-c", str(cfg(w, {"metrics.listen": f"127.0.0.1:{port}",
                                   "reaper.max_rate": 1000, "reaper.batch_size": 50}))])
    d.wait_log(r"became leader", 15)
    replica = w.cluster.replica_of(w.owner)
    old = w.owner
    wait_until(lambda: endpoint(port) == {"address": f"127.0.0.1:{old.port}", "role": "primary",
                                          "tls": "false"}, 5, what="the endpoint metric")
    replicated(w)
    w.cluster.failover_to(replica, ONLINE)
    d.wait_log(rf"redis endpoint: 127\.0\.0\.1:{old.port} -> 127\.0\.0\.1:{replica.port} "
               rf"\(slot map of ", 15)
    assert re.search(r"MOVED \d+ 127\.0\.0\.1:%d; loading the cluster's slot map again"
                     % replica.port, d.stderr()), d.stderr()
    assert endpoint(port)["address"] == f"127.0.0.1:{replica.port}"
    assert scrape(port)["presence_reaper_redis_failovers_total"] == 1
    r = replica.client()
    rt = Realtime(r, online=ONLINE, prefix=PREFIX)
    rt.connect_many(stale)
    rt.crash_many(stale)
    wait_until(lambda: rt.members() == set(live), 15, what="reaping on the new primary",
               alive=[d])
    assert r.get(LOCK) is not None
    # Give the slot back, so the other tests find the layout they expect.
    w.cluster.failover_to(old, ONLINE, "TAKEOVER")
    d.wait_log(rf"-> 127\.0\.0\.1:{old.port} ", 15)


def test_killed_primary_followed(w):
    """A primary killed outright. Keys of a slot on another primary than the presence
    slot's: manual failovers just made leave Redis's election state behind on that pair."""
    tag = next(t for t in (b"{k%d}" % i for i in range(100))
               if w.cluster.owner(t + b":online-users") is not w.owner)
    online, prefix, lock = tag + b":online-users", tag + b":user:", tag + b":reaper:leader"
    w.cluster.clear_slot(online)
    old = w.cluster.owner(online)
    replica = w.cluster.replica_of(old)
    r = old.client()
    rt = Realtime(r, online=online, prefix=prefix)
    live, stale = users(30, "live"), users(5, "gone")
    rt.connect_many(live)
    assert r.execute_command("WAIT", 1, 5000) >= 1
    r.close()
    d = w.start(["-c", str(w.config({"keys.online_set": online.decode(),
                                     "keys.socket_prefix": prefix.decode(),
                                     "leader.key": lock.decode()}, url=w.cluster.url()))])
    d.wait_log(r"became leader", 15)
    old.proc.send_signal(signal.SIGKILL)
    old.proc.wait()
    old.proc = None
    try:
        wait_until(lambda: w.cluster.owner(online) is replica, 30, interval=0.2,
                   what="the replica to take over")
        d.wait_log(rf"redis endpoint: 127\.0\.0\.1:{old.port} -> 127\.0\.0\.1:"
                   rf"{replica.port}", 30)
        rt = Realtime(replica.client(), online=online, prefix=prefix)
        rt.connect_many(stale)
        rt.crash_many(stale)
        wait_until(lambda: rt.members() == set(live), 20, what="reaping on the new primary",
                   alive=[d])
    finally:
        old.start(keep_port=True)     # rejoins from its nodes.conf, as a replica
        w.cluster.wait_ok()


class DropRealtime(Realtime):
    """Realtime plus a crash that goes through a Router: the socket set disappears."""

    def drop(self, user, client=None):
        (client or self.r).delete(self.key(user))


def test_resharding_under_churn(w):
    """The presence slot moves to another primary during passes, under churn."""
    cluster, slot, src = w.cluster, w.cluster.keyslot(ONLINE), w.owner
    dst = next(n for n in cluster.live() if n is not src and
               n.client().info("replication").get("role") == "master")
    live = users(40, "live")
    churn = users(150, "churn")
    w.rt.connect_many(live + churn)
    stream = (TAG + b":events").decode()
    d = w.start(["-c", str(cfg(w, {"events.mode": "stream", "events.stream": stream,
                                   "reaper.batch_size": 10, "reaper.interval": 0.2}))])
    d.wait_log(r"became leader", 15)
    router = Router(cluster, src, lambda c: DropRealtime(c, online=ONLINE, prefix=PREFIX))
    stop = threading.Event()
    errors = []

    everyone = live + churn
    samples, violations = [0], []

    def sample():
        # Atomically, on the node that serves the slot now; a node that refuses
        # (the slot is moving) gives no sample.
        c = router.node.client()
        try:
            bad = c.register_script(LIVE_ONLINE_CHECK)(
                keys=[ONLINE] + [PREFIX + u + b":sockets" for u in everyone], args=everyone)
            samples[0] += 1
            if bad:
                violations.append(bad)
        except redis.ResponseError:
            pass
        finally:
            c.close()

    def run_churn():
        rnd = random.Random(7)
        try:
            while not stop.is_set():
                u = rnd.choice(churn)
                router.call(rnd.choice(["connect", "disconnect", "drop", "drop"]), u)
                if rnd.random() < 0.2:
                    sample()
        except Exception as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    refused = []

    def reap_script_refused(s_node, d_node, moved):
        # Redis refuses the whole reap script before it runs when any key has moved.
        c = s_node.client()
        sha = c.script_load((REPO / "reaper" / "lua" / "reap.lua").read_bytes())
        ids = [k[len(PREFIX):-len(b":sockets")] for k in moved if k.startswith(PREFIX)]
        keys = [ONLINE, LOCK, ONLINE] + [PREFIX + u + b":sockets" for u in ids]
        try:
            c.evalsha(sha, len(keys), *keys, b"x", b"none", b"", b"0", b"0", *ids)
        except redis.ResponseError as e:
            refused.append(str(e).split(" ", 1)[0])
        finally:
            c.close()

    t = threading.Thread(target=run_churn)
    t.start()
    try:
        wait_until(lambda: samples[0] >= 5 or errors, 15, what="churn sampled before the move")
        migrate_slot(cluster, slot, src, dst, during=reap_script_refused)
        cluster.wait_ok()
        before = samples[0]
        wait_until(lambda: samples[0] >= before + 5 or errors, 15,
                   what="churn sampled after the move")
    finally:
        stop.set()
        t.join(10)
    assert not errors, errors
    assert not violations, f"users with a live socket set were offline: {violations[:3]}"
    assert samples[0] > 10, samples
    assert refused and refused[0] in ("ASK", "TRYAGAIN"), refused
    assert cluster.owner(ONLINE) is dst
    d.wait_log(rf"redis endpoint: 127\.0\.0\.1:{src.port} -> 127\.0\.0\.1:{dst.port}", 15)
    r = dst.client()
    rt = Realtime(r, online=ONLINE, prefix=PREFIX)

    def exact():
        online = rt.members()
        alive = {u for u in live + churn if r.exists(rt.key(u))}
        return online == alive
    wait_until(exact, 20, what="online set == users with a live socket set", alive=[d])
    removed = {f[b"user_id"] for _, f in r.xrange(stream.encode())}
    assert not removed & set(live), "a live user was removed"
    assert set(live) <= rt.members()
    assert sum(router.redirects.values()) > 0, router.redirects
    # Hand the slot back for the other tests.
    migrate_slot(cluster, slot, dst, src, pause=0)
    cluster.wait_ok()


def test_lock_followed_by_asking_while_its_slot_migrates(w):
    """The lock moved ahead of the rest of the slot: renewals follow ASK (ASKING)."""
    cluster, slot, src = w.cluster, w.cluster.keyslot(ONLINE), w.owner
    dst = next(n for n in cluster.live() if n is not src and
               n.client().info("replication").get("role") == "master")
    live, stale = users(10, "live"), users(4, "gone")
    w.rt.connect_many(live + stale)
    d = w.start(["-c", str(cfg(w, {"leader.lease": 2, "leader.renew": 0.3})), "-v"])
    d.wait_log(r"became leader", 15)
    s, t = src.client(), dst.client()
    t.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", cluster.node_id(src))
    s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", cluster.node_id(dst))
    try:
        s.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", LOCK)
        mark = len(d.stderr())
        # Eight renewals 0.3 s apart outlast the 2 s lease: only they keep the lock alive.
        d.wait_log(r"following ASK \d+ 127\.0\.0\.1:%d\b" % dst.port, 10, after=8)
        assert t.execute_command("ASKING") and t.pttl(LOCK) > 0
        assert "lost leadership" not in d.stderr()[mark:], d.stderr()[mark:]
        assert "lease renewal failed" not in d.stderr()[mark:], d.stderr()[mark:]
        # The online set moved too: -t's TYPE check follows the ASK there.
        s.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", ONLINE)
        rc, out, err = w.run(["-c", str(cfg(w)), "-t", "-v"])
        assert rc == EX_OK, err
        assert b"# keys:" not in out, out
        assert re.search(r"following ASK \d+ 127\.0\.0\.1:%d\b" % dst.port, err), err
        w.rt.crash_many(stale)          # their socket sets are still on src
    finally:
        migrate_slot(cluster, slot, src, dst, pause=0)
    cluster.wait_ok()
    d.wait_log(rf"redis endpoint: 127\.0\.0\.1:{src.port} -> 127\.0\.0\.1:{dst.port}", 15)
    rt = Realtime(t, online=ONLINE, prefix=PREFIX)
    wait_until(lambda: rt.members() == set(live), 15, what="reaping on the new owner",
               alive=[d])
    migrate_slot(cluster, slot, dst, src, pause=0)
    cluster.wait_ok()


ACL_USERS = (
    "--user reaper on >reaper-pw ~{presence}:* &* +@all -@dangerous -cluster -asking "
    "+cluster|slots +asking +client|setname "
    "--user noslots on >noslots-pw ~{presence}:* &* +@all -@dangerous -cluster "
    "+client|setname").split()


@pytest.fixture(scope="module")
def tls_cluster():
    """Three TLS-only primaries (TLS on the cluster bus too), with ACL users."""
    folder = tempfile.mkdtemp(prefix="prc-pki-")
    try:
        with closing(Cluster(nodes=3, replicas=0, certs=make_pki(folder),
                             extra=ACL_USERS)) as c:
            yield c
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_tls_and_an_acl_user_on_every_node(tls_cluster):
    with closing(world(tls_cluster)) as w:
        live, stale = users(10, "live"), users(6, "gone")
        w.rt.connect_many(live + stale)
        w.rt.crash_many(stale)
        url = tls_cluster.url(f"reaper:reaper-pw@{tls_cluster.seeds}", scheme="rediss+cluster")
        conf = cfg(w, {"tls.ca_file": tls_cluster.certs.path("ca.crt")}, url=url)
        rc, out, err = w.run(["-c", str(conf), "-t"])
        assert rc == EX_OK, err
        assert "3 of 3 seeds answered" in out.decode() and "reaper-pw" not in out.decode(), out
        rc, _, err = w.run(["-c", str(conf), "--once"])
        assert rc == EX_OK, err
        assert w.rt.members() == set(live)
        assert f"127.0.0.1:{w.owner.port}, primary of hash slot" in err, err
        assert "reaper-pw" not in err
        # Plain TCP to a TLS node: named as such, not hung.
        rc, _, err = w.run(["-c", str(cfg(w, url=tls_cluster.url(
            f"reaper:reaper-pw@{tls_cluster.seeds}"))), "--once"])
        assert rc == 69, err
        # A certificate that does not name the address announced: refused.
        rc, _, err = w.run(["-c", str(cfg(w, {"tls.ca_file": tls_cluster.certs.path("ca.crt"),
                                              "tls.server_name": "other.example"}, url=url)),
                            "--once"])
        assert rc == 69 and "other.example" in err, err


def test_acl_user_without_cluster_slots(tls_cluster):
    with closing(world(tls_cluster)) as w:
        url = tls_cluster.url(f"noslots:noslots-pw@{tls_cluster.seeds}", scheme="rediss+cluster")
        conf = cfg(w, {"tls.ca_file": tls_cluster.certs.path("ca.crt")}, url=url)
        rc, _, err = w.run(["-c", str(conf), "--once"])
        assert rc == EX_CONFIG, err
        assert "CLUSTER SLOTS: NOPERM" in err and "cluster|slots" in err, err
        assert "noslots-pw" not in err


def test_once_follows_a_failover_in_the_middle_of_its_pass(w):
    live, stale = users(1500, "live"), users(20, "gone")
    w.rt.connect_many(live + stale)
    w.rt.crash_many(stale)
    old, replica = w.owner, w.cluster.replica_of(w.owner)
    replicated(w)
    conf = cfg(w, {"reaper.max_rate": 1000, "reaper.batch_size": 50})
    result = {}
    t = threading.Thread(target=lambda: result.update(
        zip(("rc", "out", "err"), w.run(["-c", str(conf), "--once"], timeout=60))))
    t.start()
    try:
        # The lock comes just before the pass, which max_rate stretches to about 1.5 s.
        wait_until(lambda: w.r.exists(LOCK) or not t.is_alive(), 15,
                   what="--once holding the lock")
        # TAKEOVER: no vote, and no pause of the primary's clients that a manual
        # failover without a majority would hold for seconds.
        w.cluster.failover_to(replica, ONLINE, "TAKEOVER")
    finally:
        t.join(60)
    err = result["err"]
    assert result["rc"] == EX_OK, err
    assert re.search(r"MOVED \d+ 127\.0\.0\.1:%d; loading the cluster's slot map again"
                     % replica.port, err), err
    assert f"redis endpoint: 127.0.0.1:{old.port} -> 127.0.0.1:{replica.port}" in err, err
    rt = Realtime(replica.client(), online=ONLINE, prefix=PREFIX)
    assert rt.members() == set(live)
    w.cluster.failover_to(old, ONLINE, "TAKEOVER")


def test_slot_not_served_then_served_again(w):
    """CLUSTERDOWN: retried with backoff, then the map again; reaping resumes once served."""
    cluster, slot, owner = w.cluster, w.cluster.keyslot(ONLINE), w.owner
    live, stale = users(10, "live"), users(3, "gone")
    w.rt.connect_many(live + stale)
    d = w.start(["-c", str(cfg(w))])
    d.wait_log(r"became leader", 15)
    def unassigned():
        # A node may learn the slot again from one that has not dropped it yet.
        done = True
        for n in cluster.live():
            c = n.client()
            if any(lo <= slot <= hi for lo, hi, *_ in c.execute_command("CLUSTER", "SLOTS")):
                done = False
                c.execute_command("CLUSTER", "DELSLOTS", slot)
            c.close()
        return done
    wait_until(unassigned, 10, interval=0.2, what=f"slot {slot} unassigned everywhere")
    try:
        d.wait_log(r"CLUSTERDOWN", 15)
        d.wait_log(r"no owner found for hash slot %d" % slot, 20)
        rc, _, err = w.run(["-c", str(cfg(w, {"redis.command_timeout": 1})), "--once"])
        assert rc == 69 and f"hash slot {slot}" in err, err
    finally:
        owner.client().execute_command("CLUSTER", "ADDSLOTS", slot)
    cluster.wait_ok()
    w.rt.crash_many(stale)
    wait_until(lambda: w.rt.members() == set(live), 20, what="reaping once served again",
               alive=[d])


def test_key_expiry_watched_on_the_slot_owner(w):
    """Keyspace events are per node: the watch subscribes on the primary of the slot."""
    w.rt.connect_many([b"live"])
    d = w.start(["-c", str(cfg(w, {"reaper.watch_expiry": True,
                                   "reaper.enable_notifications": True,
                                   "reaper.interval": 30}))])
    d.wait_log(r"watching key expiry", 10)
    wait_until(lambda: len(d.cycles()) >= 1, 10, what="the first pass")
    user = b"crash"
    w.rt.connect(user)
    w.r.pexpire(w.rt.key(user), 100)
    wait_until(lambda: not w.r.sismember(ONLINE, user), 3,
               what="the expired user reaped on the key-expiry event")
    assert len(d.cycles()) == 1, "the periodic pass must not be what reaped it"
    assert w.rt.members() == {b"live"}
    w.r.config_set("notify-keyspace-events", "")


def test_expiry_tracked_on_the_slot_owner(w):
    """reaper.track_expiry on a Cluster: the scan script reads socket sets it
    does not declare, which share the online set's slot, so they are local."""
    live = users(20, "live")
    w.rt.connect_many(live + [b"crash"])
    w.r.pexpire(w.rt.key(b"crash"), 2500)
    expiry = w.r.execute_command("PEXPIRETIME", w.rt.key(b"crash"))
    d = w.start(["-c", str(cfg(w, {"reaper.track_expiry": True, "reaper.interval": 60}))])
    wait_until(lambda: len(d.cycles()) >= 1, 10, what="the first pass", alive=[d])
    assert "scanned=21" in d.stderr(), d.stderr()
    wait_until(lambda: not w.r.sismember(ONLINE, b"crash"), 5,
               what="the crashed user reaped at expiry", alive=[d])
    sec, usec = w.r.time()
    assert sec * 1000 + usec // 1000 - expiry <= 1000
    assert len(d.cycles()) == 1 and w.rt.members() == set(live)


def test_reload_to_keys_of_another_slot_and_to_keys_of_several(w):
    conf = cfg(w)
    d = w.start(["-c", str(conf)])
    d.wait_log(r"became leader", 15)
    # Keys in several slots: refused with the explanation, the old ones kept.
    conf.write_text(conf.read_text().replace("{presence}:user:", "presence:user:"))
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload failed, keeping the old configuration", 10)
    assert "holds no hash tag" in d.stderr()
    # Another tag: the slot of another primary, followed at once.
    tag = next(t for t in ("{k%d}" % i for i in range(100))
               if w.cluster.owner((t + ":online-users").encode()) is not w.owner)
    other = w.cluster.owner((tag + ":online-users").encode())
    w.cluster.clear_slot((tag + ":online-users").encode())
    conf.write_text(render_config({**w.DEFAULTS, "redis.url": w.cluster.url(),
                                   "keys.online_set": tag + ":online-users",
                                   "keys.socket_prefix": tag + ":user:",
                                   "leader.key": tag + ":reaper:leader"}))
    d.signal(signal.SIGHUP)
    slot = w.cluster.keyslot(tag + ":online-users")
    d.wait_log(rf"redis endpoint: 127\.0\.0\.1:{other.port}, primary of hash slot {slot} ", 10)
    r = other.client()
    rt = Realtime(r, online=(tag + ":online-users").encode(), prefix=(tag + ":user:").encode())
    rt.connect_many([b"a", b"b"])
    rt.crash_many([b"b"])
    wait_until(lambda: rt.members() == {b"a"}, 10, what="reaping in the new slot", alive=[d])


# --- sharded presence: 16 shards over the three primaries, 3 replicas ------------

NSHARDS = 16
SHARD_KEYS = {
    "keys.shards": NSHARDS,
    "keys.online_set": "presence:{<shard>}:online-users",
    "keys.socket_prefix": "presence:{<shard>}:user:",
    "leader.key": "presence:{<shard>}:reaper-lock",
    "leader.lease": 2, "leader.renew": 0.5, "reaper.interval": 1,
}
MEMBERS = "presence:{members}:reaper-lock"


class Shards:
    """The 16 shards of the sharded layout, each on the primary that owns "{N}"."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.owner = [cluster.owner(f"{{{s}}}") for s in range(NSHARDS)]
        self.r = [o.client() for o in self.owner]
        self.rt = [Realtime(self.r[s], online=f"presence:{{{s}}}:online-users".encode(),
                            prefix=f"presence:{{{s}}}:user:".encode()) for s in range(NSHARDS)]
        for s in range(NSHARDS):
            cluster.clear_slot(f"{{{s}}}")
        cluster.clear_slot(MEMBERS)

    def lock(self, s):
        return self.r[s].get(f"presence:{{{s}}}:reaper-lock")

    def holders(self):
        return [self.lock(s) for s in range(NSHARDS)]

    def load(self, live, stale):
        """live and stale users in every shard; the stale ones' socket sets gone."""
        for s in range(NSHARDS):
            self.rt[s].connect_many(live(s) + stale(s))
            self.rt[s].crash_many(stale(s))

    def close(self):
        for c in self.r:
            c.close()


def per_replica(holders):
    """Shards held, by the identity in front of the token (identity:pid:random)."""
    count = {}
    for v in holders:
        if v is not None:
            who = v.split(b":")[0]
            count[who] = count.get(who, 0) + 1
    return count


class Replicas:
    """presence-reaper replicas on the sharded layout, each with a metrics listener."""

    def __init__(self, w, conf):
        self.w, self.conf, self.d, self.port = w, conf, {}, {}

    def start(self, name):
        self.port[name] = free_port()
        conf = self.w.config(dict(SHARD_KEYS, **{"metrics.listen": f"127.0.0.1:{self.port[name]}"},
                                  **self.conf), url=self.w.cluster.url())
        self.d[name] = self.w.start(["-c", str(conf)], env={"POD_NAME": name}, name=name)

    def alive(self):
        return [d for d in self.d.values() if d.alive()]

    def claims(self):
        """{shard: [replicas whose metrics say they hold it]}."""
        out = {s: [] for s in range(NSHARDS)}
        for name, d in self.d.items():
            if d.alive():
                m = scrape(self.port[name])
                for s in range(NSHARDS):
                    if m.get(f'presence_reaper_shard_holder{{shard="{s}"}}') == 1:
                        out[s].append(name)
        return out


def one_holder_each(shards, reps, share):
    """Every shard held, by exactly the one replica that says so, none above share."""
    held = shards.holders()
    claims = reps.claims()
    for s in range(NSHARDS):
        assert held[s] is not None, f"shard {s} unheld: {held}"
        who = held[s].split(b":")[0].decode()
        assert claims[s] in ([who], []), (s, held[s], claims[s])   # [] : not scraped yet
    assert max(per_replica(held).values()) <= share, per_replica(held)


def test_sharded_on_the_cluster_replicas_share_sixteen_shards(w):
    shards = Shards(w.cluster)
    reps = Replicas(w, {})
    try:
        live = lambda s: [b"live-%d-%d" % (s, i) for i in range(10)]     # noqa: E731
        stale = lambda s: [b"gone-%d-%d" % (s, i) for i in range(3)]     # noqa: E731
        shards.load(live, stale)
        conf = w.config(SHARD_KEYS, url=w.cluster.url())
        rc, out, err = w.run(["-c", str(conf), "-t"])
        assert rc == EX_OK, err
        for s in range(NSHARDS):
            slot = w.cluster.keyslot(f"{{{s}}}")
            assert re.search(rf"(?m)^# shard {s}: slot {slot}, node 127\.0\.0\.1:"
                             rf"{shards.owner[s].port}, online set presence:\{{{s}\}}:online-users: "
                             rf"13 members, lock presence:\{{{s}\}}:reaper-lock: free$",
                             out.decode()), out.decode()
        assert len({o.port for o in shards.owner}) == 3, "the shards spread over the primaries"

        for i in range(3):
            reps.start(f"rep{i}")
        ds = reps.alive()
        wait_until(lambda: all(shards.rt[s].members() == set(live(s)) for s in range(NSHARDS)),
                   20, what="every shard reaped", alive=ds)
        wait_until(lambda: None not in shards.holders() and
                   max(per_replica(shards.holders()).values()) <= 6, 10,
                   what="16 shards held, at most 6 each", alive=ds)
        # Exactly one holder per shard, at every sampled moment, none above its share.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            one_holder_each(shards, reps, 6)
            time.sleep(0.1)
        with closing(w.cluster.owner(MEMBERS).client()) as m:
            assert m.zcard(MEMBERS) == 3, m.zrange(MEMBERS, 0, -1)
        for d in ds:
            assert re.search(r"shard \d+: cycle done: scanned=\d+", d.stderr()), d.stderr()
        # --status over the Cluster: a line a shard, each from the node serving its slot.
        rc, out, err = w.run(["-c", str(conf), "--status"])
        lines = out.decode().splitlines()
        assert rc == 0 and lines[0] == (f"presence-reaper OK: {NSHARDS} shards: {NSHARDS} OK, "
                                        "0 WARNING, 0 CRITICAL, 0 UNKNOWN"), out.decode() + err
        assert [int(line.split()[1]) for line in lines[1:]] == list(range(NSHARDS)), lines
        assert all(re.match(r"shard \d+ OK; lock held by rep\d:", line) for line in lines[1:]), lines

        # A replica dies: its shards are taken over within lease + renew (+ slack).
        mine = [s for s, v in enumerate(shards.holders()) if v and v.startswith(b"rep0:")]
        assert mine, per_replica(shards.holders())
        reps.d["rep0"].proc.kill()
        reps.d["rep0"].proc.wait(5)
        t0 = time.monotonic()
        wait_until(lambda: all((shards.lock(s) or b"rep0:").split(b":")[0] != b"rep0"
                               for s in mine),
                   2 + 0.5 + 0.5, interval=0.05, what="the dead replica's shards taken over",
                   alive=reps.alive())
        print(f"takeover of {len(mine)} shards after SIGKILL: {time.monotonic() - t0:.2f} s "
              f"(lease 2 s, renew 0.5 s)")
        for s in mine:
            shards.rt[s].connect_many(stale(s))
            shards.rt[s].crash_many(stale(s))
        wait_until(lambda: all(shards.rt[s].members() == set(live(s)) for s in mine), 10,
                   what="the taken-over shards reaped", alive=reps.alive())

        # Two replicas join (four alive): each holds at most 4 within two leases.
        reps.start("rep3")
        reps.start("rep4")
        t0 = time.monotonic()
        wait_until(lambda: None not in shards.holders() and
                   sorted(per_replica(shards.holders()).values()) == [4, 4, 4, 4],
                   2 * 2 + 1, interval=0.05, what="4 shards each", alive=reps.alive())
        print(f"evened out at 4 each {time.monotonic() - t0:.2f} s after two replicas joined "
              f"(two leases: 4 s)")
        one_holder_each(shards, reps, 4)
    finally:
        shards.close()


def test_sharded_churn_on_the_cluster_keeps_every_shard_exact(w):
    """Realtime-like churn over all 16 shards while 3 replicas reap: afterwards each
    shard's online set is exactly its users with a live socket set, and no live user
    was ever removed (the removal events against the churn log)."""
    shards = Shards(w.cluster)
    reps = Replicas(w, {"events.mode": "stream", "events.stream": "presence:{<shard>}:events"})
    stop = threading.Event()
    lock = threading.Lock()
    log = []            # (time, shard, user, what)
    try:
        for s in range(NSHARDS):
            shards.r[s].delete(f"presence:{{{s}}}:events")
        for i in range(3):
            reps.start(f"rep{i}")

        def churn(s):
            rnd = random.Random(s)
            c = shards.owner[s].client()
            rt = Realtime(c, online=shards.rt[s].online, prefix=shards.rt[s].prefix)
            n = 0
            try:
                while not stop.is_set():
                    u = b"c%d-%d" % (s, n)
                    n += 1
                    rt.connect(u, ttl=30)
                    with lock:
                        log.append((time.monotonic(), s, u, "connect"))
                    what = rnd.choice(["crash", "disconnect", "stay"])
                    if what == "crash":
                        rt.crash(u)
                    elif what == "disconnect":
                        rt.disconnect(u)
                    with lock:
                        log.append((time.monotonic(), s, u, what))
                    time.sleep(0.01)
            finally:
                c.close()
        threads = [threading.Thread(target=churn, args=(s,)) for s in range(NSHARDS)]
        for t in threads:
            t.start()
        time.sleep(4)           # the churn runs while the replicas reap
        stop.set()
        for t in threads:
            t.join()

        def exact(s):
            members = shards.rt[s].members()
            return all(shards.r[s].exists(shards.rt[s].key(u)) for u in members) and \
                members == {u for _, sh, u, what in log if sh == s and what == "stay"}
        wait_until(lambda: all(exact(s) for s in range(NSHARDS)), 15,
                   what="every shard exact", alive=reps.alive())
        crashed = {(sh, u) for _, sh, u, what in log if what == "crash"}
        removed = []
        for s in range(NSHARDS):
            for _, f in shards.r[s].xrange(f"presence:{{{s}}}:events"):
                removed.append((s, f[b"user_id"]))
        assert len(removed) == len(set(removed)), "one event per removal"
        assert set(removed) <= crashed, set(removed) - crashed
        assert set(removed) == crashed, "every crashed user removed by a pass"
        print(f"churn: {len(log) // 2} users over 16 shards, {len(crashed)} crashed and reaped")
    finally:
        stop.set()
        shards.close()


def test_sharded_sighup_keeps_the_membership_connection_and_sigterm_leaves(w):
    """The main connection serves the membership key's slot: a reload that changes
    nothing keeps it (it used to compare with the slot of no key and reconnect), so a
    SIGTERM right after still leaves the membership."""
    shards = Shards(w.cluster)
    try:
        conf = w.config(SHARD_KEYS, url=w.cluster.url())
        d = w.start(["-c", str(conf)], env={"POD_NAME": "hup"}, name="hup")
        owner = w.cluster.owner(MEMBERS)
        with closing(owner.client()) as m:
            wait_until(lambda: m.zcard(MEMBERS) == 1, 10, what="the membership", alive=[d])
            d.signal(signal.SIGHUP)
            d.wait_log(r"configuration reloaded: no setting changed", 10)
            d.signal(signal.SIGTERM)
            assert d.wait_exit(10) == 0
            assert re.search(r"info: left the replica membership", d.stderr()), d.stderr()
            assert m.zcard(MEMBERS) == 0
    finally:
        shards.close()


def test_sharded_a_stalled_primary_never_delays_the_other_shards_leases(w):
    """Each shard runs in a thread of its own with its own connection: while one
    primary stops answering (SIGSTOP, shorter than the Cluster's node timeout), the
    shards on the other primaries keep renewing their leases on time, and the stalled
    shards carry on once it answers again."""
    shards = Shards(w.cluster)
    reps = Replicas(w, {})
    stalled = None
    try:
        reps.start("solo")
        wait_until(lambda: None not in shards.holders(), 15, what="every shard held",
                   alive=reps.alive())
        stalled = shards.owner[0]
        others = [s for s in range(NSHARDS) if shards.owner[s] is not stalled]
        assert others and len(others) < NSHARDS
        lowest = 2000
        stalled.proc.send_signal(signal.SIGSTOP)
        t_end = time.monotonic() + 1.2
        while time.monotonic() < t_end:
            for s in others:
                lowest = min(lowest, shards.r[s].pttl(f"presence:{{{s}}}:reaper-lock"))
            time.sleep(0.02)
        stalled.proc.send_signal(signal.SIGCONT)
        stalled = None
        print(f"lowest lease left on the other primaries during a 1.2 s stall: {lowest} ms "
              f"(lease 2000 ms, renew 500 ms)")
        # A renewal is due every 500 ms: a lease never falls much below 1500 ms.
        assert lowest >= 1200, lowest
        before = len(re.findall(r"shard 0: cycle done", reps.d["solo"].stderr()))
        wait_until(lambda: len(re.findall(r"shard 0: cycle done",
                                          reps.d["solo"].stderr())) > before + 1, 10,
                   what="the stalled shard passing again", alive=reps.alive())
        assert shards.lock(0).startswith(b"solo:")
    finally:
        if stalled is not None:
            stalled.proc.send_signal(signal.SIGCONT)
        shards.close()

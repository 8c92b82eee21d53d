"""The fault matrix: the reaper talks to a real redis-server through the fault
proxy (faultproxy.py) while realtime servers churn presence directly. After
each scenario: no sample ever saw a user with a live socket set missing from
the online set, the online set is exactly the users with a live socket set,
and every removal the daemons counted left its one event, with no more
events than removals but for those of one script call whose reply a fault
cut (the script ran; its caller never heard)."""

import contextlib
import re
import signal
import threading
import time

import pytest
import redis

from harness import EX_OK, free_port, wait_until
from test_churn import Sampler, Server, wait_settled
from test_errors import busy_script, loading
from test_metrics import scrape

STREAM = b"presence:events"
CMD_TIMEOUT = 1.0
LEASE, RENEW = 2.0, 0.5
BASE = {"redis.command_timeout": CMD_TIMEOUT, "leader.lease": LEASE, "leader.renew": RENEW,
        "reaper.interval": 0.5, "reaper.batch_size": 100, "events.mode": "stream",
        "events.stream_maxlen": 0}
FILLER = [b"filler-%05d" % i for i in range(3000)]
ODD = [b"", b"a\nb", b"\x00\xff", b"sp ace", b"\xe2\x98\x83", b"x" * 600]


def start(h, pod, settings, url=None):
    """A daemon with its metrics listener (d.port): what it removed is counted
    there, passes that failed half-way included."""
    port = free_port()
    conf = h.config(dict(settings, **{"metrics.listen": f"127.0.0.1:{port}"}), url=url)
    d = h.start(["-c", conf], env={"POD_NAME": pod}, name=pod)
    d.port = port
    return d


def removed_by(daemons):
    """Users the daemons know they removed (presence_reaper_users_removed_total)."""
    return sum(int(scrape(d.port)["presence_reaper_users_removed_total"]) for d in daemons)


def events(h):
    return [(f[b"user_id"], f[b"event"]) for _, f in h.r.xrange(STREAM)]


REFUSALS = (redis.ResponseError, redis.BusyLoadingError)


class Tolerant(Server):
    """A realtime server that rides out Redis's refusals (LOADING, BUSY, OOM)."""
    tolerated = REFUSALS


class TolerantSampler(Sampler):
    """The sampler, skipping the samples Redis refused."""
    tolerated = REFUSALS


@contextlib.contextmanager
def churning(h, daemons, lost=0, servers=2, users=60, kind=Server, others=()):
    """Realtime servers connecting, heartbeating, disconnecting and crashing
    users, and a sampler of the live-means-online invariant, for the body's
    duration; then every invariant of the matrix, once a leader has passed
    over the settled state. lost: how many removals the daemons may not know
    of (a fault that cut a reap script's reply: at most one call's). others:
    the test's own users, besides the fleet's and FILLER."""
    pools = [[b"c%d-u%d" % (i, j) for j in range(users)] for i in range(servers)]
    everyone = [u for p in pools for u in p]
    stop, stop_sampler = threading.Event(), threading.Event()
    fleet = [kind(h, i, pools[i], stop) for i in range(servers)]
    sampler = (TolerantSampler if kind is Tolerant else Sampler)(h, everyone, stop_sampler)
    sampler.start()
    for s in fleet:
        s.start()
    try:
        yield
    finally:
        stop.set()
        for s in fleet:
            s.join(10)
    for s in fleet:
        assert s.error is None, f"{s.name}: {s.error!r}"
    wait_settled(h, everyone)
    leader = wait_until(lambda: h.holder(daemons), 15, what="a leader after the fault")
    n = len(leader.cycles())
    wait_until(lambda: len(leader.cycles()) >= n + 2, 20, what="two passes after the fault",
               alive=[leader])
    stop_sampler.set()
    sampler.join(10)
    assert sampler.error is None, repr(sampler.error)
    assert not sampler.violations, (f"{len(sampler.violations)} samples saw live users "
                                    f"missing, first: {sampler.violations[0][1][:10]}")
    online = h.members()
    pipe = h.r.pipeline(transaction=False)
    watched = everyone + FILLER + list(others)
    for u in watched:
        pipe.exists(h.rt.key(u))
    live = {u for u, e in zip(watched, pipe.execute()) if e}
    assert online == live, (f"stale left: {sorted(online - live)[:10]}, "
                            f"live missing: {sorted(live - online)[:10]}")
    got, known = len(events(h)), removed_by(daemons)
    assert known <= got <= known + lost, f"{got} events for {known} removals (lost: {lost})"
    ids = [u for u, _ in events(h)]
    assert set(ids) <= set(watched), "an event for a user nobody removed"


def test_replies_split_at_every_byte_give_what_the_direct_run_gives(h, px):
    """The same dry run, direct and through replies cut to single bytes, prints
    the same IDs; then the real pass through the cut replies removes exactly
    the stale users, odd IDs included, each with one event."""
    live = [b"live-%d" % i for i in range(300)] + ODD[:3]
    stale = [b"stale-%d" % i for i in range(20)] + ODD[3:]
    h.rt.connect_many(live + stale)
    h.rt.crash_many(stale)
    conf = h.config(BASE)
    rc, direct, err = h.run(["-c", conf, "--dry-run", "--once"])
    assert rc == EX_OK, err
    px.split(True)
    rc, split, err = h.run(["-c", h.config(BASE, url=px.url), "--dry-run", "--once"])
    assert rc == EX_OK, err
    assert sorted(split.splitlines()) == sorted(direct.splitlines()), (direct, split)
    assert len(direct.splitlines()) == len(stale)
    before = px.pieces_down
    rc, out, err = h.run(["-c", h.config(BASE, url=px.url), "--once"])
    assert rc == EX_OK, err
    assert h.members() == set(live)
    assert sorted(u for u, _ in events(h)) == sorted(stale)
    assert px.pieces_down - before > 1000, "the replies were not cut"


@pytest.mark.parametrize("when", ["pass", "renewal", "release"])
def test_a_half_open_leader_connection_hangs_nothing(h, px, when):
    """The server side of the leader's connection is dropped without a word to
    it: during a pass, between passes (renewals only), or just before SIGTERM
    (the release). It never hangs: SIGTERM exits within the command timeout
    plus 2 s, and before that, but for the release, it leads and reaps again
    through new connections."""
    h.rt.connect_many(FILLER)
    settings = dict(BASE)
    if when == "pass":
        settings["reaper.max_rate"] = 1000         # a pass of 3 s
    else:
        settings["reaper.interval"] = 2            # mostly renewals: passes of 0.1 s
    d = start(h, "half", settings, url=px.url)
    wait_until(lambda: h.holder([d]) is d, 10, what="the leader", alive=[d])
    if when == "pass":
        wait_until(lambda: px.bytes_down > 20000, 10, what="the pass under way", alive=[d])
        assert not d.cycles(), "the pass must still be running"
    else:
        d.wait_cycles(1, 10)
    with churning(h, [d], lost=BASE["reaper.batch_size"]):
        px.half_open()
        if when != "release":
            d.wait_log(r"timed out waiting for redis", CMD_TIMEOUT + 2)
            n = len(d.cycles())
            wait_until(lambda: h.holder([d]) is d and len(d.cycles()) > n, 20,
                       what="leading and passing again", alive=[d])
    t0 = time.monotonic()
    if when == "release":
        px.half_open()
    d.signal(signal.SIGTERM)
    rc = d.wait_exit(CMD_TIMEOUT + 2)
    took = time.monotonic() - t0
    assert rc == 0, d.stderr()[-2000:]
    assert took <= CMD_TIMEOUT + 2, took
    print(f"half-open during the {when}: SIGTERM to exit {took:.2f} s")


def test_a_blackholed_leader_is_replaced_and_heals_into_a_standby(h, px):
    """The leader's route to Redis goes dark mid-pass while a standby still
    reaches Redis. The standby leads within lease + renew + command timeout;
    the old leader gives up within the command timeout; when the route heals,
    what it had sent and queued reaches Redis and removes nothing (the scripts
    are fenced by the lock), and it becomes a standby."""
    h.rt.connect_many(FILLER)
    settings = dict(BASE, **{"reaper.max_rate": 1000})
    a = start(h, "dark", settings, url=px.url)
    wait_until(lambda: h.holder([a]) is a, 10, what="the first leader", alive=[a])
    b = start(h, "lit", settings)
    b.wait_log(r"standby: lock held by", 10)
    with churning(h, [a, b], lost=BASE["reaper.batch_size"]):
        wait_until(lambda: px.bytes_down > 20000, 10, what="a pass under way", alive=[a])
        px.blackhole()
        t0, sent = time.monotonic(), px.bytes_up
        wait_until(lambda: h.holder([a, b]) is b, LEASE + RENEW + CMD_TIMEOUT + 1,
                   what="the standby to lead", alive=[a, b])
        took = time.monotonic() - t0
        a.wait_log(r"timed out (waiting for|writing to) redis", CMD_TIMEOUT + 1)
        assert a.alive()
        px.heal()
        wait_until(lambda: px.bytes_up > sent, 5, what="what waited to reach Redis")
        a.wait_log(r"standby: lock held by lit", 10)
    print(f"blackholed leader replaced in {took:.2f} s")


def test_a_100ms_round_trip_under_churn_with_ranges(h, px):
    """Both replicas reach Redis over a 100 ms round trip, the leader's passes
    with 16 SSCAN ranges in flight, while the realtime servers churn: several
    passes complete, and every invariant of the matrix holds."""
    h.rt.connect_many(FILLER)
    px.latency(0.05, "both")
    settings = dict(BASE, **{"reaper.scan_ranges": 16})
    daemons = [start(h, pod, settings, url=px.url) for pod in ("far-a", "far-b")]
    leader = wait_until(lambda: h.holder(daemons), 10, what="a leader over 100 ms")
    with churning(h, daemons, lost=BASE["reaper.batch_size"]):
        n = len(leader.cycles())
        wait_until(lambda: len(leader.cycles()) >= n + 3, 30, what="three passes under churn",
                   alive=daemons)


@contextlib.contextmanager
def out_of_memory(h):
    h.r.config_set("maxmemory-policy", "noeviction")
    h.r.config_set("maxmemory", 1)
    try:
        yield
    finally:
        h.r.config_set("maxmemory", 0)


@contextlib.contextmanager
def busy(h):
    with busy_script(h) as probe:
        yield
        probe.script_kill()


CONDITIONS = {"LOADING": lambda h: loading(h), "BUSY": busy}


def refusing_leader(h):
    h.rt.connect_many(FILLER)
    d = start(h, "refused", BASE)
    wait_until(lambda: h.holder([d]) is d, 10, what="the leader", alive=[d])
    d.wait_cycles(1, 10)
    doomed = [b"doomed-%d" % i for i in range(10)]
    h.rt.connect_many(doomed)
    return d, doomed


@pytest.mark.parametrize("code", sorted(CONDITIONS))
def test_redis_loading_or_busy_under_churn_loses_nothing(h, code):
    """Redis reloading its data (LOADING) or held by a script (BUSY) while the
    realtime servers keep going: the leader says so once for each thing it
    tried, waits, and reaps again once Redis answers; no live user is ever
    removed."""
    d, doomed = refusing_leader(h)
    with churning(h, [d], lost=BASE["reaper.batch_size"], kind=Tolerant, others=doomed):
        with CONDITIONS[code](h):
            d.wait_log(code, 20)
        assert d.alive()
        for u in doomed:
            h.r.pexpire(h.rt.key(u), 100)
    assert not set(doomed) & h.members()
    said = re.findall(r"(?m)^\S+ (?:warn|error): ([^:]+):.*%s" % code, d.stderr())
    assert said and len(said) == len(set(said)), f"said more than once: {said}"


def test_out_of_memory_under_churn_the_leader_reaps_each_user_with_its_event(h):
    """Out of memory (maxmemory reached, noeviction): the realtime servers'
    connects are refused, the leader's removals are not (the reap script's
    first write frees memory, and Redis lets a script that wrote go on), so a
    user who crashes meanwhile goes, with its event, and nothing half-done."""
    d, doomed = refusing_leader(h)
    with churning(h, [d], lost=BASE["reaper.batch_size"], kind=Tolerant, others=doomed):
        with out_of_memory(h):
            with pytest.raises(redis.ResponseError, match="OOM"):
                h.rt.connect(b"refused-while-full")
            for u in doomed:
                h.r.pexpire(h.rt.key(u), 100)
            wait_until(lambda: not set(doomed) & h.members(), 10,
                       what="the crashed users reaped while out of memory", alive=[d])
    got = {u for u, _ in events(h)}
    assert set(doomed) <= got

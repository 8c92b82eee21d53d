"""Every removal path answers to the stale-ratio guard and batch_size; a pass
that is cut short, paced, or meets a flushed script cache says so truthfully."""

import re
import signal
import threading

import pytest
import redis

from harness import EX_DATAERR, EX_OK, EX_TEMPFAIL, LOCK, REPO, wait_until

WATCH = {"reaper.watch_expiry": True, "reaper.enable_notifications": True,
         "reaper.interval": 3600}


def users(tag, n):
    return [b"%s-%d" % (tag, i) for i in range(n)]


def expire_all(h, who):
    """The realtime fleet is gone: every socket set runs out at once.

    100 ms, not 1: PEXPIRE deletes at once, with a "del" event instead of
    "expired", a key whose new TTL has already passed when the command ends.
    """
    pipe = h.r.pipeline(transaction=False)
    for u in who:
        pipe.pexpire(h.rt.key(u), 100)
    pipe.execute()


def commands(h, name):
    return h.commandstats().get(name, 0)


def start_leader(h, settings, pod="safety-1"):
    d = h.start(["-c", h.config(settings)], env={"POD_NAME": pod}, name=pod)
    d.wait_log(r"watching key expiry", 10)
    wait_until(lambda: len(d.cycles()) >= 1, 10, what="the first pass")
    return d


# --- 1. key-expiry events ---------------------------------------------------

def test_event_flood_is_stopped_by_the_guard(h):
    """2000 socket sets expire at once: the events may not remove everyone."""
    everyone = users(b"u", 2000)
    h.rt.connect_many(everyone)
    d = start_leader(h, {**WATCH, "reaper.batch_size": 10})
    expire_all(h, everyone)
    d.wait_log(r"stale-ratio guard: key-expiry events", 10)
    wait_until(lambda: not any(h.r.scan_iter(match=h.rt.key(b"*"), count=1000)), 10,
               what="every socket set to expire")
    # 1 % of the online set plus one batch may go before the guard samples again.
    assert len(h.members()) >= 2000 - 20 - 10, len(h.members())
    assert d.count(r"stale-ratio guard: key-expiry events") == 1, d.stderr()
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10) == EX_OK


def test_events_go_in_scripts_of_batch_size(h):
    """With the guard off, a flood is reaped in scripts of at most batch_size users."""
    everyone = users(b"u", 2000)
    h.rt.connect_many(everyone)
    start_leader(h, {**WATCH, "reaper.batch_size": 10, "reaper.max_stale_ratio": 1.0})
    h.r.config_resetstat()
    expire_all(h, everyone)
    wait_until(lambda: h.r.scard(h.rt.online) == 0, 20, what="the events to reap everyone")
    calls = commands(h, "evalsha")
    assert calls >= 2000 // 10, f"{calls} scripts for 2000 users with batch_size 10"


def test_event_queue_is_bounded_and_the_pass_reaps_the_rest(h):
    """More events than the queue holds: the excess is dropped, counted, left to the pass."""
    everyone = users(b"f", 30000)
    h.rt.connect_many(everyone)
    d = start_leader(h, {**WATCH, "reaper.batch_size": 10, "reaper.max_stale_ratio": 1.0,
                         "reaper.interval": 2})
    expire_all(h, everyone)
    wait_until(lambda: h.r.scard(h.rt.online) == 0, 60, what="events and the pass to reap everyone")
    d.wait_log(r"\(\d+ events, [1-9]\d* dropped with the queue full\)", 10)


# --- 2. the running guard -----------------------------------------------------

def test_pass_stops_when_refreshing_stops_mid_pass(h):
    """The realtime servers stop refreshing while a paced pass runs."""
    everyone = users(b"m", 4000)
    h.rt.connect_many(everyone)
    h.r.config_resetstat()
    d = h.start(["-c", h.config({"reaper.batch_size": 100, "reaper.max_rate": 1000}),
                 "--once"], env={"POD_NAME": "mid"})
    wait_until(lambda: commands(h, "sscan") >= 5, 10, what="the pass to be under way")
    h.r.delete(*[h.rt.key(u) for u in everyone])    # every socket set gone
    rc = d.wait_exit(20)
    err = d.stderr()
    assert rc == EX_TEMPFAIL, err
    assert re.search(r"stale-ratio guard: \d+ of the last \d+ users this pass checked", err), err
    removed = 4000 - len(h.members())
    # At most the batches in flight when the fraction went over.
    assert removed <= 300, f"{removed} removed after the fleet stopped refreshing\n{err}"


# --- 3. pacing and the lease ----------------------------------------------------

def test_slow_pacing_keeps_the_lease_and_finishes_the_pass(h):
    """batch_size / max_rate (2 s) is longer than the lease (1 s)."""
    live = users(b"live", 280)
    stale = users(b"stale", 20)
    h.rt.connect_many(live + stale)
    h.rt.crash_many(stale)
    rc, _, err = h.run(["-c", h.config({"reaper.batch_size": 100, "reaper.max_rate": 50,
                                          "leader.lease": 1, "leader.renew": 0.3,
                                          "reaper.max_stale_ratio": 1.0}), "--once"])
    assert rc == EX_OK, err
    assert "lost" not in err, err
    assert re.search(r"cycle done: scanned=(\d+)", err), err
    assert h.members() == set(live), err


def test_pass_that_loses_the_lease_is_not_a_success(h):
    everyone = users(b"l", 3000)
    h.rt.connect_many(everyone)
    h.r.config_resetstat()
    d = h.start(["-c", h.config({"reaper.batch_size": 100, "reaper.max_rate": 1000,
                                 "leader.renew": 0.2}), "--once"], env={"POD_NAME": "lease"})
    wait_until(lambda: commands(h, "sscan") >= 3, 10, what="the pass to be under way")
    h.r.set(LOCK, b"someone-else")
    rc = d.wait_exit(20)
    err = d.stderr()
    assert rc == EX_TEMPFAIL, err
    assert "the pass did not finish" in err, err
    assert "cycle done" not in err, err


# --- 4. a script that would fail after its first write ---------------------------

def test_wrongly_typed_stream_changes_nothing(h):
    live = users(b"live", 10)
    stale = users(b"stale", 5)
    h.rt.connect_many(live + stale)
    h.rt.crash_many(stale)
    h.r.hset(b"presence:events", "x", "y")
    conf = h.config({"events.mode": "stream"})
    rc, _, err = h.run(["-c", conf, "--once"])
    assert rc == EX_DATAERR, err
    assert "events stream presence:events holds a hash, not a stream" in err, err
    assert h.members() == set(live) | set(stale), "a user was removed with no event"
    assert "ghost" not in err, err
    # The script itself refuses before any write, should the key change after start-up.
    sha = h.r.script_load((REPO / "reaper" / "lua" / "reap.lua").read_text())
    h.r.set(b"presence:reaper:leader", b"tok")
    keys = [h.rt.online, b"presence:reaper:leader", b"presence:events"] + \
        [h.rt.key(u) for u in stale]
    try:
        h.r.evalsha(sha, len(keys), *keys, b"tok", b"stream", b"c", b"0", b"0", *stale)
        raise AssertionError("the reap script accepted a hash as the stream")
    except redis.ResponseError as e:
        assert "nothing changed" in str(e), e
    assert h.members() == set(live) | set(stale)
    rc, out, _ = h.run(["-c", conf, "-t"])
    assert rc == EX_OK
    assert b"# keys: WRONGTYPE events stream presence:events holds a hash" in out, out


def test_wrongly_typed_stream_reported_when_leading(h):
    h.rt.connect_many(users(b"live", 3))
    h.r.hset(b"presence:events", "x", "y")
    d = h.start(["-c", h.config({"events.mode": "stream"})], env={"POD_NAME": "typed"})
    d.wait_log(r"became leader", 10)
    d.wait_log(r"events stream presence:events holds a hash, not a stream", 5)


# --- 5. the script cache flushed during a pipelined pass --------------------------

@pytest.mark.parametrize("ranges", [1, 16])
def test_script_flush_during_a_pipelined_pass(h, ranges):
    flusher = h.redis.client()

    def flush(stop):
        while not stop.is_set():
            flusher.script_flush()
            stop.wait(0.002)

    for run in range(8):
        live = users(b"live%d" % run, 18000)
        stale = users(b"stale%d" % run, 2000)
        h.r.delete(h.rt.online)
        h.rt.connect_many(live + stale)   # the realtime scripts need the cache too
        h.rt.crash_many(stale)
        stop = threading.Event()
        t = threading.Thread(target=flush, args=(stop,), daemon=True)
        t.start()
        try:
            rc, _, err = h.run(["-c", h.config({"reaper.max_stale_ratio": 1.0,
                                                "reaper.scan_ranges": ranges}), "--once"])
        finally:
            stop.set()
            t.join()
        assert rc == EX_OK, err
        assert "left for the next pass" in err or h.members() == set(live), err
        if "loaded the reap script again" in err:
            break
    else:
        raise AssertionError("no flush landed inside a pass in 8 runs")


# --- 6. -t with a ghost in the guard's sample ------------------------------------

def test_check_config_with_a_ghost_in_the_sample(h):
    h.rt.connect_many(users(b"u", 50))
    h.r.persist(h.rt.key(b"u-7"))   # a socket set without a TTL
    rc, out, err = h.run(["-c", h.config(), "-t"])
    assert rc == EX_OK, err
    assert b"reaper.batch_size" in out or b"batch_size" in out, out
    assert re.search(rb"# guard probe: online set \S+ has 50 members; sampled 50", out), out


# --- 14. SIGHUP during a paced pass ------------------------------------------------

def test_sighup_during_a_paced_pass_keeps_pacing(h):
    h.rt.connect_many(users(b"p", 3000))
    h.r.config_resetstat()
    conf = h.config({"reaper.batch_size": 100, "reaper.max_rate": 1000, "reaper.interval": 3600})
    d = h.start(["-c", conf], env={"POD_NAME": "hup"})
    wait_until(lambda: commands(h, "sscan") >= 3, 10, what="the pass to be under way")
    d.signal(signal.SIGHUP)
    wait_until(lambda: d.cycles(), 15, what="the paced pass to end")
    duration = float(d.cycles()[0]["duration"])
    # 3000 users at 1000/s: about 3 s, SIGHUP or not (the last batch needs no wait).
    assert duration >= 2.5, d.stderr()
    d.wait_log(r"configuration reloaded", 5)


# --- batch_size bounds the pass's scripts too --------------------------------------

def test_pass_scripts_hold_at_most_batch_size_users_when_sscan_returns_more(h):
    """A small set of integer IDs is an intset: SSCAN returns it whole, whatever COUNT."""
    live = [b"%d" % i for i in range(1, 271)]
    stale = [b"%d" % i for i in range(1001, 1031)]
    h.rt.connect_many(live + stale)
    h.rt.crash_many(stale)
    assert h.r.object("encoding", h.rt.online) == b"intset"
    assert len(h.r.sscan(h.rt.online, 0, count=10)[1]) == 300
    h.r.config_resetstat()
    h.r.config_set("slowlog-log-slower-than", 0)
    h.r.config_set("slowlog-max-len", 1000)
    h.r.slowlog_reset()
    rc, _, err = h.run(["-c", h.config({"reaper.batch_size": 10}), "--once"])
    assert rc == EX_OK, err
    assert h.members() == set(live), err
    scripts = [e for e in h.r.slowlog_get(1000) if e["command"].startswith(b"EVALSHA")]
    reaps = [e for e in scripts if b"presence:online-users" in e["command"]]
    # EVALSHA sha numkeys online lock stream key*n token mode channel maxlen repair id*n
    users = [(len(e["command"].split(b" ")) - 11) // 2 for e in reaps]
    assert len(reaps) >= 3 and max(users) <= 10, users

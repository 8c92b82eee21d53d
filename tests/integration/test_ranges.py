"""reaper.scan_ranges: the pass's SSCAN cut into ranges of the cursor space,
each walked by a cursor of its own, several in flight at once, so that a
link with a long round trip is not paid once a batch. Over a 100 ms round
trip through the fault proxy: the same users as the plain walk, each once;
a set that grows or shrinks (its hash table resized) under the ranges loses
no one; the ranges really are in flight together (MONITOR sees the cursors
out of order), and a single walk's are not."""

import contextlib
import re
import threading

import pytest

from harness import EX_OK, wait_until

STREAM = b"presence:events"
BASE = {"reaper.batch_size": 200, "events.mode": "stream", "events.stream_maxlen": 0}
ODD = [b"", b"a\nb", b"\x00\xff", b"sp ace", b"\xe2\x98\x83", b"x" * 600]


def rev64(v):
    return int(f"{v:064b}"[::-1], 2)


@contextlib.contextmanager
def monitored_sscans(h):
    """The cursors of the SSCANs Redis runs in the body, in the order it runs them."""
    got, ready = [], threading.Event()

    def watch():
        with h.redis.client().monitor() as m:
            ready.set()
            for c in m.listen():
                cmd = c["command"]
                if cmd.startswith("ECHO") and "monitor-end" in cmd:
                    return
                if cmd.startswith("SSCAN "):
                    got.append(int(cmd.split()[2]))

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    assert ready.wait(5), "MONITOR did not start"
    yield got
    h.r.echo("monitor-end")
    t.join(10)
    assert not t.is_alive(), "MONITOR did not see the end"


def in_order(cursors):
    """Whether the cursors, read reversed, only grow: one walk, one SSCAN at a time."""
    at = [rev64(c) for c in cursors]
    return all(a < b for a, b in zip(at, at[1:]))


def fill(h, live, stale):
    pipe = h.r.pipeline(transaction=False)
    for u in live + stale:
        pipe.sadd(h.rt.online, u)
        pipe.sadd(h.rt.key(u), b"s1")
        pipe.expire(h.rt.key(u), 600)
    pipe.execute()
    h.rt.crash_many(stale)


def events(h):
    return sorted(f[b"user_id"] for _, f in h.r.xrange(STREAM))


def test_ranges_over_a_100ms_round_trip_reap_what_one_walk_reaps(h, px):
    """20,000 live users, 400 stale and odd IDs: a dry run over 100 ms with 16
    ranges prints what a direct single walk prints, each ID once; the pass
    over 100 ms removes exactly the stale users, each with one event, its
    SSCANs out of order; a single walk's come in order."""
    live = [b"live-%05d" % i for i in range(20000)] + ODD[:3]
    stale = [b"stale-%03d" % i for i in range(400)] + ODD[3:]
    fill(h, live, stale)
    rc, direct, err = h.run(["-c", h.config(dict(BASE, **{"reaper.scan_ranges": 1})),
                             "--dry-run", "--once"])
    assert rc == EX_OK, err
    assert len(direct.splitlines()) == len(stale)
    px.latency(0.05, "both")
    far = h.config(dict(BASE, **{"reaper.scan_ranges": 16}), url=px.url)
    rc, ranged, err = h.run(["-c", far, "--dry-run", "--once"], timeout=60)
    assert rc == EX_OK, err
    assert sorted(ranged.splitlines()) == sorted(direct.splitlines())
    with monitored_sscans(h) as cursors:
        rc, _, err = h.run(["-c", far, "--once"], timeout=60)
    assert rc == EX_OK, err
    assert h.members() == set(live)
    assert events(h) == sorted(stale), "a stale user removed twice, or not at all"
    assert cursors[0] == 0 and len(cursors) > 16, cursors[:20]
    assert not in_order(cursors), "the ranges' SSCANs went one after another"
    with monitored_sscans(h) as cursors:
        rc, _, err = h.run(["-c", h.config(dict(BASE, **{"reaper.scan_ranges": 1})),
                            "--dry-run", "--once"])
    assert rc == EX_OK, err
    assert len(cursors) > 16 and in_order(cursors), cursors[:20]


def table_sizes(h):
    """The online set's hash table sizes (two while it rehashes)."""
    text = h.r.execute_command("DEBUG", "HTSTATS-KEY", h.rt.online)
    text = text.decode() if isinstance(text, bytes) else text
    return [int(n) for n in re.findall(r"table size: (\d+)", text)]


def sscan_calls(h):
    return h.commandstats().get("sscan", 0)


@pytest.mark.parametrize("change", ["grows", "shrinks"])
def test_a_set_resized_under_the_ranges_loses_no_one(h, px, change):
    """The online set's hash table grows (40,000 users connect) or shrinks
    (28,500 disconnect) while 16 ranges walk it over a 100 ms round trip:
    every stale user there from the start is removed, with one event, and no
    live user is. (95% of the users leaving at once would trip the running
    stale-ratio guard, as it should; it is off here.)"""
    live = [b"live-%05d" % i for i in range(30000)]
    stale = [b"stale-%03d" % i for i in range(600)]
    fill(h, live, stale)
    before = table_sizes(h)
    px.latency(0.05, "both")
    conf = h.config(dict(BASE, **{"reaper.scan_ranges": 16, "reaper.batch_size": 100,
                                   "reaper.max_stale_ratio": 1.0}), url=px.url)
    d = h.start(["-c", conf, "--once"], name="ranges")
    wait_until(lambda: sscan_calls(h) > 0, 20, what="the pass's first SSCAN", alive=[d])
    if change == "grows":
        joined = [b"joined-%05d" % i for i in range(40000)]
        fill(h, joined, [])
        live += joined
    else:
        left, live = live[:28500], live[28500:]
        pipe = h.r.pipeline(transaction=False)
        for u in left:
            pipe.srem(h.rt.online, u)
            pipe.delete(h.rt.key(u))
        pipe.execute()
    during, calls = table_sizes(h), sscan_calls(h)
    assert d.wait_exit(60) == EX_OK, d.stderr()
    assert during != before, (before, during)
    assert sscan_calls(h) > calls, "the pass ended before the table changed"
    assert h.members() == set(live)
    assert events(h) == sorted(stale)


def test_a_small_set_comes_back_whole_and_is_not_cut(h):
    """A set of integer IDs is an intset, which SSCAN returns whole from any
    cursor: one SSCAN, no ranges, each stale user removed once."""
    live = [b"%d" % i for i in range(300)]
    stale = [b"%d" % i for i in range(1000, 1040)]
    fill(h, live, stale)
    assert h.r.object("encoding", h.rt.online) == b"intset"
    with monitored_sscans(h) as cursors:
        rc, _, err = h.run(["-c", h.config(dict(BASE, **{"reaper.scan_ranges": 16})),
                            "--once"])
    assert rc == EX_OK, err
    assert cursors == [0]
    assert h.members() == set(live)
    assert events(h) == sorted(stale)

"""Offline events: emitted by the reap script, exactly once per real removal."""

import base64
import json
import threading

from harness import wait_until

ODD = [b"", b"with space", b"new\nline", b"quo\"te's", b"back\\slash", b"\xff\xfe\x80",
       b"nul\x00byte", b"caf\xc3\xa9", b"{brace}", b"x" * 5120, b"\x7f\x01"]


def populate(h, live, stale):
    h.rt.connect_many(list(live) + list(stale))
    h.rt.crash_many(list(stale))


def decode(payload):
    """Strict JSON; the exact user ID from user_id_base64 or else from user_id."""
    ev = json.loads(payload.decode("utf-8"))   # raises on invalid UTF-8 or JSON
    assert ev["status"] == "offline" and ev["reason"] == "stale", ev
    assert isinstance(ev["ts"], int) and ev["ts"] > 1_600_000_000_000, ev
    if "user_id_base64" in ev:
        return base64.b64decode(ev["user_id_base64"]), ev
    return ev["user_id"].encode("utf-8"), ev


def stream_events(h, key=b"presence:events"):
    return [(f[b"user_id"], decode(f[b"event"])[0]) for _, f in h.r.xrange(key)]


def test_stream_one_event_per_removed_user_with_odd_ids(h):
    live = {b"live-%d" % i for i in range(10)}
    stale = set(ODD) | {b"stale-%d" % i for i in range(5)}
    populate(h, live, stale)
    rc, _, err = h.run(["-c", h.config({"events.mode": "stream"}), "--once"])
    assert rc == 0, err
    assert h.members() == live
    events = stream_events(h)
    assert len(events) == len(stale)
    for raw, from_json in events:
        assert raw == from_json, (raw, from_json)
    assert {raw for raw, _ in events} == stale


def test_valid_utf8_ids_stay_readable(h):
    populate(h, [], [b"caf\xc3\xa9"])
    rc, _, err = h.run(["-c", h.config({"events.mode": "stream"}), "--once"])
    assert rc == 0, err
    (_, f), = h.r.xrange(b"presence:events")
    ev = json.loads(f[b"event"])
    assert ev["user_id"] == "café" and "user_id_base64" not in ev, ev


def test_publish_reaches_a_real_subscriber(h):
    live = {b"live-a", b"live-b"}
    stale = {b"gone-1", b"gone-2", b"new\nline", b"\xff"}
    populate(h, live, stale)
    sub = h.redis.client().pubsub()
    sub.subscribe("chat:offline")
    assert sub.get_message(timeout=2)["type"] == "subscribe"
    rc, _, err = h.run(["-c", h.config({"events.mode": "publish",
                                          "events.channel": "chat:offline"}), "--once"])
    assert rc == 0, err
    got = []
    wait_until(lambda: _drain(sub, got) and len(got) >= len(stale), 5,
               what="one message per removed user")
    _drain(sub, got)
    assert sorted(got) == sorted(stale)
    sub.close()


def _drain(sub, got):
    while True:
        m = sub.get_message(timeout=0.05)
        if m is None:
            return True
        if m["type"] == "message":
            got.append(decode(m["data"])[0])


def test_no_events_for_kept_users_or_when_nothing_is_stale(h):
    populate(h, {b"a", b"b", b"c"}, [])
    rc, _, err = h.run(["-c", h.config({"events.mode": "stream"}), "--once"])
    assert rc == 0, err
    assert h.r.exists(b"presence:events") == 0


def test_mode_none_writes_no_stream(h):
    populate(h, {b"a"}, {b"z"})
    rc, _, err = h.run(["-c", h.config(), "--once"])
    assert rc == 0, err
    assert h.members() == {b"a"}
    assert h.r.exists(b"presence:events") == 0


def test_dry_run_emits_nothing(h):
    populate(h, {b"a"}, {b"z1", b"z2"})
    sub = h.redis.client().pubsub()
    sub.subscribe("presence:events")
    sub.get_message(timeout=2)
    for mode in ("stream", "publish"):
        rc, out, err = h.run(["-c", h.config({"events.mode": mode}), "--dry-run", "--once"])
        assert rc == 0, err
        assert sorted(out.split(b"\n")[:-1]) == [b"z1", b"z2"]
    assert h.r.exists(b"presence:events") == 0
    got = []
    _drain(sub, got)
    assert got == []
    sub.close()


def test_two_leaders_racing_announce_each_removal_once(h):
    """Two reapers that both believe they lead (different lock keys, as after a
    failover that lost the lock) scan the same set at once: every removal is
    announced exactly once."""
    stale = [b"race-%d" % i for i in range(600)]
    live = {b"keep-%d" % i for i in range(50)}
    populate(h, live, [])
    settings = {"events.mode": "stream", "reaper.interval": 0.2, "reaper.batch_size": 20,
                "reaper.max_stale_ratio": 1.0}  # the guard is not under test here
    a = h.start(["-c", h.config(dict(settings, **{"leader.key": "lock-a"}))],
                env={"POD_NAME": "racer-a"}, name="racer-a")
    b = h.start(["-c", h.config(dict(settings, **{"leader.key": "lock-b"}))],
                env={"POD_NAME": "racer-b"}, name="racer-b")
    a.wait_cycles(1, 10)
    b.wait_cycles(1, 10)
    h.rt.connect_many(stale)
    h.rt.crash_many(stale)
    wait_until(lambda: h.members() == live, 20, what="every stale user reaped")
    a.wait_cycles(1, 10)
    b.wait_cycles(1, 10)
    ids = [raw for raw, _ in stream_events(h)]
    assert len(ids) == len(stale), f"{len(ids)} events for {len(stale)} removals"
    assert sorted(ids) == sorted(stale)


def test_stream_is_trimmed_approximately(h):
    stale = [b"t-%d" % i for i in range(1500)]
    populate(h, [], stale)
    rc, _, err = h.run(["-c", h.config({"events.mode": "stream", "events.stream_maxlen": 100,
                                          "reaper.max_stale_ratio": 1.0}), "--once"])
    assert rc == 0, err
    n = h.r.xlen(b"presence:events")
    # MAXLEN ~ trims whole radix-tree nodes (100 entries by default).
    assert 100 <= n < 400, n


def test_bad_events_mode_is_a_config_error(h):
    rc, _, err = h.run(["-c", h.config({"events.mode": "kafka"}), "--once"])
    assert rc == 78
    assert "events.mode" in err and "kafka" in err

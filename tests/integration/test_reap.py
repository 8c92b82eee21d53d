"""One reconcile cycle: stale users go, live users stay, whatever their IDs."""

import re
import time
from datetime import datetime

import pytest

from harness import CYCLE_EXACT_RE, CYCLE_RE, LOCK, ONLINE, wait_until

ODD_IDS = [
    b"",
    b"with space",
    b"new\nline",
    b"{brace",
    b"*",
    b"quo\"te's",
    b"x" * 5120,
    b"\xff\xfe\x80",
    b"nul\x00byte",
    b"tab\there",
    b"back\\slash",
    b"caf\xc3\xa9",
]


def live_and_stale(h, n_live, n_stale, tag=b""):
    live = [b"live-%s%d" % (tag, i) for i in range(n_live)]
    stale = [b"stale-%s%d" % (tag, i) for i in range(n_stale)]
    h.rt.connect_many(live + stale)
    h.rt.crash_many(stale)
    return set(live), set(stale)


def cycle_line(stderr):
    lines = list(CYCLE_RE.finditer(stderr))
    assert lines, f"no 'cycle done:' info line on stderr:\n{stderr}"
    return {k: float(v) if k == "duration" else int(v) for k, v in lines[-1].groupdict().items()}


def test_once_removes_stale_and_keeps_live(h):
    live, stale = live_and_stale(h, 10, 5)
    rc, out, err = h.run(["-c", h.config(), "--once"])
    assert rc == 0, err
    assert h.members() == live


def test_once_stale_found_by_real_expiry(h):
    live, _ = live_and_stale(h, 3, 0)
    h.rt.connect(b"expired-1")
    h.rt.connect(b"expired-2")
    h.rt.crash(b"expired-1", expire=True)
    h.rt.crash(b"expired-2", expire=True)
    rc, out, err = h.run(["-c", h.config(), "--once"])
    assert rc == 0, err
    assert h.members() == live


def test_odd_ids_live_are_kept(h):
    h.rt.connect_many(ODD_IDS)
    assert h.members() == set(ODD_IDS)
    rc, out, err = h.run(["-c", h.config(), "--once"])
    assert rc == 0, err
    assert h.members() == set(ODD_IDS)
    for uid in ODD_IDS:
        assert h.r.exists(h.rt.key(uid)) == 1, uid


def test_odd_ids_stale_are_removed(h):
    live, _ = live_and_stale(h, 4, 0)
    h.rt.connect_many(ODD_IDS)
    h.rt.crash_many(ODD_IDS)
    rc, out, err = h.run(["-c", h.config(), "--once"])
    assert rc == 0, err
    assert h.members() == live
    info = cycle_line(err)
    assert info["stale"] == len(ODD_IDS) and info["removed"] == len(ODD_IDS), info


def test_odd_ids_mixed_live_and_stale(h):
    # The same awkward bytes, half live, half stale, so a mix-up between
    # similar IDs (truncation at NUL, at a space, at a newline) shows up.
    live = [b"L" + u for u in ODD_IDS] + [b"nul\x00"]
    stale = [b"S" + u for u in ODD_IDS] + [b"nul\x00byte", b"nul", b"with"]
    h.rt.connect_many(live + stale)
    h.rt.crash_many(stale)
    rc, out, err = h.run(["-c", h.config(), "--once"])
    assert rc == 0, err
    assert h.members() == set(live)


def test_many_batches_with_small_batch_size(h):
    live, stale = live_and_stale(h, 600, 400)
    h.r.config_resetstat()
    rc, out, err = h.run(["-c", h.config({"reaper.batch_size": 7}), "--once"])
    calls = h.commandstats()  # before the test's own SMEMBERS below
    assert rc == 0, err
    assert h.members() == live
    info = cycle_line(err)
    assert info["scanned"] >= 1000, info
    assert info["stale"] == 400 and info["removed"] == 400, info
    assert info["batches"] >= 50, info
    assert calls.get("smembers", 0) == 0, "the reaper must never SMEMBERS the online set"
    assert calls.get("sscan", 0) >= 50, calls


def test_cycle_info_line(h):
    live_and_stale(h, 20, 3)
    rc, out, err = h.run(["-c", h.config(), "--once"])
    assert rc == 0, err
    info = cycle_line(err)
    assert info["scanned"] == 23 and info["stale"] == 3 and info["removed"] == 3, info
    assert info["batches"] >= 1
    assert " info: cycle done:" in err, err
    exact = CYCLE_EXACT_RE.search(err)
    assert exact, ("the info line must read 'cycle done: scanned=N stale=N removed=N "
                   f"batches=N duration=S.SSSs':\n{err}")
    assert out == b"", "a real run prints nothing on stdout"


def test_once_on_empty_or_missing_online_set(h):
    rc, out, err = h.run(["-c", h.config(), "--once"])
    assert rc == 0, err
    info = cycle_line(err)
    assert info["scanned"] == 0 and info["removed"] == 0, info
    assert h.r.exists(ONLINE) == 0


def test_once_releases_the_lock(h):
    live_and_stale(h, 2, 2)
    rc, out, err = h.run(["-c", h.config(), "--once"], env={"POD_NAME": "cron-1"})
    assert rc == 0, err
    assert h.lock() is None, "--once must release the leader lock when it is done"


def test_loop_reaps_users_that_go_stale_later(h):
    live, _ = live_and_stale(h, 5, 0)
    d = h.start(["-c", h.config()], env={"POD_NAME": "loop-1"})
    d.wait_cycles(1, 10)
    h.rt.connect(b"later-1")
    h.rt.connect(b"later-2")
    assert h.members() == live | {b"later-1", b"later-2"}
    h.rt.crash(b"later-1", expire=True)
    wait_until(lambda: b"later-1" not in h.members(), 10, what="later-1 to be reaped")
    assert h.members() == live | {b"later-2"}
    assert d.alive()


def test_key_template_and_online_set_are_configurable(h):
    from harness import Realtime
    rt = Realtime(h.r, online=b"chat:online", prefix=b"chat:u:", suffix=b"")
    rt.connect_many([b"a", b"b", b"c"])
    rt.crash(b"b")
    h.rt.connect_many([b"default-stale"])
    h.rt.crash(b"default-stale")
    conf = h.config({"keys.online_set": "chat:online", "keys.socket_prefix": "chat:u:",
                     "keys.socket_suffix": ""})
    rc, out, err = h.run(["-c", conf, "--once"])
    assert rc == 0, err
    assert h.members(b"chat:online") == {b"a", b"c"}
    assert h.members() == {b"default-stale"}, "the default online set is not ours to touch"


def test_debug_text_log_escapes_odd_ids(h):
    h.rt.connect_many(ODD_IDS)
    h.rt.crash_many(ODD_IDS)
    rc, out, err = h.run(["-c", h.config(), "--once", "-v"])
    assert rc == 0, err
    assert h.members() == set()
    import re
    for line in err.splitlines():
        # A raw newline (or NUL) from an ID would start a line without a timestamp.
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|info|debug): ", line), repr(line)
    assert "\x00" not in err


def test_debug_json_log_with_odd_ids_is_valid_json(h):
    import json
    h.rt.connect_many(ODD_IDS)
    h.rt.crash_many(ODD_IDS)
    rc, out, err = h.run(["-c", h.config(), "--once", "-v", "--log-format", "json"])
    assert rc == 0, err
    assert h.members() == set()
    levels = set()
    for line in err.splitlines():
        obj = json.loads(line)
        levels.add(obj["level"])
    assert "debug" in levels, err


def test_script_cache_flushed_under_a_running_leader(h):
    """SCRIPT FLUSH (or a restart that keeps the data) answers NOSCRIPT: load again, go on."""
    live, _ = live_and_stale(h, 5, 0)
    d = h.start(["-c", h.config()], env={"POD_NAME": "flush-1"})
    d.wait_cycles(1, 10)
    for round_ in range(2):
        h.r.script_flush()
        h.r.config_resetstat()
        gone = b"flushed-%d" % round_
        h.rt.connect(gone)
        h.rt.crash(gone)
        wait_until(lambda: gone not in h.members(), 10, what=f"{gone!r} to be reaped after SCRIPT FLUSH")
        calls = h.commandstats()
        assert calls.get("script|load", 0) >= 1, calls
    assert h.members() == live
    assert d.alive()


def test_once_after_script_flush(h):
    live, stale = live_and_stale(h, 20, 4)
    rc, _, err = h.run(["-c", h.config(), "--once"])
    assert rc == 0, err
    h.r.script_flush()
    stale2 = {b"again-%d" % i for i in range(3)}
    h.rt.connect_many(stale2)
    h.rt.crash_many(stale2)
    rc, _, err = h.run(["-c", h.config(), "--once"])
    assert rc == 0, err
    assert h.members() == live


def test_max_rate_spreads_a_pass_over_time(h):
    live, stale = live_and_stale(h, 2950, 50)
    rc, _, err = h.run(["-c", h.config({"reaper.max_rate": 1000, "reaper.batch_size": 100,
                                          "reaper.max_stale_ratio": 1.0}), "--once"])
    assert rc == 0, err
    info = cycle_line(err)
    # 3000 users at 1000/s: the pass sleeps between batches, about 3 s in all
    # (the last batch needs no wait, hence 2.8 and not 3).
    assert info["duration"] >= 2.8, info
    assert info["removed"] == 50 and h.members() == live


def spread(n_users, every, offset=0):
    """Users u0..u<n-1>; every <every>th (from offset) is stale."""
    users = [b"u%d" % i for i in range(n_users)]
    stale = {u for i, u in enumerate(users) if every and i % every == offset}
    return users, stale


@pytest.mark.parametrize("n,every,batch", [
    (3000, 0, 500),     # nobody stale: one EXISTS per batch
    (3000, 1000, 500),  # 0.1 %
    (3000, 100, 500),   # 1 %
    (3000, 7, 500),     # 14 %: small groups
    (3000, 2, 500),     # 50 %: one PTTL per member
    (999, 10, 37),      # batches and groups that do not divide evenly
])
def test_screening_removes_exactly_the_stale(h, n, every, batch):
    users, stale = spread(n, every, offset=3 if every > 3 else 0)
    h.rt.connect_many(users)
    h.rt.crash_many(stale)
    rc, _, err = h.run(["-c", h.config({"reaper.batch_size": batch,
                                        "reaper.max_stale_ratio": 1}), "--once"])
    assert rc == 0, err
    assert h.members() == set(users) - stale
    info = cycle_line(err)
    assert info["stale"] == len(stale) and info["removed"] == len(stale), info


def test_screening_checks_groups_before_members(h):
    """
    With few stale users the pass asks EXISTS over groups of socket keys and
    PTTL only inside groups that came back short: far fewer commands than
    users, and the stale ones still go.
    """
    users, stale = spread(5000, 100)  # 1 %
    h.rt.connect_many(users)
    h.rt.crash_many(stale)
    h.r.config_resetstat()
    rc, _, err = h.run(["-c", h.config(), "--once"])
    calls = h.commandstats()
    assert rc == 0, err
    assert h.members() == set(users) - stale
    assert 0 < calls.get("exists", 0) < 1000, calls
    # PTTL only in the (at most 50) groups holding a stale user; the rest ran
    # inside scripts: the guard's probe (10 x 100 sampled) and the reap script
    # (one per candidate).
    pass_pttl = calls.get("pttl", 0) - 1000 - len(stale)
    assert len(stale) <= pass_pttl < 1500, calls


def test_quiet_pass_sends_a_few_commands_per_batch(h):
    """Nobody stale: per batch one SSCAN and one EXISTS, plus the guard's few calls."""
    users, _ = spread(5000, 0)
    h.rt.connect_many(users)
    h.r.config_resetstat()
    rc, _, err = h.run(["-c", h.config(), "--once"])
    calls = h.commandstats()
    assert rc == 0, err
    assert h.members() == set(users)
    calls.pop("config|resetstat", None)
    batches = calls.get("sscan", 0)
    assert 8 <= batches <= 14, calls
    assert batches - 2 <= calls.get("exists", 0) <= batches, calls
    # PTTL, GET and DEL run only inside scripts: the guard's probe (10 x 100
    # sampled users) and the lease's; HSET, TIME and PEXPIRE inside the one
    # that keeps the pass's summary (status.lua). No PTTL from the pass itself.
    assert calls.get("pttl", 0) <= 1000, calls
    assert calls.get("hset", 0) == 1, calls
    sent = sum(v for k, v in calls.items() if not k.startswith("info") and
               k not in ("pttl", "get", "del", "hset", "time", "pexpire"))
    # Besides the batches: the guard's sample (10 SRANDMEMBER, 10 probe
    # scripts), the lock, the script loads, the summary: 33 here.
    assert sent <= 2 * batches + 34, calls


def test_a_pass_longer_than_the_interval_is_followed_at_once_and_keeps_the_lease(h):
    """reaper.max_rate stretches each pass to about 3 s, three times reaper.interval:
    the next pass starts as soon as one ends (no pass is skipped or overlapped), and
    the lease is renewed on time throughout (leader.renew 0.5 s of a 2 s lease)."""
    live_and_stale(h, 2950, 50)
    conf = h.config({"reaper.max_rate": 1000, "reaper.batch_size": 100,
                     "reaper.max_stale_ratio": 1.0, "reaper.interval": 1,
                     "leader.lease": 2, "leader.renew": 0.5})
    d = h.start(["-c", str(conf)], env={"POD_NAME": "slowpass"})
    d.wait_log(r"became leader", 10)
    lowest, t_end = 2000, time.monotonic() + 7
    while time.monotonic() < t_end:
        ttl = h.r.pttl(LOCK)
        assert ttl > 0, "the lease ran out"
        lowest = min(lowest, ttl)
        time.sleep(0.05)
    d.wait_cycles(1, 10)
    done = [(datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").timestamp(),
             float(m.group(2)))
            for m in re.finditer(r"^(\S+) info: cycle done: .* duration=([0-9.]+)s$",
                                 d.stderr(), re.M)]
    assert len(done) >= 2, d.stderr()
    assert all(duration >= 2.5 for _, duration in done), done
    gaps = [(end2 - dur2) - end1 for (end1, _), (end2, dur2) in zip(done, done[1:])]
    print(f"passes of {[round(x, 2) for _, x in done]} s, gaps between them "
          f"{[round(g, 3) for g in gaps]} s, lowest lease left {lowest} ms")
    assert all(-0.05 <= g <= 0.3 for g in gaps), gaps
    assert lowest >= 1200, lowest
    assert "lost leadership" not in d.stderr() and "renewal failed" not in d.stderr()

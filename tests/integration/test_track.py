"""reaper.track_expiry: the pass reads each socket set's TTL, keeps those close
to expiry in a calendar, and checks each when it is due, so a crashed user goes
offline within a second of its set's TTL running out, on a stock redis-server
(no notify-keyspace-events), through the guard and batch_size like every
removal."""

import re
import signal
import time

import pytest

from harness import EX_OK, LOCK, free_port, hold_for, wait_until
from test_metrics import scrape

TRACK = {"reaper.track_expiry": True, "reaper.interval": 60, "reaper.guard_min_users": 10,
         "log.level": "debug"}

# IDs a user may have: any bytes.
ODD = [b"", b"a\nb", b"\x00\xff", b"sp ace", b"\xe2\x98\x83"]


def users(tag, n):
    return [b"%s-%d" % (tag, i) for i in range(n)]


def redis_ms(h):
    sec, usec = h.r.time()
    return sec * 1000 + usec // 1000


def run_out(h, ttls):
    """The users' server died: each set runs out after its TTL (ms); their expiry times."""
    pipe = h.r.pipeline(transaction=False)
    for u, ttl in ttls.items():
        pipe.pexpire(h.rt.key(u), ttl)
    pipe.execute()
    return {u: h.r.execute_command("PEXPIRETIME", h.rt.key(u)) for u in ttls}


def removal_latencies(h, expiry, timeout):
    """Poll the online set (never the socket sets: reading one would expire it);
    for each user, ms from its set's expiry to when it was seen gone."""
    left, out = set(expiry), {}
    deadline = time.monotonic() + timeout
    while left:
        assert time.monotonic() < deadline, f"not reaped in {timeout} s: {sorted(left)}"
        pipe = h.r.pipeline(transaction=False)
        order = sorted(left)
        for u in order:
            pipe.sismember(h.rt.online, u)
        pipe.time()
        res = pipe.execute()
        now = res[-1][0] * 1000 + res[-1][1] // 1000
        for u, there in zip(order, res):
            if not there:
                out[u] = now - expiry[u]
                left.discard(u)
        time.sleep(0.01)
    return out


def until_ms(h, end):
    """Seconds from now (Redis's clock) to end, ms on that clock."""
    return max(0.0, (end - redis_ms(h)) / 1000)


def calendar_removed(d):
    return sum(int(n) for n in re.findall(r"expiry calendar: checked \d+, gone \d+, "
                                          r"removed (\d+)", d.stderr()))


def calendar_checked(d):
    return sum(int(n) for n in re.findall(r"expiry calendar: checked (\d+)", d.stderr()))


def leader(h, settings, pod="t-1", args=()):
    d = h.start(["-c", h.config(settings)] + list(args), env={"POD_NAME": pod}, name=pod)
    wait_until(lambda: len(d.cycles()) >= 1 or "dry-run: scanned" in d.stderr(), 10,
               what=f"{pod}'s first pass", alive=[d])
    return d


def test_crashed_users_go_within_a_second_of_expiry_on_a_stock_server(h):
    assert h.r.config_get("notify-keyspace-events")["notify-keyspace-events"] == ""
    live = users(b"live", 50)
    crashed = users(b"crash", 6) + ODD
    h.rt.connect_many(live + crashed)
    expiry = run_out(h, {u: 2500 + 300 * i for i, u in enumerate(crashed)})
    d = leader(h, TRACK)
    lat = removal_latencies(h, expiry, 15)
    assert max(lat.values()) <= 1000, lat
    assert h.members() == set(live)
    assert len(d.cycles()) == 1, "the pass (every 60 s) must not be what reaped them"
    assert calendar_removed(d) == len(crashed), d.stderr()
    print(f"expiry to offline: worst {max(lat.values())} ms of {len(lat)}")


def test_a_heartbeat_just_before_the_predicted_expiry_is_never_reaped(h):
    """Race the refresh against the check: each set is refreshed when under
    40 ms from running out, about 14 times each, 560 races in all. A set the
    heartbeat reached too late really expired and may go; no other may."""
    racers = users(b"racer", 40)
    h.rt.connect_many(racers)
    run_out(h, {u: 600 for u in racers})
    d = leader(h, TRACK)
    beat = h.r.register_script(b"""
        local late = {}
        for i, k in ipairs(KEYS) do
          local t = redis.call('PTTL', k)
          if t == -2 then late[#late + 1] = i
          elseif t < tonumber(ARGV[1]) then redis.call('PEXPIRE', k, ARGV[2]) end
        end
        return late""")
    keys = [h.rt.key(u) for u in racers]
    late, refreshed_until = set(), time.monotonic() + 8
    while time.monotonic() < refreshed_until:
        late.update(racers[i - 1] for i in beat(keys=keys, args=[40, 600]))
        gone = set(racers) - h.members()
        assert gone <= late, f"reaped while refreshed in time: {sorted(gone - late)}"
        time.sleep(0.005)
    assert len(late) <= 4, f"the heartbeat itself was late too often: {sorted(late)}"
    checks = calendar_checked(d)
    assert checks >= 200, f"only {checks} checks: the race was not run"
    assert h.members() >= set(racers) - late
    print(f"{checks} checks raced the heartbeat; {len(late)} late heartbeats")


def test_a_new_leader_reaps_at_expiry_once_its_first_pass_ran(h):
    settings = dict(TRACK, **{"leader.lease": 2, "leader.renew": 0.3})
    live = users(b"live", 30)
    h.rt.connect_many(live)
    a = leader(h, settings, pod="t-a")
    b = h.start(["-c", h.config(settings)], env={"POD_NAME": "t-b"}, name="t-b")
    b.wait_log(r"standby: lock held by", 10)
    # After a's pass: only b's first pass can learn these.
    late = users(b"late", 5)
    h.rt.connect_many(late)
    expiry = run_out(h, {u: 3500 + 400 * i for i, u in enumerate(late)})
    a.signal(signal.SIGTERM)
    assert a.wait_exit(10) == EX_OK
    b.wait_log(r"became leader", 5)
    wait_until(lambda: len(b.cycles()) >= 1, 5, what="b's first pass", alive=[b])
    lat = removal_latencies(h, expiry, 15)
    assert max(lat.values()) <= 1000, lat
    assert h.members() == set(live)
    assert len(b.cycles()) == 1 and calendar_removed(b) == len(late), b.stderr()


def test_a_lost_leadership_clears_the_calendar(h):
    settings = dict(TRACK, **{"leader.lease": 2, "leader.renew": 0.2})
    doomed = users(b"doomed", 5)
    h.rt.connect_many(users(b"live", 30) + doomed)
    expiry = run_out(h, {u: 2500 for u in doomed})
    d = leader(h, settings)
    assert int(re.search(r"tracking (\d+) sets", d.stderr()).group(1)) >= 5, d.stderr()
    h.r.set(LOCK, b"another-instance", px=60000)
    d.wait_log(r"lost leadership", 5)
    hold_for(until_ms(h, max(expiry.values()) + 1500), lambda: h.members() >= set(doomed),
             what="nobody removed after the leadership went")
    assert calendar_checked(d) == 0, "a standby checked its old calendar"
    assert d.alive()


def test_a_tiny_cap_stops_tracking_says_so_and_the_pass_still_reaps(h):
    settings = dict(TRACK, **{"reaper.track_max": 3, "reaper.interval": 2})
    live = users(b"live", 50)
    crashed = users(b"crash", 20)
    h.rt.connect_many(live + crashed)
    run_out(h, {u: 3000 + 50 * i for i, u in enumerate(crashed)})
    d = leader(h, settings)
    d.wait_log(r"expiry calendar full: it tracks 3 sets \(reaper.track_max\); \d+ more", 10)
    wait_until(lambda: h.members() == set(live), 15, what="the pass to reap the untracked",
               alive=[d])
    d.wait_log(r"expiry calendar: room again", 10)
    assert d.count(r"expiry calendar full") == 1, d.stderr()
    passes = sum(int(c["removed"]) for c in d.cycles())
    assert passes >= 1 and passes + calendar_removed(d) == len(crashed), d.stderr()


def test_the_cap_is_counted_in_the_metrics(h):
    port = free_port()
    settings = dict(TRACK, **{"reaper.track_max": 2, "reaper.interval": 2,
                              "metrics.listen": f"127.0.0.1:{port}"})
    h.rt.connect_many(users(b"live", 20) + users(b"crash", 8))
    run_out(h, {u: 2500 for u in users(b"crash", 8)})
    d = leader(h, settings)
    d.wait_log(r"expiry calendar full", 10)
    m = scrape(port)
    assert m["presence_reaper_calendar_untracked_total"] >= 6, m
    assert m["presence_reaper_calendar_full"] == 1, m
    wait_until(lambda: scrape(port)["presence_reaper_calendar_removals_total"] +
               sum(int(c["removed"]) for c in d.cycles()) == 8, 15,
               what="every crashed user reaped and counted", alive=[d])
    assert scrape(port)["presence_reaper_calendar_checks_total"] >= 1


def test_dry_run_prints_each_calendar_hit_once_and_writes_nothing(h):
    live = users(b"live", 20)
    crashed = users(b"crash", 3) + ODD[1:3]
    h.rt.connect_many(live + crashed)
    expiry = run_out(h, {u: 2000 + 300 * i for i, u in enumerate(crashed)})
    online = h.r.execute_command("DEBUG", "DIGEST-VALUE", h.rt.online)
    h.r.config_resetstat()
    d = leader(h, TRACK, args=["--dry-run"])
    want = sorted([b"crash-0", b"crash-1", b"crash-2", b"a\\nb", b"\\x00\\xff"])
    wait_until(lambda: len(d.stdout().splitlines()) >= len(want), 10,
               what="every hit printed", alive=[d])
    hold_for(until_ms(h, max(expiry.values()) + 1500),
             lambda: len(d.stdout().splitlines()) <= len(want), what="each hit printed once")
    assert sorted(d.stdout().splitlines()) == want, d.stdout()
    assert h.r.execute_command("DEBUG", "DIGEST-VALUE", h.rt.online) == online
    written = {k for k in h.commandstats() if k in ("srem", "sadd", "xadd", "publish",
                                                   "pexpire", "del")}
    assert not written, written


def test_the_guard_refuses_a_mass_expiry_seen_by_the_calendar(h):
    settings = dict(TRACK, **{"reaper.max_stale_ratio": 0.5})
    live = users(b"live", 20)
    doomed = users(b"doomed", 60)
    h.rt.connect_many(live + doomed + [b"ghost"])
    h.r.persist(h.rt.key(b"ghost"))       # a ghost in the guard's sample
    expiry = run_out(h, {u: 2500 for u in doomed})
    d = leader(h, settings)
    d.wait_log(r"stale-ratio guard: expiry calendar", 10)
    # Rounds that keep the fraction under 0.5 of the 81 may go; not the rest.
    hold_for(until_ms(h, max(expiry.values()) + 1500),
             lambda: 60 - len(h.members() & set(doomed)) <= 40, what="at most 40 removed")
    removed = 60 - len(h.members() & set(doomed))
    assert removed <= 40, f"{removed} of 60 removed past the guard"
    assert d.count(r"stale-ratio guard: expiry calendar") == 1, d.stderr()
    assert d.alive()


def test_the_calendar_reaps_in_scripts_of_batch_size(h):
    settings = dict(TRACK, **{"reaper.batch_size": 4, "reaper.max_stale_ratio": 1.0})
    crashed = users(b"crash", 30)
    h.rt.connect_many(users(b"live", 10) + crashed)
    expiry = run_out(h, {u: 2500 for u in crashed})
    d = leader(h, settings)
    h.r.config_set("slowlog-log-slower-than", 0)
    h.r.config_set("slowlog-max-len", 100000)
    h.r.slowlog_reset()
    lat = removal_latencies(h, expiry, 15)
    assert max(lat.values()) <= 1000, lat
    reaps = [e["command"].split() for e in h.r.slowlog_get(100000)
             if e["command"].lower().startswith(b"evalsha") and int(e["command"].split()[2]) > 1]
    sizes = [int(c[2]) - 3 for c in reaps]    # online set, lock, stream, then one per user
    assert sizes and max(sizes) <= 4 and sum(sizes) >= 30, sizes
    assert calendar_removed(d) == 30


@pytest.mark.parametrize("ranges", [1, 8])
def test_a_script_cache_flushed_mid_pass_is_met_by_loading_the_scan_script_again(h, ranges):
    """With 8 ranges, several scan scripts in flight meet NOSCRIPT at once:
    each range loads it again and goes on from its own cursor."""
    everyone = users(b"u", 20000)
    h.rt.connect_many(everyone)
    h.r.config_resetstat()
    d = h.start(["-c", h.config(dict(TRACK, **{"reaper.max_rate": 8000,
                                               "reaper.batch_size": 200,
                                               "reaper.scan_ranges": ranges}))],
                env={"POD_NAME": "flush"}, name="flush")
    # The scan script's own SSCANs (the guard's probe scripts come before the pass).
    wait_until(lambda: h.commandstats().get("sscan", 0) >= 5, 10,
               what="the pass to be under way", alive=[d])
    h.r.script_flush()
    wait_until(lambda: len(d.cycles()) >= 1, 20, what="the pass to finish", alive=[d])
    assert int(d.cycles()[0]["scanned"]) >= 20000, d.stderr()
    assert "the script cache was flushed during the pass" in d.stderr()
    assert h.members() == set(everyone)


def test_checks_run_between_the_batches_of_a_long_pass(h):
    """Passes paced to ~5 s start every 7 s; each crashed set is seen by a pass
    before it runs out (the second pass visits the set-scan order of the first)
    and runs out at ~9 s, in the middle of the second pass: it must go within a
    second, not when that pass ends."""
    everyone = users(b"u", 20000)
    crashed = users(b"crash", 3)
    h.rt.connect_many(everyone + crashed)
    expiry = run_out(h, {u: 9000 + 200 * i for i, u in enumerate(crashed)})
    d = h.start(["-c", h.config(dict(TRACK, **{"reaper.interval": 7, "reaper.max_rate": 4000,
                                               "reaper.batch_size": 100}))],
                env={"POD_NAME": "long"}, name="long")
    lat = removal_latencies(h, expiry, 20)
    passes = len(d.cycles())
    assert max(lat.values()) <= 1000, (lat, d.stderr()[-3000:])
    assert passes == 1, f"{passes} passes ended before the last removal: not mid-pass"
    assert calendar_removed(d) == 3, d.stderr()[-3000:]

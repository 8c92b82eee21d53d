"""Sharded presence (keys.shards) on a single Redis.

Every shard is a whole presence layout (online set, socket sets, lock, event
stream) named by <shard> in the key templates; the realtime servers put a
user in shard crc32(id) % N.  In the loop each replica runs every shard in a
thread of its own, announces itself in one sorted set and takes at most
ceil(shards / live replicas) shard locks.  These tests check the
configuration errors, --once, dry runs, and that every shard has exactly one
holder while replicas come, die, leave, reload and Redis restarts.
"""

import collections
import json
import random
import re
import signal
import threading
import time
import zlib

import pytest

from harness import (EX_CONFIG, EX_DATAERR, EX_OK, TOKEN_RE, Realtime, free_port, hold_for,
                     logged, wait_until)
import test_churn as churn
from test_dryrun import assert_no_writes
from test_metrics import scrape

SHARDS = 16
LEASE, RENEW, INTERVAL = 2, 0.5, 1
ONLINE_T = "presence:{<shard>}:online-users"
PREFIX_T = "presence:{<shard>}:user:"
LOCK_T = "presence:{<shard>}:reaper-lock"
STREAM_T = "presence:{<shard>}:events"
MEMBERS = b"presence:{members}:reaper-lock"     # leader.key with <shard> -> "members"
FOREIGN = b"other-pod:42:00000000deadbeef"

SHARDED = {
    "keys.online_set": ONLINE_T,
    "keys.socket_prefix": PREFIX_T,
    "keys.shards": SHARDS,
    "leader.key": LOCK_T,
    "leader.lease": LEASE,
    "leader.renew": RENEW,
    "reaper.interval": INTERVAL,
}

# Users with a live socket set missing from their shard's online set, over
# every shard at once (KEYS: online set, socket set, per user; ARGV: the users).
LIVE_ONLINE_CHECK = b"""
local bad = {}
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[2 * i]) == 1 and redis.call('SISMEMBER', KEYS[2 * i - 1], ARGV[i]) == 0 then
    bad[#bad + 1] = ARGV[i]
  end
end
return bad
"""


def key(template, shard):
    return template.replace("<shard>", str(shard)).encode()


def shard_of(uid, n=SHARDS):
    """The realtime servers' rule (README, packaging/realtime/shard.ts)."""
    return zlib.crc32(uid) % n


def users_in(shard, count, tag, n=SHARDS):
    """`count` user IDs that the realtime servers put in `shard`."""
    out, i = [], 0
    while len(out) < count:
        uid = b"%s-%d" % (tag, i)
        if shard_of(uid, n) == shard:
            out.append(uid)
        i += 1
    return out


def conf(h, extra=None, name=None):
    return h.config({**SHARDED, **(extra or {})}, name=name)


class Layout:
    """The realtime servers' side of a sharded layout: one Realtime per shard."""

    def __init__(self, r, names=range(SHARDS)):
        self.r = r
        self.names = [str(s) for s in names]
        self.rt = {s: Realtime(r, online=key(ONLINE_T, s), prefix=key(PREFIX_T, s))
                   for s in self.names}

    def of(self, uid):
        return self.names[shard_of(uid, len(self.names))]

    def populate(self, live, stale):
        """Connect every user in its shard; the stale ones' servers then crash."""
        for s in self.names:
            self.rt[s].connect_many([u for u in live + stale if self.of(u) == s])
            self.rt[s].crash_many([u for u in stale if self.of(u) == s])

    def online(self, s):
        return set(self.r.smembers(key(ONLINE_T, s)))

    def all_online(self):
        pipe = self.r.pipeline(transaction=False)
        for s in self.names:
            pipe.smembers(key(ONLINE_T, s))
        return dict(zip(self.names, pipe.execute()))

    def locks(self):
        pipe = self.r.pipeline(transaction=False)
        for s in self.names:
            pipe.get(key(LOCK_T, s))
        return dict(zip(self.names, pipe.execute()))


def holders(lay, daemons):
    """shard -> the replica whose token is its lock (None: free, or not ours).

    A token must carry the replica's identity (POD_NAME) and pid, so two
    replicas can never both be counted for one lock value.
    """
    by_pid = {d.pid: d for d in daemons}
    out = {}
    for s, v in lay.locks().items():
        m = TOKEN_RE.match(v) if v else None
        d = by_pid.get(int(m.group("pid"))) if m else None
        out[s] = d if d is not None and m.group("ident") == d.name.encode() else None
    return out


def spread(lay, daemons):
    """replica name -> shards it holds, and how many shards nobody of ours holds."""
    count = collections.Counter()
    free = 0
    for d in holders(lay, daemons).values():
        if d is None:
            free += 1
        else:
            count[d.name] += 1
    return count, free


def balanced(lay, daemons, cap):
    """Every shard held by one of `daemons`, none holding more than cap."""
    count, free = spread(lay, daemons)
    return free == 0 and max(count.values()) <= cap and count


def start_replicas(h, names, config=None, extra=None):
    config = config or conf(h, extra)
    return [h.start(["-c", config], env={"POD_NAME": n}, name=n) for n in names]


def metered_replicas(h, names, extra=None):
    """Replicas with a metrics listener each (d.port), each on a file of its own (d.conf)."""
    ds = []
    for n in names:
        port = free_port()
        path = conf(h, {"metrics.listen": f"127.0.0.1:{port}", **(extra or {})}, name=f"{n}.conf")
        d = h.start(["-c", path], env={"POD_NAME": n}, name=n)
        d.port, d.conf = port, path
        ds.append(d)
    return ds


def believed_holders(lay, ds):
    """Every shard: exactly one replica says it holds it (shard_holder), the one Redis names."""
    says = collections.defaultdict(list)
    for d in ds:
        m = scrape(d.port)
        for s in lay.names:
            if m[f'presence_reaper_shard_holder{{shard="{s}"}}'] == 1:
                says[s].append(d)
    held = holders(lay, ds)
    wrong = {s: [d.name for d in says[s]] for s in lay.names if says[s] != [held[s]]}
    assert not wrong, f"shards held by other than one replica, per its metrics: {wrong}"
    return says


def settle(h, lay, daemons, cap, timeout=15):
    what = f"all {len(lay.names)} shards held, at most {cap} by each of {len(daemons)} replicas"
    return wait_until(lambda: balanced(lay, daemons, cap), timeout, interval=0.05, what=what,
                      alive=daemons)


def three_settled(h, metered=False):
    """Three replicas sharing the 16 shards, and the shards the first of them holds."""
    lay = Layout(h.r)
    ds = metered_replicas(h, "abc") if metered else start_replicas(h, "abc")
    settle(h, lay, ds, 6)
    return lay, ds, sorted(s for s, d in holders(lay, ds).items() if d is ds[0])


def cycles_of(text, shard):
    return re.findall(r"(?m)^\S+ info: shard %s: cycle done: " % re.escape(str(shard)), text)


def released_since(d, mark):
    """Shards whose lock d released after offset `mark` of its stderr."""
    return sorted(re.findall(r"(?m)^\S+ info: shard (\d+): lock released$", d.stderr()[mark:]))


def member_idents(h):
    return sorted(TOKEN_RE.match(m).group("ident") for m in h.r.zrange(MEMBERS, 0, -1))


# --- 1. configuration ------------------------------------------------------------

LONG = "n" * 65

@pytest.mark.parametrize("settings,message", [
    ({"keys.shards": 4, "leader.key": LOCK_T},
     r'keys\.online_set "presence:online-users" must name <shard> with keys\.shards'),
    ({**SHARDED, "leader.key": "presence:reaper:leader"},
     r'leader\.key "presence:reaper:leader" must name <shard> with keys\.shards'),
    ({**SHARDED, "events.mode": "stream"},
     r'events\.stream "presence:events" must name <shard> with keys\.shards'),
    ({**SHARDED, "keys.shards": None},
     r'keys\.online_set "presence:\{<shard>\}:online-users" names <shard>, but keys\.shards is not set'),
    ({**SHARDED, "keys.shards": 0},
     r'leader\.key "presence:\{<shard>\}:reaper-lock" names <shard>, but keys\.shards is not set'),
    ({**SHARDED, "keys.shards": ["eu", "us", "eu"]}, r"keys\.shards: element 3: named twice"),
    ({**SHARDED, "keys.shards": ["eu", "a b"]},
     r"keys\.shards: element 2: a name is 1 to 64 of A-Z a-z 0-9 _ \. -"),
    ({**SHARDED, "keys.shards": [""]}, r"keys\.shards: element 1: a name is 1 to 64 of"),
    ({**SHARDED, "keys.shards": [LONG]}, r"keys\.shards: element 1: a name is 1 to 64 of"),
    ({**SHARDED, "keys.shards": []}, r"keys\.shards: a list of 1 to 256 names"),
    ({**SHARDED, "keys.shards": [1, 2]}, r"keys\.shards: element 1: not a string"),
    ({**SHARDED, "keys.shards": -1}, r"keys\.shards: -1 is out of range \(0\.\.256\)"),
    ({**SHARDED, "keys.shards": 257}, r"keys\.shards: 257 is out of range \(0\.\.256\)"),
    ({**SHARDED, "keys.shards": "4"}, r"keys\.shards: wrong type \(expected a count or a list"),
    ({**SHARDED, "keys.shards": 2.5}, r"keys\.shards: wrong type"),
    ({**SHARDED, "reaper.watch_expiry": True},
     r"reaper\.watch_expiry works with one online set; with keys\.shards"),
    ({**SHARDED, "leader.members_key": "presence:{<shard>}:members"},
     r'leader\.members_key "presence:\{<shard>\}:members": one key for all the shards, so it '
     r"may not name <shard>"),
])
def test_config_error_exits_78_and_says_why(bare, settings, message):
    path = bare.config(settings, url="redis://127.0.0.1:1/0")
    for mode in (["-t"], ["--once"], []):
        rc, out, err = bare.run(["-c", path] + mode, timeout=10)
        assert rc == EX_CONFIG, (mode, err)
        assert logged(err, "error", message), (mode, err)
        assert "configuration invalid" in err, err


@pytest.mark.parametrize("shards", [1, 256, ["n" * 64], ["A-z_0.9"]])
def test_config_limits_are_accepted(bare, shards):
    path = bare.config({**SHARDED, "keys.shards": shards}, url="redis://127.0.0.1:1/0")
    rc, out, err = bare.run(["-c", path, "-t"], timeout=30)
    assert rc == EX_OK, err
    n = shards if isinstance(shards, int) else len(shards)
    assert out.count(b"\n# shard ") == n, out[-2000:]


def test_check_config_prints_the_shards_and_the_members_key(h):
    rc, out, err = h.run(["-c", conf(h), "-t"])
    assert rc == EX_OK, err
    assert b"\n  shards = 16;\n" in out, out
    assert b'\n  members_key = "presence:{members}:reaper-lock";\n' in out, out
    assert b"# shards: 16; replicas share them through presence:{members}:reaper-lock\n" in out
    for s in range(SHARDS):
        assert (b"# shard %d: node " % s) in out, out
    rc, out, err = h.run(["-c", conf(h, {"keys.shards": ["eu", "us"],
                                         "leader.key": "locks:<shard>:reaper"}), "-t"])
    assert rc == EX_OK, err
    assert b'\n  shards = [ "eu", "us" ];\n' in out, out
    assert b'\n  members_key = "locks:members:reaper";\n' in out, out
    shards = re.findall(rb"(?m)^# shard (\S+): node [^,]+, online set (\S+): 0 members, "
                        rb"lock (\S+): free$", out)
    assert shards == [(b"eu", b"presence:{eu}:online-users", b"locks:eu:reaper"),
                      (b"us", b"presence:{us}:online-users", b"locks:us:reaper")], out
    # An explicit members_key is kept as written.
    rc, out, err = h.run(["-c", conf(h, {"leader.members_key": "fleet"}), "-t"])
    assert rc == EX_OK and b'\n  members_key = "fleet";\n' in out, out


LONGEST = ["%064d" % i for i in range(256)]


def test_the_most_shards_with_the_longest_names(h):
    """256 shards of 64-byte names: -t prints the list whole, as a file that loads
    again, and /metrics carries every shard's series."""
    rc, out, err = h.run(["-c", conf(h, {"keys.shards": LONGEST}), "-t"])
    assert rc == EX_OK, err
    listed = [line for line in out.split(b"\n") if line.startswith(b"  shards = ")]
    assert listed == [b"  shards = [ " + b", ".join(b'"%s"' % n.encode() for n in LONGEST) + b" ];"]
    assert out.count(b"\n# shard ") == 256
    again = h.dir / "again.conf"
    again.write_bytes(out)
    rc, out2, err = h.run(["-c", str(again), "-t"])
    assert rc == EX_OK, err
    assert out2.split(b"\n")[1:] == out.split(b"\n")[1:], "-t's output loads as the same settings"

    lay = Layout(h.r, LONGEST)
    live = [u for s in (0, 255) for u in users_in(s, 2, b"live", 256)]
    stale = [u for s in (0, 255) for u in users_in(s, 2, b"stale", 256)]
    lay.populate(live, stale)
    d = metered_replicas(h, "a", {"keys.shards": LONGEST})[0]
    settle(h, lay, [d], 256)
    wait_until(lambda: all(lay.online(s) == {u for u in live if lay.of(u) == s}
                           for s in (LONGEST[0], LONGEST[255])), 2 * INTERVAL + 2,
               what="the first and last shards reaped", alive=[d])
    wait_until(lambda: all(cycles_of(d.stderr(), n) for n in LONGEST), 2 * INTERVAL + 2,
               what="a pass of every shard", alive=[d])
    m = scrape(d.port)     # the strict parser: a cut-off text fails here
    assert m["presence_reaper_shards_held"] == 256
    assert m["presence_reaper_shard_users_removed_total{shard=\"%s\"}" % LONGEST[255]] == 2
    for n in LONGEST:
        assert m[f'presence_reaper_shard_passes_total{{result="ok",shard="{n}"}}'] >= 1, n


# --- 2. --once ---------------------------------------------------------------------

@pytest.fixture
def four(h):
    """Four shards, each with five live users and three whose server crashed."""
    lay = Layout(h.r, range(4))
    live = {s: users_in(int(s), 5, b"live", 4) for s in lay.names}
    stale = {s: users_in(int(s), 3, b"stale", 4) for s in lay.names}
    lay.populate(sum(live.values(), []), sum(stale.values(), []))
    return h, lay, live, stale


def test_once_reaps_every_shard(four):
    h, lay, live, stale = four
    rc, out, err = h.run(["-c", conf(h, {"keys.shards": 4}), "--once"], env={"POD_NAME": "cron"})
    assert rc == EX_OK, err
    for s in lay.names:
        assert lay.online(s) == set(live[s]), s
        assert len(cycles_of(err, s)) == 1, err
        assert re.search(r"shard %s: cycle done: scanned=8 stale=3 removed=3 " % s, err), err
    assert lay.locks() == {s: None for s in lay.names}, "--once must give every lock back"
    assert h.r.exists(MEMBERS) == 0, "--once does not join the replica membership"


def test_once_leaves_a_held_shard_alone(four):
    h, lay, live, stale = four
    h.r.set(key(LOCK_T, 2), FOREIGN, px=60000)
    rc, out, err = h.run(["-c", conf(h, {"keys.shards": 4}), "--once"], env={"POD_NAME": "cron"})
    assert rc == EX_OK, err
    assert lay.online("2") == set(live["2"] + stale["2"]), "a held shard must not be reaped"
    assert h.r.get(key(LOCK_T, 2)) == FOREIGN
    assert logged(err, "info", r"shard 2: another instance holds the lock presence:\{2\}:"
                  r"reaper-lock \(holder %s\); nothing to do" % FOREIGN.decode()), err
    assert cycles_of(err, 2) == [], err
    for s in ("0", "1", "3"):
        assert lay.online(s) == set(live[s]), s
        assert len(cycles_of(err, s)) == 1, err


def test_once_wrongtype_in_one_shard_reaps_the_others_and_exits_65(four):
    """The single online set's --once exits 65 on WRONGTYPE (test_bad_input); so does a shard."""
    h, lay, live, stale = four
    h.r.delete(key(ONLINE_T, 1))
    h.r.set(key(ONLINE_T, 1), b"not a set")
    rc, out, err = h.run(["-c", conf(h, {"keys.shards": 4}), "--once"], env={"POD_NAME": "cron"})
    assert rc == EX_DATAERR, err
    assert logged(err, "error", r"shard 1: .*WRONGTYPE"), err
    assert h.r.get(key(ONLINE_T, 1)) == b"not a set"
    for s in ("0", "2", "3"):
        assert lay.online(s) == set(live[s]), s
    assert lay.locks() == {s: None for s in lay.names}


def test_check_config_lists_each_shard_and_its_holder_escaped(four):
    h, lay, live, stale = four
    evil = b"evil\x1b[2J\npod:7:00000000deadbeef"
    h.r.set(key(LOCK_T, 1), evil, px=60000)
    h.r.set(key(LOCK_T, 3), FOREIGN, px=60000)
    rc, out, err = h.run(["-c", conf(h, {"keys.shards": 4}), "-t"])
    assert rc == EX_OK, err
    assert b"\x1b" not in out, "a lock value reached stdout unescaped"
    lines = dict(re.findall(rb"(?m)^# shard (\d): (node .*)$", out))
    assert len(lines) == 4, out
    for s, holder in ((b"0", b"free"), (b"1", rb"evil\x1b[2J\npod:7:00000000deadbeef"),
                      (b"2", b"free"), (b"3", FOREIGN)):
        assert lines[s].endswith(b", online set presence:{%s}:online-users: 8 members, "
                                 b"lock presence:{%s}:reaper-lock: %s" % (s, s, holder)), lines[s]
    # --once logs the same holder escaped, and leaves both shards alone.
    rc, out, err = h.run(["-c", conf(h, {"keys.shards": 4}), "--once"])
    assert rc == EX_OK, err
    assert "\x1b" not in err and logged(err, "info", re.escape(r"(holder evil\x1b[2J\npod:7:")), err
    assert lay.online("1") == set(live["1"] + stale["1"])
    assert lay.online("0") == set(live["0"])


# --- 3. dry run -------------------------------------------------------------------------

def test_dry_run_once_reports_every_shard_and_writes_nothing(four):
    h, lay, live, stale = four
    before = h.digest()
    h.r.config_resetstat()
    rc, out, err = h.run(["-c", conf(h, {"keys.shards": 4}), "--dry-run", "--once"])
    assert rc == EX_OK, err
    assert sorted(out.split()) == sorted(sum(stale.values(), [])), out
    for s in lay.names:
        assert logged(err, "info", r"shard %s: dry-run: scanned=8 stale=3 " % s), err
    assert h.digest() == before, "dry run changed the data set"
    assert_no_writes(h)


def test_dry_run_loop_reports_every_shard_and_writes_nothing(four):
    h, lay, live, stale = four
    before = h.digest()
    h.r.config_resetstat()
    d = h.start(["-c", conf(h, {"keys.shards": 4}), "--dry-run"], env={"POD_NAME": "shadow"})
    for s in lay.names:   # two passes of every shard
        wait_until(lambda: len(logged(d, "info", r"shard %s: dry-run: scanned=8 stale=3 " % s)) >= 2,
                   10, what=f"two dry-run passes of shard {s}", alive=[d])
    everyone = sorted(sum(stale.values(), []))
    wait_until(lambda: sorted(set(d.stdout().split())) == everyone, 5,
               what="every shard's stale IDs on stdout")
    assert h.digest() == before, "dry run changed the data set"
    assert h.r.exists(MEMBERS) == 0 and lay.locks() == {s: None for s in lay.names}
    assert_no_writes(h)


# --- 4.-7., 9.-11. the loop: fair share across replicas -----------------------------------

def test_three_replicas_share_sixteen_shards(h):
    lay = Layout(h.r)
    ds = metered_replicas(h, "abc")
    settle(h, lay, ds, 6)
    became = [d.count(r"became leader") for d in ds]
    samples = []

    def one_holder_each():
        count, free = spread(lay, ds)
        samples.append(dict(count))
        return free == 0 and max(count.values()) <= 6
    hold_for(3, one_holder_each, interval=0.1, what="one holder per shard, at most 6 each")
    assert len(samples) >= 20, samples
    assert [d.count(r"became leader") for d in ds] == became, "a shard changed hands while settled"
    assert member_idents(h) == [b"a", b"b", b"c"]

    held = spread(lay, ds)[0]
    for d in ds:
        m = scrape(d.port)
        assert m["presence_reaper_shards"] == SHARDS
        assert m["presence_reaper_live_replicas"] == 3, d.name
        assert m["presence_reaper_shard_fair_share"] == 6, d.name
        assert m["presence_reaper_shards_held"] == held[d.name], (d.name, held)
    believed_holders(lay, ds)


def test_sigkill_of_a_replica_moves_its_shards_to_the_others(h):
    lay, ds, _ = three_settled(h)
    victim = max(ds, key=lambda d: spread(lay, ds)[0][d.name])
    orphans = [s for s, d in holders(lay, ds).items() if d is victim]
    rest = [d for d in ds if d is not victim]

    victim.signal(signal.SIGKILL)
    killed = time.monotonic()
    victim.wait_exit(5)
    wait_until(lambda: balanced(lay, rest, 8), LEASE + RENEW + 1, interval=0.05,
               what=f"the survivors to take shards {orphans}", alive=rest)
    took = time.monotonic() - killed
    print(f"takeover of {len(orphans)} shards after SIGKILL: {took:.2f}s")
    wait_until(lambda: member_idents(h) == sorted(d.name.encode() for d in rest), 2 * RENEW + 1,
               what="the dead replica to leave the membership")

    live = [u for s in orphans for u in users_in(int(s), 2, b"live")]
    stale = [u for s in orphans for u in users_in(int(s), 3, b"stale")]
    lay.populate(live, stale)
    wait_until(lambda: all(lay.online(s) == {u for u in live if lay.of(u) == s} for s in orphans),
               2 * INTERVAL + 2, what="the orphaned shards to be reaped", alive=rest)


def test_a_fourth_replica_gets_its_share(h):
    lay = Layout(h.r)
    config = conf(h)
    ds = start_replicas(h, "abc", config)
    settle(h, lay, ds, 6)
    joined = time.monotonic()
    ds += start_replicas(h, "d", config)
    settle(h, lay, ds, 4, timeout=2 * LEASE + 1)
    took = time.monotonic() - joined
    print(f"rebalanced to 4 x 4 shards in {took:.2f}s after the fourth replica started")
    assert spread(lay, ds)[0] == {"a": 4, "b": 4, "c": 4, "d": 4}
    assert member_idents(h) == [b"a", b"b", b"c", b"d"]
    for d in ds[:3]:
        d.wait_log(r"4 live replicas: fair share 4 of 16 shards", 2)
    hold_for(2, lambda: balanced(lay, ds, 4), interval=0.1, what="the new balance to hold")


def test_sigterm_releases_the_shards_and_leaves_the_membership(h):
    lay, ds, mine = three_settled(h)
    leaving, rest = ds[0], ds[1:]
    assert mine

    mark = len(leaving.stderr())
    leaving.signal(signal.SIGTERM)
    t0 = time.monotonic()
    assert leaving.wait_exit(5) == 0, leaving.stderr()[-3000:]
    stopped = time.monotonic() - t0
    assert released_since(leaving, mark) == mine, leaving.stderr()[mark:]
    assert logged(leaving, "info", r"left the replica membership presence:\{members\}"), \
        leaving.stderr()[-3000:]
    assert b"a" not in member_idents(h)
    wait_until(lambda: balanced(lay, rest, 8), LEASE, interval=0.05,
               what="the others to take the released shards within a lease", alive=rest)
    took = time.monotonic() - t0
    print(f"SIGTERM: exited in {stopped:.2f}s, its {len(mine)} shards held again {took:.2f}s "
          f"after the signal")
    assert took < LEASE, took


def test_sighup_applies_the_log_level_and_keeps_one_holder_per_shard(h):
    lay, ds, mine = three_settled(h, metered=True)
    a = ds[0]
    assert a.count(r" debug: ") == 0
    conf(h, {"metrics.listen": f"127.0.0.1:{a.port}", "log.level": "debug"}, name="a.conf")
    mark = len(a.stderr())
    a.signal(signal.SIGHUP)
    a.wait_log(r"configuration reloaded: applied live: log\.level", 5)
    a.wait_log(r" debug: ", 5)
    assert released_since(a, mark) == mine, a.stderr()[mark:]
    wait_until(lambda: a.count(r"became leader") > len(mine), 10,
               what="a to take shards again after the reload", alive=ds)
    settle(h, lay, ds, 6)
    hold_for(2, lambda: balanced(lay, ds, 6), interval=0.1, what="one holder per shard after SIGHUP")
    wait_until(lambda: believed_holders(lay, ds), 2, what="the metrics to agree")
    assert member_idents(h) == [b"a", b"b", b"c"]
    assert all(d.alive() for d in ds)


def test_members_key_of_the_wrong_type(h):
    lay = Layout(h.r)
    live = [u for s in range(SHARDS) for u in users_in(s, 1, b"live")]
    stale = [u for s in range(SHARDS) for u in users_in(s, 2, b"stale")]
    lay.populate(live, stale)
    h.r.set(MEMBERS, b"not a sorted set")
    d = start_replicas(h, "a")[0]
    d.wait_log(r"replica membership: .*WRONGTYPE presence:\{members\}:reaper-lock "
               r"\(leader\.members_key\) is a string, not a sorted set", 5)
    before = d.count(r"replica membership")
    # Its share stays 0: it takes nothing, removes nothing, and says it once.
    hold_for(2 * LEASE, lambda: lay.locks() == {s: None for s in lay.names}
             and sum(len(v) for v in lay.all_online().values()) == len(live) + len(stale),
             interval=0.1, what="no lock taken and nobody removed without a membership")
    assert d.count(r"WRONGTYPE") == 1, d.stderr()[-3000:]
    assert d.count(r"replica membership") == before
    assert h.r.get(MEMBERS) == b"not a sorted set"

    h.r.delete(MEMBERS)
    d.wait_log(r"replica membership renewed again after \d+ failures", 5)
    settle(h, lay, [d], SHARDS)
    wait_until(lambda: all(lay.online(s) == {u for u in live if lay.of(u) == s}
                           for s in lay.names), 2 * INTERVAL + 2,
               what="every shard reaped once the membership works", alive=[d])


def test_redis_restart_with_two_replicas(h):
    lay = Layout(h.r)
    ds = metered_replicas(h, "ab")
    settle(h, lay, ds, 8)
    h.redis.stop()
    for d in ds:
        d.wait_log(r"redis connection lost|lease renewal failed|unreachable", 10)
    h.redis_back()
    lay = Layout(h.r)
    live = [u for s in range(SHARDS) for u in users_in(s, 1, b"live")]
    stale = [u for s in range(SHARDS) for u in users_in(s, 2, b"stale")]
    lay.populate(live, stale)
    settle(h, lay, ds, 8, timeout=LEASE + 10)
    wait_until(lambda: all(lay.online(s) == {u for u in live if lay.of(u) == s}
                           for s in lay.names), 2 * INTERVAL + 5,
               what="reaping to resume in every shard", alive=ds)
    hold_for(2, lambda: balanced(lay, ds, 8), interval=0.1, what="one holder per shard")
    believed_holders(lay, ds)
    assert member_idents(h) == [b"a", b"b"]


# --- 8. churn across every shard ------------------------------------------------------

CHURN_SECONDS = 8


class Server(threading.Thread):
    """A realtime server: connects, heartbeats, disconnects, and crashes users."""

    def __init__(self, h, index, users, stop):
        super().__init__(name=f"server-{index}", daemon=True)
        self.lay = Layout(h.redis.client())
        self.rng = random.Random(7000 + index)
        self.index, self.users, self.stop = index, users, stop
        self.sockets = {}           # user -> socket IDs open
        self.crashes = collections.Counter()
        self.ops = collections.Counter()
        self.error = None
        self.n = 0

    def rt(self, user):
        return self.lay.rt[self.lay.of(user)]

    def step(self):
        op = self.rng.random()
        live = [u for u, s in self.sockets.items() if s]
        if op < 0.5 or not live:
            user = self.rng.choice(self.users)
            self.n += 1
            sock = b"srv%d:%d" % (self.index, self.n)
            self.rt(user).connect(user, sock, ttl=60)
            self.sockets.setdefault(user, set()).add(sock)
            self.ops["connect"] += 1
        elif op < 0.75:
            user = self.rng.choice(live)
            sock = self.rng.choice(sorted(self.sockets[user]))
            self.rt(user).disconnect(user, sock)
            self.sockets[user].discard(sock)
            self.ops["disconnect"] += 1
        else:
            # The user's server crashed: no disconnect; the socket set expires soon.
            user = self.rng.choice(live)
            self.crashes[user] += 1
            self.lay.r.pexpire(self.rt(user).key(user), self.rng.randint(300, 1500))
            self.sockets.pop(user)
            self.ops["crash"] += 1

    def run(self):
        try:
            while not self.stop.is_set():
                self.step()
                self.stop.wait(self.rng.uniform(0.001, 0.01))   # pacing between client events
        except Exception as e:   # reported by the test
            self.error = e


class Sampler(churn.Sampler):
    """Atomically, over every shard: no user with a live socket set is offline."""

    def __init__(self, h, users, stop):
        threading.Thread.__init__(self, name="sampler", daemon=True)
        lay = Layout(h.redis.client())
        self.check = lay.r.register_script(LIVE_ONLINE_CHECK)
        self.keys = [k for u in users for k in (key(ONLINE_T, lay.of(u)), lay.rt[lay.of(u)].key(u))]
        self.users, self.stop = list(users), stop
        self.violations, self.samples, self.error = [], 0, None


def removal_events(h, lay):
    """shard -> removed user IDs, from each shard's own event stream."""
    out = {}
    for s in lay.names:
        out[s] = []
        for _, f in h.r.xrange(key(STREAM_T, s)):
            ev = json.loads(f[b"event"])
            assert ev["status"] == "offline" and ev["user_id"].encode() == f[b"user_id"], ev
            out[s].append(f[b"user_id"])
    return out


def test_churn_across_all_shards_with_three_replicas(h):
    lay = Layout(h.r)
    ds = start_replicas(h, "abc", extra={"events.mode": "stream", "events.stream": STREAM_T,
                                         "reaper.interval": 0.5, "reaper.batch_size": 20})
    settle(h, lay, ds, 6)
    pools = [[b"s%d-u%d" % (i, j) for j in range(80)] for i in range(4)]
    everyone = [u for pool in pools for u in pool]
    stop_servers, stop_sampler = threading.Event(), threading.Event()
    servers = [Server(h, i, pool, stop_servers) for i, pool in enumerate(pools)]
    sampler = Sampler(h, everyone, stop_sampler)
    sampler.start()
    for s in servers:
        s.start()
    end = time.monotonic() + CHURN_SECONDS
    wait_until(lambda: time.monotonic() >= end or any(s.error for s in servers) or sampler.error
               or not all(d.alive() for d in ds), CHURN_SECONDS + 5, interval=0.1,
               what="the churn period")
    stop_servers.set()
    for s in servers:
        s.join(10)
        assert s.error is None, f"{s.name}: {s.error!r}"

    def existing():
        pipe = h.r.pipeline(transaction=False)
        for u in everyone:
            pipe.pttl(lay.rt[lay.of(u)].key(u))
        ttls = pipe.execute()
        if any(0 <= t <= 10000 for t in ttls):
            return None     # a crashed user's socket set has yet to expire
        return {u for u, t in zip(everyone, ttls) if t > 0}
    alive_sets = wait_until(existing, 5, interval=0.05, what="crashed users' socket sets to expire")

    def reaped():
        online = lay.all_online()
        return all(online[s] == {u for u in alive_sets if lay.of(u) == s} for s in lay.names)
    wait_until(reaped, 4 * INTERVAL + 2, interval=0.1, what="every shard to equal its live users",
               alive=ds)
    stop_sampler.set()
    sampler.join(10)
    assert sampler.error is None, repr(sampler.error)

    ops = sum((s.ops for s in servers), collections.Counter())
    crashes = sum((s.crashes for s in servers), collections.Counter())
    events = removal_events(h, lay)
    removed = sum(int(m) for d in ds for m in re.findall(r"shard \d+: cycle done: scanned=\d+ "
                                                         r"stale=\d+ removed=(\d+)", d.stderr()))
    summary = f"ops={dict(ops)} events={sum(map(len, events.values()))} removed={removed} " \
              f"samples={sampler.samples}"
    print(summary)
    assert not sampler.violations, f"live users offline: {sampler.violations[0][:10]} ({summary})"
    assert sampler.samples >= 50, summary
    believed = {u for s in servers for u, socks in s.sockets.items() if socks}
    assert believed <= alive_sets, summary
    for s, users in events.items():
        assert all(lay.of(u) == s for u in users), f"shard {s}'s stream has other shards' users"
    per_user = collections.Counter(u for users in events.values() for u in users)
    too_many = {u: n for u, n in per_user.items() if n > crashes[u]}
    assert not too_many, f"users removed more often than their server crashed: {too_many}"
    assert sum(per_user.values()) == removed, f"one event per removal ({summary})"
    assert removed >= 30 and ops["crash"] >= 50, summary
    assert len({s for s, users in events.items() if users}) >= 12, \
        f"removals should span the shards ({summary})"
    assert all(d.alive() for d in ds)


def test_sigterm_right_after_sighup_still_leaves_the_membership(h):
    """A reload must not leave the replica without its membership connection when a
    SIGTERM follows at once: the replica leaves, so the others' shares grow at once."""
    conf = h.config(dict(SHARDED))
    d = h.start(["-c", str(conf)], env={"POD_NAME": "hupterm"})
    wait_until(lambda: h.r.zcard(MEMBERS) == 1, 10, what="the membership", alive=[d])
    d.signal(signal.SIGHUP)
    d.wait_log(r"configuration reloaded", 10)
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10) == 0
    assert logged(d, "info", r"left the replica membership"), d.stderr()
    assert h.r.zcard(MEMBERS) == 0


def test_expiry_tracked_in_every_shard_and_counted_once(h):
    """reaper.track_expiry with shards: each seat keeps its own calendar; a
    crashed user in any shard goes within a second of its set's expiry, and
    the metrics add the seats' calendars up."""
    port = free_port()
    lay = Layout(h.r)
    crashed = [b"crash-%d" % i for i in range(32)]
    lay.populate([b"live-%d" % i for i in range(64)] + crashed, [])
    pipe = h.r.pipeline(transaction=False)
    for u in crashed:
        pipe.pexpire(lay.rt[lay.of(u)].key(u), 4000)
    pipe.execute()
    expiry = {u: h.r.execute_command("PEXPIRETIME", lay.rt[lay.of(u)].key(u)) for u in crashed}
    d = h.start(["-c", conf(h, {"reaper.track_expiry": True, "reaper.interval": 60,
                                "metrics.listen": f"127.0.0.1:{port}"})],
                env={"POD_NAME": "t"}, name="t")
    settle(h, lay, [d], SHARDS)
    tracked = wait_until(lambda: scrape(port)["presence_reaper_calendar_entries"] >= 32 and
                         scrape(port)["presence_reaper_calendar_entries"], 10,
                         what="every shard's first pass to track its crashed users")
    gone_at = {}
    while len(gone_at) < len(crashed):
        sec, usec = h.r.time()
        now = sec * 1000 + usec // 1000
        for u in crashed:
            if u not in gone_at and not h.r.sismember(key(ONLINE_T, lay.of(u)), u):
                gone_at[u] = now
        assert now < max(expiry.values()) + 3000, f"not reaped: {set(crashed) - set(gone_at)}"
        time.sleep(0.01)
    worst = max(gone_at[u] - expiry[u] for u in crashed)
    assert worst <= 1000, worst
    m = scrape(port)
    assert m["presence_reaper_calendar_removals_total"] == len(crashed), m
    assert m["presence_reaper_calendar_entries"] == tracked - len(crashed), m

"""Leader election: one writer, fast failover, and a fenced ex-leader."""

import signal
import time

import pytest

from harness import LOCK, TOKEN_RE, hold_for, wait_until

LEASE, RENEW, MARGIN = 2, 0.5, 1.5
FAILOVER = LEASE + RENEW + MARGIN


def three(h, conf=None):
    conf = conf or h.config()
    return [h.start(["-c", conf], env={"POD_NAME": f"pod-{n}"}, name=f"pod-{n}") for n in "abc"]


def wait_holder(h, daemons, timeout, exclude=()):
    def find():
        d = h.holder(daemons)
        return d if d is not None and d not in exclude else None
    return wait_until(find, timeout, what="a daemon to hold the lock")


def test_exactly_one_of_three_holds_the_lock(h):
    ds = three(h)
    leader = wait_holder(h, ds, 10)
    m = TOKEN_RE.match(h.lock())
    assert m and m.group("ident") == leader.name.encode(), h.lock()
    assert int(m.group("pid")) == leader.pid
    token = h.lock()
    # Over several renew periods the lock stays with the same instance,
    # and only that one ever says it became leader.
    hold_for(3, lambda: h.lock() == token, what="the lock to stay with the first leader")
    for d in ds:
        assert d.alive(), d.name
        n = d.count(r"became leader")
        assert n == (1 if d is leader else 0), f"{d.name} logged 'became leader' {n} times"
    standbys = [d for d in ds if d is not leader]
    for d in standbys:
        assert d.count(r"standby: lock held by") >= 1, d.name


def test_lock_has_a_lease_and_is_renewed(h):
    d = h.start(["-c", h.config()], env={"POD_NAME": "solo"})
    wait_until(lambda: h.holder([d]) is d, 10, what="solo to lead")
    pttl = h.r.pttl(LOCK)
    assert 0 < pttl <= LEASE * 1000, pttl
    token = h.lock()
    # Longer than the lease: the lock is still there, so it is being renewed.
    hold_for(LEASE + 1, lambda: h.lock() == token, what="the lease to be renewed")


def test_client_name_carries_identity(h):
    d = h.start(["-c", h.config()], env={"POD_NAME": "pod/7 x"})
    wait_until(lambda: h.holder([d]) is d, 10, what="the daemon to lead")
    names = [c.get("name") for c in h.r.client_list()]
    assert "presence-reaper@pod_7_x" in names, names


def test_sigkill_leader_fails_over_and_new_leader_reaps(h):
    live = [b"live-%d" % i for i in range(20)]
    h.rt.connect_many(live)
    ds = three(h)
    leader = wait_holder(h, ds, 10)
    leader.wait_cycles(1, 10)

    leader.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    leader.wait_exit(5)
    # Users whose server crashes after the leader died.
    h.rt.connect_many([b"gone-1", b"gone-2", b"gone-3"])
    h.rt.crash_many([b"gone-1", b"gone-2", b"gone-3"])

    rest = [d for d in ds if d is not leader]
    successor = wait_holder(h, rest, FAILOVER, exclude=(leader,))
    took = time.monotonic() - killed_at
    assert took <= FAILOVER, f"failover took {took:.2f}s"
    wait_until(lambda: h.members() == set(live), 2 * FAILOVER,
               what="the new leader to reap the users that went stale")
    assert successor.count(r"became leader") == 1
    for d in rest:
        assert d.alive(), d.name


def test_frozen_leader_is_replaced_and_stays_fenced(h):
    live = [b"live-%d" % i for i in range(30)]
    h.rt.connect_many(live)
    ds = three(h)
    old = wait_holder(h, ds, 10)
    old.wait_cycles(1, 10)

    old.signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    rest = [d for d in ds if d is not old]
    new = wait_holder(h, rest, FAILOVER, exclude=(old,))
    assert time.monotonic() - stopped_at <= FAILOVER
    new_token = h.lock()

    h.rt.connect_many([b"stale-1", b"stale-2"])
    h.rt.crash_many([b"stale-1", b"stale-2"])
    wait_until(lambda: h.members() == set(live), 10, what="the new leader to reap")

    old.signal(signal.SIGCONT)

    # The old leader wakes up believing it leads: it must notice, step down,
    # leave the lock alone and never remove a live user.
    def still_fine():
        return h.lock() == new_token and set(live) <= h.members()
    hold_for(1.0, still_fine, what="lock and live users after SIGCONT")
    old.wait_log(r"lost leadership", 5)
    h.rt.connect_many([b"late-live"])
    hold_for(3, lambda: still_fine() and b"late-live" in h.members(),
             what="lock and live users after SIGCONT")
    assert old.alive()


def test_foreign_lock_holder_fences_the_daemon(h):
    """Someone else's token in the lock: no writes at all, then take over when it is gone."""
    live = [b"live-%d" % i for i in range(10)]
    h.rt.connect_many(live)
    d = h.start(["-c", h.config()], env={"POD_NAME": "solo"})
    wait_until(lambda: h.holder([d]) is d, 10, what="solo to lead")
    d.wait_cycles(1, 10)

    # As after a Redis failover that lost the lock and another instance won it.
    h.r.set(LOCK, b"intruder:1:0123456789abcdef", px=60000)
    h.rt.connect_many([b"stale-1", b"stale-2"])
    h.rt.crash_many([b"stale-1", b"stale-2"])
    d.wait_log(r"standby: lock held by intruder", 5)
    hold_for(3, lambda: {b"stale-1", b"stale-2"} <= h.members()
             and h.lock() == b"intruder:1:0123456789abcdef",
             what="no removal and no lock steal while another instance leads")

    h.r.delete(LOCK)
    wait_until(lambda: h.holder([d]) is d, FAILOVER, what="solo to lead again")
    wait_until(lambda: h.members() == set(live), 10, what="reaping to resume")


@pytest.mark.parametrize("noticed_by,settings", [
    # The renewal finds the lock taken (cycles are rare, renewals frequent).
    ("renew", {"reaper.interval": 30, "leader.lease": 2, "leader.renew": 0.5}),
    # The fenced reap script finds it first (cycles frequent, renewals rare).
    ("reap script", {"reaper.interval": 0.2, "leader.lease": 20, "leader.renew": 10}),
])
def test_losing_the_lock_is_logged(h, noticed_by, settings):
    h.rt.connect_many([b"live-%d" % i for i in range(10)])
    d = h.start(["-c", h.config(settings)], env={"POD_NAME": "solo"})
    wait_until(lambda: h.holder([d]) is d, 10, what="solo to lead")
    wait_until(d.cycles, 10, what="a first cycle")
    h.r.set(LOCK, b"intruder:1:0123456789abcdef", px=60000)
    d.wait_log(r"lost leadership", 3)
    d.wait_log(r"standby: lock held by intruder:1:0123456789abcdef", 5)


def test_once_standby_exits_zero_and_says_who_leads(h):
    h.rt.connect_many([b"stale-1"])
    h.rt.crash_many([b"stale-1"])
    holder = b"other-pod:42:00000000deadbeef"
    h.r.set(LOCK, holder, px=60000)
    rc, out, err = h.run(["-c", h.config(), "--once"], env={"POD_NAME": "cron"})
    assert rc == 0, err
    assert "another instance holds the lock" in err, err
    assert holder.decode() in err, err
    assert h.members() == {b"stale-1"}, "a standby must not reap"
    assert h.lock() == holder

"""SIGTERM / SIGINT shut down cleanly; SIGHUP reloads the file or keeps the old one."""

import signal
import time

from harness import LOCK, Realtime, hold_for, wait_until


def leader(h, conf=None, pod="pod-a"):
    d = h.start(["-c", conf or h.config()], env={"POD_NAME": pod}, name=pod)
    wait_until(lambda: h.holder([d]) is d, 10, what=f"{pod} to lead")
    return d


def test_sigterm_leader_exits_zero_and_releases_lock(h):
    d = leader(h)
    d.wait_cycles(1, 10)
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    rc = d.wait_exit(2)
    assert rc == 0, d.stderr()
    assert time.monotonic() - t0 <= 2
    assert h.r.exists(LOCK) == 0, "the lock must be released on shutdown"
    assert "lock released" in d.stderr()


def test_sigint_leader_exits_zero_and_releases_lock(h):
    d = leader(h)
    d.signal(signal.SIGINT)
    assert d.wait_exit(2) == 0, d.stderr()
    assert h.r.exists(LOCK) == 0


def test_sigterm_during_large_cycle_finishes_promptly(h):
    users = [b"u-%d" % i for i in range(3000)]
    h.rt.connect_many(users)
    d = leader(h, h.config({"reaper.batch_size": 1, "reaper.interval": 0.2}))
    d.wait_cycles(1, 30)
    d.signal(signal.SIGTERM)
    assert d.wait_exit(2) == 0, d.stderr()
    assert h.r.exists(LOCK) == 0
    assert h.members() == set(users)


def test_sigterm_standby_leaves_the_leaders_lock(h):
    conf = h.config()
    a = leader(h, conf, "pod-a")
    b = h.start(["-c", conf], env={"POD_NAME": "pod-b"}, name="pod-b")
    b.wait_log(r"standby: lock held by", 10)
    token = h.lock()
    b.signal(signal.SIGTERM)
    assert b.wait_exit(2) == 0, b.stderr()
    assert h.lock() == token, "a standby must not touch the leader's lock"
    assert a.alive()


def test_sighup_applies_a_valid_new_file(h):
    other = Realtime(h.r, online=b"other:online")
    conf = h.config({"keys.online_set": "presence:online-users"}, name="live.conf")
    d = leader(h, conf)
    d.wait_cycles(1, 10)

    other.connect_many([b"o-live", b"o-stale"])
    other.crash_many([b"o-stale"])
    h.config({"keys.online_set": "other:online"}, name="live.conf")
    d.signal(signal.SIGHUP)
    d.wait_log(r"configuration reloaded", 5)
    wait_until(lambda: h.members(b"other:online") == {b"o-live"}, 10,
               what="the reloaded config to reap other:online")

    # And the old set is no longer ours.
    h.rt.connect_many([b"d-stale"])
    h.rt.crash_many([b"d-stale"])
    d.wait_cycles(3, 10)
    assert h.members() == {b"d-stale"}
    assert d.alive()


def test_sighup_with_invalid_file_keeps_old_config(h):
    conf = h.config(name="live.conf")
    d = leader(h, conf)
    d.wait_cycles(1, 10)

    conf.write_text("reaper = { interval = ; \n")
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload failed", 5)
    assert "keeping the old configuration" in d.stderr()
    hold_for(1, d.alive, what="the daemon to keep running after a bad reload")

    h.rt.connect_many([b"live", b"stale"])
    h.rt.crash_many([b"stale"])
    wait_until(lambda: h.members() == {b"live"}, 10, what="reaping with the old config")
    assert d.alive()


def test_sighup_with_semantic_error_keeps_old_config(h):
    conf = h.config(name="live.conf")
    d = leader(h, conf)
    h.config({"reaper.batch_size": 0, "keys.online_set": "other:online"}, name="live.conf")
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload failed", 5)
    assert "batch_size" in d.stderr()
    h.rt.connect_many([b"live", b"stale"])
    h.rt.crash_many([b"stale"])
    wait_until(lambda: h.members() == {b"live"}, 10, what="reaping with the old config")


def test_second_sigterm_exits_at_once(h):
    """Shutdown is stuck (Redis asleep, lock not yet released): a second SIGTERM ends it now."""
    import threading
    import redis as redislib
    d = leader(h, h.config({"redis.command_timeout": 10}))
    d.wait_cycles(1, 10)

    def sleeper():
        c = h.redis.client(socket_timeout=15)
        c.execute_command("DEBUG", "SLEEP", "4")
        c.close()
    t = threading.Thread(target=sleeper, daemon=True)
    t.start()

    def asleep():
        probe = h.redis.client(socket_timeout=0.1)
        try:
            probe.ping()
            return False
        except redislib.TimeoutError:
            return True
        finally:
            probe.close()
    wait_until(asleep, 5, what="redis-server to be inside DEBUG SLEEP")

    d.signal(signal.SIGTERM)
    d.wait_log(r"shutting down", 2)
    assert d.alive(), "with Redis asleep the lock cannot have been released yet"
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    rc = d.wait_exit(1)
    assert time.monotonic() - t0 < 1
    assert rc == 128 + signal.SIGTERM, f"exit status {rc}"
    t.join(10)


# --- SIGHUP: each changed setting applies live, by reconnecting, or after a restart ---

def reaper_clients(h, ident):
    """(id, addr) of the daemon's connections, by the client name it sets."""
    return [(c["id"], c["addr"]) for c in h.r.client_list()
            if c.get("name") == f"presence-reaper@{ident}"]


def test_sighup_new_redis_url_reconnects_and_reaps_on(h):
    """From the Unix socket to the TCP port of the same server."""
    conf = h.config(name="live.conf")
    d = leader(h, conf)
    d.wait_cycles(1, 10)
    before = reaper_clients(h, "pod-a")
    assert len(before) == 1 and not before[0][1].startswith("127.0.0.1:"), before

    h.config(url=h.redis.tcp_url, name="live.conf")
    d.signal(signal.SIGHUP)
    d.wait_log(r"configuration reloaded: applied live: none; "
               r"reconnecting for: redis\.url\n", 5)
    d.wait_log(r"connected to redis://127\.0\.0\.1:%d" % h.redis.port, 10)
    wait_until(lambda: h.holder([d]) is d, 10, what="pod-a to lead again over TCP")
    wait_until(lambda: [addr.startswith("127.0.0.1:")
                        for _, addr in reaper_clients(h, "pod-a")] == [True], 10,
               what="one connection, over TCP")

    h.rt.connect_many([b"live", b"stale"])
    h.rt.crash_many([b"stale"])
    wait_until(lambda: h.members() == {b"live"}, 10, what="reaping after the reconnect")


def test_sighup_new_lease_reconnects_and_the_lock_carries_it(h):
    conf = h.config({"leader.lease": 2, "leader.renew": 0.5}, name="live.conf")
    d = leader(h, conf)
    d.wait_cycles(1, 10)
    assert 0 < h.r.pttl(LOCK) <= 2000

    h.config({"leader.lease": 30, "leader.renew": 0.5}, name="live.conf")
    d.signal(signal.SIGHUP)
    d.wait_log(r"configuration reloaded: applied live: none; "
               r"reconnecting for: leader\.lease\n", 5)
    wait_until(lambda: h.holder([d]) is d and h.r.pttl(LOCK) > 2000, 10,
               what="the lock taken again with the 30 s lease")
    assert h.r.pttl(LOCK) <= 30000


def test_sighup_interval_and_batch_size_apply_live_on_the_same_connection(h):
    conf = h.config({"reaper.interval": 0.5, "reaper.batch_size": 500}, name="live.conf")
    d = leader(h, conf)
    d.wait_cycles(1, 10)
    before = reaper_clients(h, "pod-a")
    assert len(before) == 1, before
    token = h.lock()

    h.config({"reaper.interval": 0.3, "reaper.batch_size": 50}, name="live.conf")
    d.signal(signal.SIGHUP)
    d.wait_log(r"configuration reloaded: applied live: reaper\.interval, "
               r"reaper\.batch_size; reconnecting for: none\n", 5)
    d.wait_cycles(2, 10)
    assert reaper_clients(h, "pod-a") == before, "a live change must keep the connection"
    assert h.lock() == token
    assert d.count(r"connected to") == 1
    assert "lock released" not in d.stderr()

    h.rt.connect_many([b"live", b"stale"])
    h.rt.crash_many([b"stale"])
    wait_until(lambda: h.members() == {b"live"}, 10, what="reaping with the new interval")


def test_sighup_unchanged_file_says_so(h):
    conf = h.config(name="live.conf")
    d = leader(h, conf)
    d.wait_cycles(1, 10)
    d.signal(signal.SIGHUP)
    d.wait_log(r"configuration reloaded: no setting changed\n", 5)
    assert d.count(r"connected to") == 1


def test_sighup_new_identity_is_warned_about_and_not_applied(h):
    conf = h.config({"leader.identity": "id-a"}, name="live.conf")
    d = h.start(["-c", conf], name="id-a")
    wait_until(lambda: h.holder([d]) is d, 10, what="id-a to lead")
    token = h.lock()
    assert token.startswith(b"id-a:")

    # With a lease change too, so the daemon reconnects and names itself again.
    h.config({"leader.identity": "id-b", "leader.lease": 3}, name="live.conf")
    d.signal(signal.SIGHUP)
    d.wait_log(r"configuration reloaded: leader\.identity changed but applies only "
               r"after a restart", 5)
    assert d.count(r"reconnecting for: leader\.lease\n") == 1
    wait_until(lambda: h.holder([d]) is d, 10, what="id-a to lead again")
    assert h.lock() == token, "the token keeps the identity the process started with"
    assert len(reaper_clients(h, "id-a")) == 1 and reaper_clients(h, "id-b") == []

"""Error replies from Redis (DESIGN §7): every class has one policy, in the loop
and with --once, and an identical error is logged once, then only counted.

| reply                 | --once                          | loop                          |
|-----------------------|---------------------------------|-------------------------------|
| READONLY, MASTERDOWN  | 69                              | warn once, retry with backoff |
| LOADING, BUSY         | wait up to command_timeout, 69  | warn once, retry with backoff |
| OOM                   | 75, nothing removed             | warn once, retry with backoff |
| NOPERM                | 78, command and key named       | error once, retry with backoff|
| ERR unknown command   | 78, server version named        | error once, retry with backoff|
"""

import contextlib
import re
import threading
import time

import pytest
import redis

from harness import (EX_CONFIG, EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE, ONLINE, errorstat,
                     free_port, hold_for, logged, socket_key, wait_until)

LIVE = [b"live-%d" % i for i in range(6)]
STALE = [b"stale-%d" % i for i in range(3)]


@pytest.fixture
def w(h):
    """Six users online, three of them stale (their socket sets are gone)."""
    h.rt.connect_many(LIVE + STALE)
    h.rt.crash_many(STALE)
    return h


def once(h, url, *args, settings=None):
    """--once against url: (rc, stderr, seconds)."""
    conf = dict(settings or {})
    t0 = time.monotonic()
    rc, out, err = h.run(["-c", h.config(conf, url=url), "--once"] + list(args), timeout=60)
    return rc, err, time.monotonic() - t0


# --- not a writable primary ---------------------------------------------------

def test_once_against_a_replica_exits_69_and_names_the_lock_write(w):
    rep = w.replica()
    rc, err, _ = once(w, rep.unix_url)
    assert rc == EX_UNAVAILABLE, err
    assert "READONLY" in err and "SET presence:reaper:leader" in err, err
    assert w.members() == set(LIVE + STALE)


def test_loop_against_a_replica_logs_readonly_once_then_leads_when_promoted(w):
    rep = w.replica()
    rc = rep.client()
    d = w.start(["-c", w.config(url=rep.unix_url)], env={"POD_NAME": "a"})
    # Refused attempts as the replica counts them: the loop keeps retrying.
    wait_until(lambda: errorstat(rc, "READONLY") >= 4, 30, what="four refused lock writes",
               alive=[d])
    assert len(logged(d, "(warn|error)", "READONLY")) == 1, d.stderr()

    rc.execute_command("REPLICAOF", "NO", "ONE")
    d.wait_log(r"became leader", 15)
    wait_until(lambda: set(rc.smembers(ONLINE)) == set(LIVE), 15,
               what="the stale users removed on the promoted server", alive=[d])
    assert len(logged(d, "(warn|error)", "READONLY")) == 1, d.stderr()
    assert re.search(r"READONLY.*\(repeated \d+ times?", d.stderr()), d.stderr()


def test_dry_run_loop_logs_masterdown_once_while_the_primary_is_away(w):
    rep = w.replica(serve_stale=False)
    rc = rep.client()
    d = w.start(["-c", w.config(url=rep.unix_url), "--dry-run"], env={"POD_NAME": "a"})
    d.wait_log(r"dry-run: scanned=9 stale=3", 10)
    w.redis.stop()
    wait_until(lambda: errorstat(rc, "MASTERDOWN") >= 4, 30, what="four MASTERDOWN replies",
               alive=[d])
    assert len(logged(d, "(warn|error)", "MASTERDOWN")) == 1, d.stderr()
    hold_for(0.5, d.alive, what="the loop to keep running")


# --- out of memory ------------------------------------------------------------

def out_of_memory(h):
    h.r.config_set("maxmemory-policy", "noeviction")
    h.r.config_set("maxmemory", 1)


def test_once_out_of_memory_exits_75_and_removes_nothing(w):
    out_of_memory(w)
    rc, err, _ = once(w, w.redis.unix_url)
    assert rc == EX_TEMPFAIL, err
    assert "OOM" in err and "nothing removed" in err, err
    w.r.config_set("maxmemory", 0)
    assert w.members() == set(LIVE + STALE)


def test_loop_out_of_memory_logs_once_and_reaps_once_memory_is_back(w):
    out_of_memory(w)
    d = w.start(["-c", w.config()], env={"POD_NAME": "a"})
    wait_until(lambda: errorstat(w.r, "OOM") >= 4, 30, what="four refused lock writes",
               alive=[d])
    assert len(logged(d, "(warn|error)", "OOM")) == 1, d.stderr()
    assert w.members() == set(LIVE + STALE)
    w.r.config_set("maxmemory", 0)
    d.wait_log(r"became leader", 15)
    wait_until(lambda: w.members() == set(LIVE), 15, what="the stale users removed", alive=[d])


# --- no permission ------------------------------------------------------------

@pytest.mark.parametrize("acl,named", [
    # The user may not run SSCAN: the pass's first command on the online set.
    (["~*", "+@all", "-sscan"], r"SSCAN presence:online-users"),
    # The user may not touch socket sets: the guard's probe script is refused.
    (["~presence:online-users", "~presence:reaper:leader", "~presence:events", "+@all"],
     r"EVALSHA probe script on presence:user:\*:sockets"),
])
def test_once_noperm_exits_78_naming_command_and_key(w, acl, named):
    w.r.execute_command("ACL", "SETUSER", "reaper", "on", ">pw", *acl)
    rc, err, _ = once(w, "unix://reaper:pw@" + w.redis.sock)
    assert rc == EX_CONFIG, err
    assert re.search(named + r".*NOPERM", err), err
    assert w.members() == set(LIVE + STALE)


def scrape(port):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        c.request("GET", "/metrics")
        body = c.getresponse().read().decode()
    finally:
        c.close()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"(?m)^(\S+) (\S+)$", body)}


def test_loop_noperm_logs_once_counts_and_reaps_once_granted(w):
    w.r.execute_command("ACL", "SETUSER", "reaper", "on", ">pw", "~*", "+@all", "-sscan")
    port = free_port()
    conf = w.config({"metrics.listen": f"127.0.0.1:{port}"},
                    url="unix://reaper:pw@" + w.redis.sock)
    d = w.start(["-c", conf], env={"POD_NAME": "a"})
    wait_until(lambda: errorstat(w.r, "NOPERM") >= 4, 30, what="four refused passes", alive=[d])
    assert len(logged(d, "error", "NOPERM")) == 1, d.stderr()
    assert len(logged(d, "error", r"SSCAN presence:online-users.*NOPERM")) == 1, d.stderr()
    assert scrape(port)["presence_reaper_redis_errors_total"] >= 4
    assert w.members() == set(LIVE + STALE)

    w.r.execute_command("ACL", "SETUSER", "reaper", "+sscan")
    wait_until(lambda: w.members() == set(LIVE), 15, what="the stale users removed", alive=[d])
    d.wait_log(r"NOPERM.*\(repeated \d+ times?", 5)
    assert len(logged(d, "error", "NOPERM")) == 1, d.stderr()


# --- unknown command ----------------------------------------------------------

def test_once_unknown_command_exits_78_naming_the_server_version(h):
    srv = h.server(["--rename-command", "EVALSHA", ""])
    c = srv.client()
    for uid in LIVE + STALE:
        c.sadd(ONLINE, uid)
    for uid in LIVE:
        c.sadd(socket_key(uid), b"s1")
        c.expire(socket_key(uid), 60)
    version = c.info("server")["redis_version"]
    rc, err, _ = once(h, srv.unix_url)
    assert rc == EX_CONFIG, err
    assert "EVALSHA" in err and "unknown command" in err, err
    assert f"redis_version {version}" in err, err
    assert set(c.smembers(ONLINE)) == set(LIVE + STALE)


# --- loading, busy ------------------------------------------------------------

def _refused(client, code):
    """True when PING is answered with this error code."""
    try:
        client.ping()
    except redis.BusyLoadingError:
        return code == "LOADING"
    except redis.ResponseError as e:
        return str(e).startswith(code + " ")
    return False


@contextlib.contextmanager
def loading(h, keys=20000, delay_us=100):
    """Redis reloads its data set slowly (DEBUG RELOAD with key-load-delay),
    answering LOADING meanwhile. Yields when the first LOADING was seen."""
    h.r.execute_command("DEBUG", "POPULATE", keys, "filler")
    h.r.config_set("key-load-delay", delay_us)
    h.r.config_set("loading-process-events-interval-bytes", 1024)
    done = []

    def reload():
        c = h.redis.client(socket_timeout=300)
        try:
            done.append(c.execute_command("DEBUG", "RELOAD"))
        finally:
            c.close()

    t = threading.Thread(target=reload, daemon=True)
    t.start()
    probe = h.redis.client(socket_timeout=5)
    try:
        wait_until(lambda: _refused(probe, "LOADING"), 20, what="LOADING replies")
        yield
    finally:
        t.join(300)
        probe.close()
    assert done == [b"OK"], "DEBUG RELOAD failed"


@contextlib.contextmanager
def busy_script(h):
    """A Lua script that never ends, past busy-reply-threshold: Redis answers
    BUSY to everyone else until SCRIPT KILL."""
    h.r.config_set("busy-reply-threshold", 100)

    def spin():
        c = h.redis.client(socket_timeout=None)
        try:
            c.eval("while true do end", 0)
        except redis.ResponseError:
            pass            # "Script killed by user with SCRIPT KILL"
        finally:
            c.close()

    t = threading.Thread(target=spin, daemon=True)
    t.start()
    probe = h.redis.client(socket_timeout=5)
    try:
        wait_until(lambda: _refused(probe, "BUSY"), 10, what="BUSY replies")
        yield probe
    finally:
        wait_until(lambda: _kill(probe), 10, what="SCRIPT KILL")
        t.join(10)
        probe.close()


def _kill(probe):
    try:
        probe.script_kill()
    except redis.ResponseError as e:
        return "NOTBUSY" in str(e)
    return True


def test_once_waits_out_loading_within_the_command_timeout(w):
    with loading(w):
        d = w.start(["-c", w.config({"redis.command_timeout": 60}), "--once"],
                    env={"POD_NAME": "a"})
        rc = d.wait_exit(90)
    assert rc == EX_OK, d.stderr()
    assert logged(d, "warn", "LOADING"), d.stderr()
    assert w.members() == set(LIVE)


def test_once_loading_past_the_command_timeout_exits_69(w):
    with loading(w):
        rc, err, took = once(w, w.redis.unix_url, settings={"redis.command_timeout": 0.5})
    assert rc == EX_UNAVAILABLE, err
    assert "LOADING" in err and "redis.command_timeout" in err, err
    assert took >= 0.5, f"gave up after {took:.2f}s, before the command timeout"
    assert w.members() == set(LIVE + STALE)


def test_once_waits_for_a_busy_script_to_end_within_the_command_timeout(w):
    with busy_script(w) as probe:
        d = w.start(["-c", w.config({"redis.command_timeout": 60}), "--once"],
                    env={"POD_NAME": "a"})
        d.wait_log(r"warn: .*BUSY", 20)
        probe.script_kill()
        rc = d.wait_exit(30)
    assert rc == EX_OK, d.stderr()
    assert w.members() == set(LIVE)


def test_once_busy_past_the_command_timeout_exits_69(w):
    with busy_script(w):
        rc, err, took = once(w, w.redis.unix_url, settings={"redis.command_timeout": 0.5})
    assert rc == EX_UNAVAILABLE, err
    assert "BUSY" in err and "redis.command_timeout" in err, err
    assert took >= 0.5, f"gave up after {took:.2f}s, before the command timeout"
    assert w.members() == set(LIVE + STALE)
    assert w.lock() is None

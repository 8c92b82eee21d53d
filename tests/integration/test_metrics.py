"""/metrics, /healthz, /readyz, the --once textfile, ghosts and sd_notify."""

import http.client
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import (EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE, LOCK, SANITIZER_RE, binary,
                     closed_port, free_port, wait_until)


def get(port, path, timeout=2, host="127.0.0.1"):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        c.close()


def scrape(port, host="127.0.0.1"):
    status, ctype, body = get(port, "/metrics", host=host)
    assert status == 200
    assert ctype == "text/plain; version=0.0.4; charset=utf-8", ctype
    return samples_of(body)


def samples_of(body):
    samples = {}
    for fam in text_string_to_metric_families(body):   # strict parser: raises on bad text
        for s in fam.samples:
            key = s.name + ("{%s}" % ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                            if s.labels else "")
            samples[key] = s.value
    return samples


def start_with_metrics(h, settings=None, pod="m-1", args=()):
    port = free_port()
    conf = {"metrics.listen": f"127.0.0.1:{port}"}
    conf.update(settings or {})
    d = h.start(["-c", h.config(conf)] + list(args), env={"POD_NAME": pod}, name=pod)
    wait_until(lambda: _answers(port), 10, what="the metrics listener")
    return d, port


def _answers(port, host="127.0.0.1"):
    try:
        return get(port, "/healthz", host=host)[0] in (200, 503)
    except OSError:
        return False


def has_ipv6_loopback():
    """::1 is configured and usable (a precondition, not something under test)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_metrics_move_as_the_reaper_works(h):
    h.rt.connect_many([b"live-1", b"live-2"])
    d, port = start_with_metrics(h)
    d.wait_cycles(1, 10)
    m = scrape(port)
    assert m["presence_reaper_build_info{version=\"0.1.0\"}"] == 1
    assert m["presence_reaper_is_leader"] == 1
    assert m["presence_reaper_dry_run"] == 0
    assert m["presence_reaper_leader_changes_total"] >= 1
    assert m["presence_reaper_online_users"] == 2
    assert m["presence_reaper_last_success_timestamp_seconds"] > time.time() - 60
    assert m["process_resident_memory_bytes"] > 0
    assert "process_cpu_seconds_total" in m and "process_open_fds" in m
    before = m["presence_reaper_users_removed_total"]
    ok_before = m["presence_reaper_cycles_total{result=\"ok\"}"]
    h.rt.connect_many([b"gone-1", b"gone-2", b"gone-3"])
    # The gauge is the set's size when a cycle starts: it follows the set up ...
    wait_until(lambda: scrape(port)["presence_reaper_online_users"] == 5, 10,
               what="online_users to follow the set up to 5")
    h.rt.crash_many([b"gone-1", b"gone-2", b"gone-3"])
    wait_until(lambda: scrape(port)["presence_reaper_users_removed_total"] >= before + 3, 10,
               what="users_removed_total to grow by 3")
    m = scrape(port)
    assert m["presence_reaper_cycles_total{result=\"ok\"}"] > ok_before
    assert m["presence_reaper_users_scanned_total"] >= 5
    # ... and down again once a cycle starts without the 3 it removed.
    wait_until(lambda: scrape(port)["presence_reaper_online_users"] == 2, 10,
               what="online_users to follow the set down to 2")


def test_standby_exports_and_is_healthy(h):
    d1, p1 = start_with_metrics(h, pod="m-lead")
    wait_until(lambda: scrape(p1)["presence_reaper_is_leader"] == 1, 10, what="a leader")
    d2, p2 = start_with_metrics(h, pod="m-standby")
    d2.wait_log("standby", 10)
    assert scrape(p2)["presence_reaper_is_leader"] == 0
    assert get(p2, "/healthz")[0] == 200
    assert get(p2, "/readyz")[0] == 200


def test_guard_metric(h):
    h.rt.connect_many([b"u%d" % i for i in range(150)])
    d, port = start_with_metrics(h, {"keys.socket_suffix": ":wrong"})
    wait_until(lambda: scrape(port)["presence_reaper_guard_tripped_total"] >= 1, 10,
               what="guard_tripped_total")
    assert scrape(port)["presence_reaper_cycles_total{result=\"guard\"}"] >= 1
    assert len(h.members()) == 150


def test_health_stays_ok_while_redis_is_down_and_ready_follows_redis(h):
    d, port = start_with_metrics(h)
    d.wait_cycles(1, 10)
    assert get(port, "/readyz")[0] == 200
    h.redis.stop()
    wait_until(lambda: get(port, "/readyz")[0] == 503, 10, what="/readyz to report Redis down")
    t_end = time.monotonic() + 4
    while time.monotonic() < t_end:        # several health windows
        assert get(port, "/healthz")[0] == 200
        time.sleep(0.2)
    assert scrape(port)["presence_reaper_redis_errors_total"] >= 1
    h.redis_back()
    wait_until(lambda: get(port, "/readyz")[0] == 200, 15, what="/readyz back to 200")


def test_healthz_fails_when_the_loop_is_wedged(h):
    """The main loop blocks on a log pipe nobody reads; the HTTP thread says so."""
    stale = [b"w" * 4000 + b"%d" % i for i in range(300)]
    h.rt.connect_many(stale)
    h.rt.crash_many(stale)
    port = free_port()
    conf = h.config({"metrics.listen": f"127.0.0.1:{port}", "reaper.max_stale_ratio": 1.0,
                     "redis.command_timeout": 0.5, "redis.connect_timeout": 0.5})
    # -v logs every removed ID: ~1.2 MB into a 64 KB pipe that is never read.
    p = subprocess.Popen([binary(), "-c", conf, "-v"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=h.env({"POD_NAME": "wedged"}))
    try:
        wait_until(lambda: _answers(port), 10, what="the metrics listener")
        # window = 3 * interval + connect + command timeouts = 1.5 + 1 s
        wait_until(lambda: get(port, "/healthz")[0] == 503, 15, what="/healthz to fail")
    finally:
        p.kill()
        p.wait()
        p.stderr.close()


def test_bad_http_requests_do_not_hurt(h):
    d, port = start_with_metrics(h)
    d.wait_cycles(1, 10)
    # garbage
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    s.sendall(b"\x00\xff\x16\x03\x01garbage\r\n\r\n")
    try:
        reply = s.recv(4096)            # a 400, or the connection closed
        assert not reply.startswith(b"HTTP/1.1 200"), reply[:80]
    except (socket.timeout, ConnectionResetError):
        pass                            # or dropped later by the connection timeout
    s.close()
    # oversized headers
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n")
        reply = s.recv(4096)
        assert not reply.startswith(b"HTTP/1.1 200"), reply[:80]
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    s.close()
    # slow clients hold connections open, half a request each
    slow = []
    for _ in range(8):
        c = socket.create_connection(("127.0.0.1", port), timeout=3)
        c.sendall(b"GET /metr")
        slow.append(c)
    t0 = time.monotonic()
    assert get(port, "/healthz")[0] == 200
    assert time.monotonic() - t0 < 1, "a slow client stalled the listener"
    assert get(port, "/nope")[0] == 404
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    c.request("POST", "/metrics", body=b"x" * 1000)
    assert c.getresponse().status == 405
    c.close()
    for c in slow:
        c.close()
    # and the daemon still reaps
    h.rt.connect_many([b"after-abuse"])
    h.rt.crash_many([b"after-abuse"])
    wait_until(lambda: b"after-abuse" not in h.members(), 10, what="reaping after abuse")
    assert d.alive()


def test_listen_on_all_interfaces_answers_over_ipv4_and_ipv6(h):
    """metrics.listen = ":port" means every interface, of both address families."""
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1) on this host")
    port = free_port()
    d = h.start(["-c", h.config({"metrics.listen": f":{port}"})], env={"POD_NAME": "m-any"},
                name="m-any")
    wait_until(lambda: _answers(port, "127.0.0.1"), 10, what="the listener on 127.0.0.1",
               alive=[d])
    wait_until(lambda: _answers(port, "::1"), 10, what="the listener on [::1]", alive=[d])
    d.wait_cycles(1, 10)
    assert scrape(port, "::1")["presence_reaper_is_leader"] == 1
    assert scrape(port, "127.0.0.1")["presence_reaper_is_leader"] == 1


def _listen_conf(h, listen, **extra):
    """The daemon's one config file, rewritten in place (SIGHUP re-reads it)."""
    settings = {"metrics.listen": listen}
    settings.update(extra)
    return h.config(settings, name="live.conf")


def test_sighup_moves_the_listener(h):
    p1, p2 = free_port(), free_port()
    d = h.start(["-c", _listen_conf(h, f"127.0.0.1:{p1}")], env={"POD_NAME": "m-mv"},
                name="m-mv")
    wait_until(lambda: _answers(p1), 10, what="the listener on the first port", alive=[d])
    _listen_conf(h, f"127.0.0.1:{p2}")
    d.signal(signal.SIGHUP)
    wait_until(lambda: _answers(p2), 10, what="the listener on the new port", alive=[d])
    wait_until(lambda: not _answers(p1), 10, what="the old port to close", alive=[d])
    d.wait_log("configuration reloaded", 10)
    assert scrape(p2)["presence_reaper_build_info{version=\"0.1.0\"}"] == 1


def test_sighup_to_a_busy_address_keeps_the_old_listener_and_settings(h):
    p1 = free_port()
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    p2 = busy.getsockname()[1]
    try:
        d = h.start(["-c", _listen_conf(h, f"127.0.0.1:{p1}")], env={"POD_NAME": "m-busy"},
                    name="m-busy")
        wait_until(lambda: _answers(p1), 10, what="the listener", alive=[d])
        d.wait_cycles(1, 10)
        # The new file also slows the loop down: a rejected reload applies none of it.
        _listen_conf(h, f"127.0.0.1:{p2}", **{"reaper.interval": 600})
        d.signal(signal.SIGHUP)
        d.wait_log("reload failed, keeping the old configuration", 10)
        assert "metrics.listen 127.0.0.1:%d" % p2 in d.stderr(), d.stderr()
        assert _answers(p1)
        d.wait_cycles(2, 10)        # still at the old 0.5 s interval
    finally:
        busy.close()


def test_sighup_widens_the_listener_on_the_same_port(h):
    """127.0.0.1:P -> :P cannot bind beside the old socket; it still moves."""
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1) on this host")
    port = free_port()
    d = h.start(["-c", _listen_conf(h, f"127.0.0.1:{port}")], env={"POD_NAME": "m-wide"},
                name="m-wide")
    wait_until(lambda: _answers(port), 10, what="the listener", alive=[d])
    _listen_conf(h, f":{port}")
    d.signal(signal.SIGHUP)
    wait_until(lambda: _answers(port, "::1"), 10, what="the listener on [::1]", alive=[d])
    assert _answers(port, "127.0.0.1")
    d.wait_log("configuration reloaded", 10)


def test_sighup_to_an_unusable_address_on_the_same_port_keeps_the_old_listener(h):
    """Moving within one port closes the old listener first; a failure puts it back."""
    port = free_port()
    d = h.start(["-c", _listen_conf(h, f"127.0.0.1:{port}")], env={"POD_NAME": "m-back"},
                name="m-back")
    wait_until(lambda: _answers(port), 10, what="the listener", alive=[d])
    _listen_conf(h, f"192.0.2.1:{port}")        # TEST-NET-1: no interface has it
    d.signal(signal.SIGHUP)
    d.wait_log("reload failed, keeping the old configuration", 10)
    assert "gone too" not in d.stderr(), d.stderr()
    assert _answers(port)


def read_textfile(path):
    assert not os.path.islink(path), f"{path} is a symlink"
    with open(path) as f:
        return samples_of(f.read())


def once_result(samples):
    """The label of presence_reaper_once_result that is 1; every other is 0."""
    ones = [k for k, v in samples.items() if k.startswith("presence_reaper_once_result{")
            and v == 1]
    rest = [v for k, v in samples.items() if k.startswith("presence_reaper_once_result{")
            and k not in ones]
    assert len(ones) == 1 and set(rest) == {0}, samples
    return ones[0][len('presence_reaper_once_result{result="'):-2]


def leftovers(folder, name):
    """Files beside the textfile that a write left behind (temporary files)."""
    return [f for f in os.listdir(folder) if name in f and f != name]


def test_textfile_after_once(h):
    h.rt.connect_many([b"a", b"z"])
    h.rt.crash_many([b"z"])
    path = os.path.join(h.dir, "reaper.prom")
    rc, _, err = h.run(["-c", h.config({"metrics.textfile": path}), "--once"])
    assert rc == 0, err
    samples = read_textfile(path)
    assert samples["presence_reaper_users_removed_total"] == 1
    assert samples["presence_reaper_online_users"] == 2
    assert once_result(samples) == "ok"
    assert samples["presence_reaper_once_exit_code"] == EX_OK
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert not leftovers(h.dir, "reaper.prom"), "temp file left"


def test_textfile_never_follows_a_planted_symlink(h):
    """A symlink at the old predictable temp name (PATH.PID.tmp) is left alone."""
    h.rt.connect_many([b"a"])
    victim = os.path.join(h.dir, "victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    path = os.path.join(h.dir, "reaper.prom")
    conf = h.config({"metrics.textfile": path})
    # The shell plants the link under its own pid, then execs the reaper in its place.
    plant = 'ln -s "$VICTIM" "$PROM.$$.tmp" && exec "$@"'
    p = subprocess.Popen(["sh", "-c", plant, "sh", binary(), "-c", str(conf), "--once"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=h.env({"VICTIM": victim, "PROM": path}))
    err = p.communicate(timeout=30)[1].decode(errors="replace")
    assert not SANITIZER_RE.search(err), err
    assert p.returncode == 0, err
    with open(victim) as f:
        assert f.read() == "precious\n", "the planted symlink was followed"
    planted = "%s.%d.tmp" % (path, p.pid)
    assert os.readlink(planted) == victim
    assert once_result(read_textfile(path)) == "ok"
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert leftovers(h.dir, "reaper.prom") == [os.path.basename(planted)]


def test_textfile_when_redis_is_unreachable(h):
    path = os.path.join(h.dir, "reaper.prom")
    conf = h.config({"metrics.textfile": path, "redis.connect_timeout": 0.5},
                    url=f"redis://127.0.0.1:{closed_port()}/0")
    rc, _, err = h.run(["-c", conf, "--once"])
    assert rc == EX_UNAVAILABLE, err
    samples = read_textfile(path)
    assert once_result(samples) == "unreachable"
    assert samples["presence_reaper_once_exit_code"] == EX_UNAVAILABLE
    assert samples["presence_reaper_last_success_timestamp_seconds"] == 0


def test_textfile_when_another_leader_holds_the_lock(h):
    h.rt.connect_many([b"a", b"z"])
    h.rt.crash_many([b"z"])
    h.r.set(LOCK, b"elsewhere:1:0123456789abcdef", px=60000)
    path = os.path.join(h.dir, "reaper.prom")
    rc, _, err = h.run(["-c", h.config({"metrics.textfile": path}), "--once"])
    assert rc == EX_OK, err
    assert "another instance holds the lock" in err, err
    samples = read_textfile(path)
    assert once_result(samples) == "not_leader"
    assert samples["presence_reaper_once_exit_code"] == EX_OK
    assert h.members() == {b"a", b"z"}


def test_textfile_when_the_guard_trips(h):
    h.rt.connect_many([b"u%d" % i for i in range(150)])
    path = os.path.join(h.dir, "reaper.prom")
    rc, _, err = h.run(["-c", h.config({"metrics.textfile": path,
                                        "keys.socket_suffix": ":wrong"}), "--once"])
    assert rc == EX_TEMPFAIL, err
    samples = read_textfile(path)
    assert once_result(samples) == "guard"
    assert samples["presence_reaper_once_exit_code"] == EX_TEMPFAIL


def test_ghosts_reported_and_left_alone_by_default(h):
    h.rt.connect_many([b"ghost-1", b"ghost-2", b"fine"])
    h.r.persist(h.rt.key(b"ghost-1"))
    h.r.persist(h.rt.key(b"ghost-2"))
    port = free_port()
    rc, _, err = h.run(["-c", h.config({"metrics.textfile": os.path.join(h.dir, "g.prom")}),
                        "--once"])
    assert rc == 0, err
    assert "ghosts: 2 socket sets have no TTL" in err and "ghost-1" in err, err
    assert h.r.ttl(h.rt.key(b"ghost-1")) == -1
    assert h.members() == {b"ghost-1", b"ghost-2", b"fine"}
    text = open(os.path.join(h.dir, "g.prom")).read()
    assert "presence_reaper_ghosts_total 2" in text
    del port


def test_ghosts_repaired_when_asked(h):
    h.rt.connect_many([b"ghost-1", b"fine"])
    h.r.persist(h.rt.key(b"ghost-1"))
    rc, _, err = h.run(["-c", h.config({"reaper.repair_missing_ttl": 90}), "--once"])
    assert rc == 0, err
    assert "gave them 90 s" in err, err
    assert 80 <= h.r.ttl(h.rt.key(b"ghost-1")) <= 90
    # dry-run never repairs
    h.r.persist(h.rt.key(b"ghost-1"))
    rc, _, err = h.run(["-c", h.config({"reaper.repair_missing_ttl": 90}), "--dry-run", "--once"])
    assert rc == 0, err
    assert h.r.ttl(h.rt.key(b"ghost-1")) == -1


def test_sd_notify_protocol(h):
    d = tempfile.mkdtemp(dir=h.dir)
    path = os.path.join(d, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    got = []

    def drain():
        while True:
            try:
                got.append(sock.recv(4096).decode())
            except socket.timeout:
                return True

    dm = h.start(["-c", h.config()], env={"POD_NAME": "sd", "NOTIFY_SOCKET": path,
                                          "WATCHDOG_USEC": "600000"}, name="sd")
    # WATCHDOG_PID must name the daemon; without it libsystemd accepts any pid.
    dm.wait_cycles(1, 10)
    wait_until(lambda: drain() and any("STATUS=cycle done:" in g for g in got), 10,
               what="STATUS after a cycle")
    assert "READY=1" in got, got
    assert got.index("READY=1") < [i for i, g in enumerate(got) if g.startswith("STATUS=")][0]
    wait_until(lambda: drain() and got.count("WATCHDOG=1") >= 2, 5, what="WATCHDOG=1 pings")
    dm.signal(signal.SIGTERM)
    assert dm.wait_exit(3) == 0
    drain()
    assert "STOPPING=1" in got, got
    sock.close()


def test_ghosts_all_repaired_in_a_large_set(h):
    """Repair must find every ghost, not only those the guard's sample draws."""
    users = [b"u%d" % i for i in range(4000)]
    ghosts = users[::800]
    h.rt.connect_many(users)
    for g in ghosts:
        h.r.persist(h.rt.key(g))
    rc, _, err = h.run(["-c", h.config({"reaper.repair_missing_ttl": 90}), "--once"])
    assert rc == 0, err
    assert "ghosts: %d socket sets had no TTL" % len(ghosts) in err, err
    for g in ghosts:
        assert 80 <= h.r.ttl(h.rt.key(g)) <= 90, g
    assert h.members() == set(users)


def test_ghost_seen_by_sample_and_pass_counts_once(h):
    """A ghost in a short group is seen by the guard's sample and by the pass: one ghost."""
    users = [b"u%d" % i for i in range(50)]
    h.rt.connect_many(users)
    h.r.persist(h.rt.key(b"u7"))
    h.rt.crash_many(users[10:20])  # short groups everywhere: the pass PTTLs u7 too
    rc, _, err = h.run(["-c", h.config({"reaper.max_stale_ratio": 1}), "--once"])
    assert rc == 0, err
    assert "ghosts: 1 socket sets have no TTL" in err, err
    assert h.members() == set(users) - set(users[10:20])

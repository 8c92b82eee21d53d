"""Bad configuration, bad data and bad networks: the right exit status, a message
that names the problem, and the online set left alone."""

import os
import re
import socket
import subprocess
import time

import pytest

from harness import (EX_CONFIG, EX_DATAERR, EX_UNAVAILABLE, EX_USAGE, ONLINE, SANITIZER_RE,
                     binary, closed_port, hold_for)


@pytest.fixture
def w(h):
    """The harness with some live and some stale users already in place."""
    live = [b"live-%d" % i for i in range(8)]
    stale = [b"stale-%d" % i for i in range(4)]
    h.rt.connect_many(live + stale)
    h.rt.crash_many(stale)
    h.before = h.members()
    yield h
    assert h.members() == h.before, "the online set must be unchanged"


def write(h, text):
    return h.config(raw=text.replace("@SOCK@", h.redis.sock))


def has_error(err, path, line, text):
    pat = re.escape(f"{path}:{line}: ") + re.escape(text)
    return re.search(pat, err) is not None


def test_syntax_error_names_file_and_line(w):
    path = write(w, 'redis = { url = "unix://@SOCK@"; };\n'
                    'reaper = {\n'
                    '  interval = ;\n'
                    '};\n')
    rc, out, err = w.run(["-c", path, "--once"])
    assert rc == EX_CONFIG, err
    assert has_error(err, path, 3, "syntax error"), err


def test_unknown_setting_is_named_with_line(w):
    path = write(w, 'redis = { url = "unix://@SOCK@"; };\n'
                    'reaper = {\n'
                    '  interval = 0.5;\n'
                    '  bogus = 1;\n'
                    '};\n')
    rc, out, err = w.run(["-c", path, "--once"])
    assert rc == EX_CONFIG, err
    assert has_error(err, path, 4, "reaper.bogus: unknown setting"), err


def test_unknown_group_is_an_error(w):
    path = write(w, 'redis = { url = "unix://@SOCK@"; };\n'
                    'reeper = { interval = 0.5; };\n')
    rc, out, err = w.run(["-c", path, "--once"])
    assert rc == EX_CONFIG, err
    assert has_error(err, path, 2, "reeper"), err
    assert "unknown setting" in err


def test_wrong_type(w):
    path = write(w, 'redis = { url = "unix://@SOCK@"; };\n'
                    'reaper = { batch_size = "ten"; };\n')
    rc, out, err = w.run(["-c", path, "--once"])
    assert rc == EX_CONFIG, err
    assert has_error(err, path, 2, "reaper.batch_size: wrong type"), err


def test_wrong_type_string_setting_given_a_number(w):
    path = write(w, 'redis = { url = "unix://@SOCK@"; };\n'
                    'keys = { online_set = 42; };\n')
    rc, out, err = w.run(["-c", path, "--once"])
    assert rc == EX_CONFIG, err
    assert has_error(err, path, 2, "keys.online_set: wrong type"), err


def test_out_of_range_batch_size_zero(w):
    path = write(w, 'redis = { url = "unix://@SOCK@"; };\n'
                    'reaper = { batch_size = 0; };\n')
    rc, out, err = w.run(["-c", path, "--once"])
    assert rc == EX_CONFIG, err
    assert has_error(err, path, 2, "reaper.batch_size: 0 is out of range (1..100000)"), err


def test_out_of_range_stale_ratio(w):
    path = write(w, 'redis = { url = "unix://@SOCK@"; };\n'
                    'reaper = { max_stale_ratio = 1.5; };\n')
    rc, out, err = w.run(["-c", path, "--once"])
    assert rc == EX_CONFIG, err
    assert has_error(err, path, 2, "reaper.max_stale_ratio:"), err
    assert "out of range" in err


def test_renew_not_less_than_lease(w):
    path = write(w, 'redis = { url = "unix://@SOCK@"; };\n'
                    'leader = {\n'
                    '  lease = 2;\n'
                    '  renew = 2;\n'
                    '};\n')
    rc, out, err = w.run(["-c", path, "--once"])
    assert rc == EX_CONFIG, err
    assert "leader.renew: must be less than leader.lease" in err, err


def test_renew_greater_than_default_lease(w):
    path = write(w, 'redis = { url = "unix://@SOCK@"; };\n'
                    'leader = { renew = 20; };\n')
    rc, out, err = w.run(["-c", path, "--once"])
    assert rc == EX_CONFIG, err
    assert "leader.renew: must be less than leader.lease (15)" in err, err


def test_several_errors_all_reported(w):
    path = write(w, 'redis = { url = "unix://@SOCK@"; };\n'
                    'reaper = {\n'
                    '  batch_size = 0;\n'
                    '  bogus = true;\n'
                    '  interval = "soon";\n'
                    '};\n'
                    'log = { level = "loud"; };\n')
    rc, out, err = w.run(["-c", path, "--once"])
    assert rc == EX_CONFIG, err
    assert has_error(err, path, 3, "reaper.batch_size: 0 is out of range"), err
    assert has_error(err, path, 4, "reaper.bogus: unknown setting"), err
    assert has_error(err, path, 5, "reaper.interval: wrong type"), err
    assert has_error(err, path, 7, "log.level:"), err


def test_wrongtype_online_set(h):
    h.r.set(ONLINE, b"not a set")
    rc, out, err = h.run(["-c", h.config(), "--once"])
    assert rc == EX_DATAERR, err
    assert "WRONGTYPE" in err, err
    assert h.r.get(ONLINE) == b"not a set"


def test_wrongtype_online_set_dry_run(h):
    h.r.set(ONLINE, b"not a set")
    rc, out, err = h.run(["-c", h.config(), "--dry-run", "--once"])
    assert rc == EX_DATAERR, err
    assert "WRONGTYPE" in err, err
    assert h.r.get(ONLINE) == b"not a set"


def test_wrongtype_online_set_loop_keeps_running(h):
    h.r.set(ONLINE, b"not a set")
    d = h.start(["-c", h.config()], env={"POD_NAME": "a"})
    d.wait_log(r"WRONGTYPE", 10)
    hold_for(1.5, d.alive, what="the loop to survive a WRONGTYPE")
    assert h.r.get(ONLINE) == b"not a set"


def require_password(h, password):
    h.r.config_set("requirepass", password)
    h.r = h.redis.client(password=password)
    from harness import Realtime
    h.rt = Realtime(h.r)


def test_wrong_password(w):
    require_password(w, "s3cret")
    rc, out, err = w.run(["-c", w.config({"redis.password": "hunter2-not-it"}), "--once"])
    assert rc == EX_CONFIG, err
    assert "authentication failed" in err, err
    assert "hunter2-not-it" not in err, "the password must not be logged"


def test_wrong_password_in_url(w):
    require_password(w, "s3cret")
    url = "unix://:nope@" + w.redis.sock
    rc, out, err = w.run(["-c", w.config(url=url), "--once"])
    assert rc == EX_CONFIG, err
    assert "authentication failed" in err, err


def test_unknown_acl_user(w):
    url = "unix://nobody:pw@" + w.redis.sock
    rc, out, err = w.run(["-c", w.config(url=url), "--once"])
    assert rc == EX_CONFIG, err
    assert "authentication failed" in err, err


def test_user_without_password_is_that_user_not_default(w):
    """A user name alone authenticates as that user (a nopass ACL user), never as
    "default": the guard probe of -t hits the SCARD this user is denied."""
    w.r.execute_command("ACL", "SETUSER", "probe", "on", "nopass", "~*", "&*", "+@all", "-scard")
    rc, out, err = w.run(["-c", w.config(url="unix://probe@" + w.redis.sock), "-t"])
    assert rc == 0, err
    assert re.search(r"^# guard probe: .*NOPERM.*scard", out.decode(), re.M | re.I), out


def test_user_without_password_fails_when_the_user_has_one(w):
    """No silent fall-back to "default" for a user that needs a password."""
    w.r.execute_command("ACL", "SETUSER", "needs-pw", "on", ">pw", "~*", "&*", "+@all")
    rc, out, err = w.run(["-c", w.config({"redis.username": "needs-pw"}), "--once"])
    assert rc == EX_CONFIG, err
    assert "authentication as needs-pw failed (no password given)" in err, err


def test_right_password_works(h):
    # Control for the two tests above: the same setup with the right password reaps.
    h.rt.connect_many([b"live", b"stale"])
    h.rt.crash_many([b"stale"])
    require_password(h, "s3cret")
    rc, out, err = h.run(["-c", h.config({"redis.password": "s3cret"}), "--once"])
    assert rc == 0, err
    assert h.members() == {b"live"}


def test_unreachable_once(w):
    url = f"redis://127.0.0.1:{closed_port()}/0"
    rc, out, err = w.run(["-c", w.config(url=url), "--once"])
    assert rc == EX_UNAVAILABLE, err


def test_unreachable_dry_run_once(w):
    url = f"redis://127.0.0.1:{closed_port()}/0"
    rc, out, err = w.run(["-c", w.config(url=url), "--dry-run", "--once"])
    assert rc == EX_UNAVAILABLE, err
    assert out == b""


def test_unreachable_socket_path_once(w):
    rc, out, err = w.run(["-c", w.config(url="unix://" + str(w.dir / "no.sock")), "--once"])
    assert rc == EX_UNAVAILABLE, err


def test_unreachable_loop_keeps_running(w):
    url = f"redis://127.0.0.1:{closed_port()}/0"
    d = w.start(["-c", w.config(url=url)], env={"POD_NAME": "a"})
    # 100 ms doubling: 0.1+0.2+0.4+0.8+1.6 s covers five backoff rounds.
    hold_for(0.3, d.alive, what="the daemon to start")
    cpu0 = d.cpu_seconds()
    hold_for(3, d.alive, what="the daemon to keep running without Redis")
    assert d.cpu_seconds() - cpu0 < 0.5, "spinning while Redis is unreachable"
    assert re.search(r"(?i)(error|warn)", d.stderr()), "the outage should be logged"


def with_hosts_file(hosts):
    """A command prefix that runs a program with `hosts` as its /etc/hosts (a
    private mount namespace), or None when this machine cannot make one."""
    share = ["--map-root-user"] if os.geteuid() != 0 else []
    prefix = ["unshare", "--mount", "--propagation", "private"] + share + [
        "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts)]
    try:
        ok = subprocess.run(prefix + ["true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return prefix if ok else None


def silent_listener(family, addr, port):
    """A listening socket whose accept queue is full, so it drops new SYNs and a
    connect() to it hangs; None when this kernel answers them anyway."""
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.bind((addr, port))
    lsock.listen(0)
    held = []
    for _ in range(8):
        c = socket.socket(family, socket.SOCK_STREAM)
        c.settimeout(0.2)
        try:
            c.connect((addr, port))
        except socket.timeout:
            c.close()
            return lsock, held
        held.append(c)
    for c in held:
        c.close()
    lsock.close()
    return None


def test_silent_first_address_leaves_time_for_the_next(h):
    """A host name whose first address (IPv6, as is common) drops every packet:
    each address gets its own share of connect_timeout, so the second one, where
    Redis answers, is still tried in time."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 loopback")
    hosts = h.dir / "hosts"
    hosts.write_text("::1 redis-two-addresses\n127.0.0.1 redis-two-addresses\n")
    prefix = with_hosts_file(hosts)
    if prefix is None:
        pytest.skip("cannot give the test its own /etc/hosts (unshare --mount)")
    silent = silent_listener(socket.AF_INET6, "::1", h.redis.port)
    if silent is None:
        pytest.skip("this kernel does not drop SYNs to a full accept queue")
    h.rt.connect_many([b"live", b"stale"])
    h.rt.crash_many([b"stale"])
    url = f"redis://redis-two-addresses:{h.redis.port}/0"
    conf = h.config({"redis.connect_timeout": 1}, url=url)
    try:
        start = time.monotonic()
        p = subprocess.run(prefix + [binary(), "-c", str(conf), "--once"], env=h.env(),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        took = time.monotonic() - start
    finally:
        for c in silent[1]:
            c.close()
        silent[0].close()
    err = p.stderr.decode(errors="replace")
    assert not SANITIZER_RE.search(err), err
    assert p.returncode == 0, err
    assert h.members() == {b"live"}
    # The silent address was tried first and given about half of the second.
    assert took >= 0.45, f"took {took:.2f}s: was [::1] tried first?\n{err}"


def test_missing_config_file(w):
    rc, out, err = w.run(["-c", str(w.dir / "does-not-exist.conf"), "--once"])
    assert rc == EX_CONFIG, err
    assert "does-not-exist.conf" in err


def test_unreadable_password_file(w):
    conf = w.config({"redis.password_file": str(w.dir / "missing-secret")})
    rc, out, err = w.run(["-c", conf, "--once"])
    assert rc == EX_CONFIG, err
    assert "missing-secret" in err


def test_password_and_password_file_together(w):
    secret = w.dir / "secret"
    secret.write_text("pw\n")
    conf = w.config({"redis.password": "pw", "redis.password_file": str(secret)})
    rc, out, err = w.run(["-c", conf, "--once"])
    assert rc == EX_CONFIG, err


TOO_LONG = "x" * 512    # one byte more than the most supported (511)


@pytest.mark.parametrize("source", ["--redis-url", "PRESENCE_REAPER_REDIS_PASSWORD",
                                    "redis.password_file", "redis.password"])
def test_too_long_password_is_a_config_error(w, source):
    """A password that does not fit is refused with exit 78 and its source named,
    never cut to a prefix that fails to authenticate for no visible reason."""
    args, env, settings = [], {}, {}
    if source == "--redis-url":
        args = ["--redis-url", f"unix://:{TOO_LONG}@{w.redis.sock}"]
        want = "--redis-url: redis.url: password in URL is longer than 511 bytes"
    elif source == "PRESENCE_REAPER_REDIS_PASSWORD":
        env = {source: TOO_LONG}
        want = "PRESENCE_REAPER_REDIS_PASSWORD: password is longer than 511 bytes"
    elif source == "redis.password_file":
        secret = w.dir / "secret"
        secret.write_text(TOO_LONG + "\n")
        os.chmod(secret, 0o600)
        settings = {source: str(secret)}
        want = f"redis.password_file: password in {secret} is longer than 511 bytes"
    else:
        settings = {source: TOO_LONG}
        want = "redis.password: password is longer than 511 bytes"
    for mode in (["--once"], ["-t"]):
        rc, out, err = w.run(["-c", w.config(settings)] + args + mode, env=env)
        assert rc == EX_CONFIG, err
        assert want in err, err
        assert "xxxxxxxx" not in err + out.decode(), "the password must not be printed"


def test_longest_password_works(h):
    """Control for the test above: 511 bytes, from a password file, authenticate."""
    h.rt.connect_many([b"live", b"stale"])
    h.rt.crash_many([b"stale"])
    require_password(h, "y" * 511)
    secret = h.dir / "secret"
    secret.write_text("y" * 511 + "\n")
    os.chmod(secret, 0o600)
    rc, out, err = h.run(["-c", h.config({"redis.password_file": str(secret)}), "--once"])
    assert rc == 0, err
    assert h.members() == {b"live"}


def test_unknown_flag(w):
    rc, out, err = w.run(["-c", w.config(), "--once", "--frobnicate"])
    assert rc == EX_USAGE, err
    assert "usage" in err.lower(), err


def test_bad_log_format_argument(w):
    rc, out, err = w.run(["-c", w.config(), "--once", "--log-format", "xml"])
    assert rc == EX_USAGE, err


def test_missing_option_argument(w):
    rc, out, err = w.run(["--once", "-c"])
    assert rc == EX_USAGE, err


def test_stray_positional_argument(w):
    rc, out, err = w.run(["-c", w.config(), "--once", "extra"])
    assert rc == EX_USAGE, err



@pytest.mark.parametrize("denied,where", [
    ("-exists", "EXISTS on presence:user:*:sockets: NOPERM"),          # group screening
    # The reap script's check, before --once takes the lock.
    ("-evalsha", "EVALSHA reap script on presence:online-users, presence:reaper:leader "
                 "and presence:user:*:sockets: NOPERM"),
])
def test_denied_command_stops_the_pass_with_nothing_removed(h, denied, where):
    """A reaper user missing a command the pass needs: exit 78 (the error-reply
    policy: NOPERM is a configuration error), the command and key named."""
    # Few stale among many, so the pass screens by groups with EXISTS.
    users = [b"u%d" % i for i in range(300)]
    h.rt.connect_many(users)
    h.rt.crash_many(users[:2])
    h.r.execute_command("ACL", "SETUSER", "reaper", "on", ">pw", "~*", "+@all", denied)
    url = "unix://reaper:pw@" + h.redis.sock
    rc, out, err = h.run(["-c", h.config(url=url), "--once"])
    assert rc == EX_CONFIG, err
    assert where in err, err
    assert h.members() == set(users)

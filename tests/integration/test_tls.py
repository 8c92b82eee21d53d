"""TLS to Redis (rediss://, tls.*): reaping over TLS in the loop and with
--once, mutual TLS, every handshake failure with its own message and exit
status, certificate files checked at start (78, -t too) and read again before
every new connection, so renewed certificates are used without a restart.

Certificates are made with the openssl command for each module run; the
redis-server speaks TLS on its TCP port and plain RESP on its Unix socket,
which the test's own client uses.
"""

import os
import re
import shutil
import tempfile

import pytest

from faultproxy import fault_proxy
from harness import (EX_CONFIG, EX_OK, EX_UNAVAILABLE, Harness, Realtime, wait_until)
from tlsutil import TlsRedisServer, make_pki

LIVE = [b"live-%d" % i for i in range(5)]
STALE = [b"stale-%d" % i for i in range(3)]


@pytest.fixture(scope="module")
def pki():
    folder = tempfile.mkdtemp(prefix="prt-pki-")
    try:
        yield make_pki(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def tls_harness(pki, **server):
    """A Harness whose redis-server speaks TLS on its TCP port."""
    h = Harness(with_redis=False)
    try:
        (h.dir / "tls-redis").mkdir()
        h.redis = TlsRedisServer(h.dir / "tls-redis", pki, **server)
        h.redis.start()
        h.r = h.redis.client()
        h.rt = Realtime(h.r)
    except BaseException:
        h.close()
        raise
    return h


def stale_world(pki, **server):
    """A TLS harness with 8 users online, 3 of them stale; always closed."""
    h = tls_harness(pki, **server)
    try:
        h.pki = pki
        h.rt.connect_many(LIVE + STALE)
        h.rt.crash_many(STALE)
        yield h
    finally:
        h.close()


@pytest.fixture
def t(pki):
    """TLS redis-server, server certificate for localhost and 127.0.0.1."""
    yield from stale_world(pki)


def tls_conf(h, url=None, **tls):
    settings = {"redis.url": url or h.redis.url(), "redis.connect_timeout": 1,
                "tls.ca_file": h.pki.path("ca.crt")}
    settings.update({"tls." + k: v for k, v in tls.items()})
    return h.config({k: v for k, v in settings.items() if v is not None})


def once(h, conf, *args):
    return h.run(["-c", conf, "--once"] + list(args), timeout=60)


# --- reaping over TLS -----------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_once_over_tls_reaps_the_stale_users(t, host):
    rc, _, err = once(t, tls_conf(t, t.redis.url(host)))
    assert rc == EX_OK, err
    assert t.members() == set(LIVE), err
    assert "removed=3" in err, err


def test_tls_enabled_with_a_redis_url_turns_tls_on(t):
    rc, _, err = once(t, tls_conf(t, t.redis.url(scheme="redis"), enabled=True))
    assert rc == EX_OK, err
    assert t.members() == set(LIVE)


def test_loop_over_tls_says_tls_at_connect_and_reaps(t):
    d = t.start(["-c", tls_conf(t)], env={"POD_NAME": "a"})
    d.wait_log(r"info: connected to rediss://127\.0\.0\.1:\d+/0 \(tls TLSv1\.3 \S+\)", 10)
    wait_until(lambda: t.members() == set(LIVE), 15, what="the stale users removed", alive=[d])
    t.rt.crash_many(LIVE[:2])
    wait_until(lambda: t.members() == set(LIVE[2:]), 15, what="two more removed", alive=[d])
    assert "tls.verify" not in d.stderr()
    rc, out, err = t.run(["-c", tls_conf(t), "--status"])
    assert rc == 0 and out.startswith(b"presence-reaper OK: leader a:"), out + err.encode()


def test_a_large_pipelined_pass_over_tls(t):
    """Enough queued commands that writes and reads over TLS must wait for the socket."""
    users = [b"u%06d-" % i + b"x" * 40 for i in range(30000)]
    t.rt.connect_many(users)
    t.rt.crash_many(users[::10])
    rc, _, err = once(t, t.config({
        "redis.url": t.redis.url(), "tls.ca_file": t.pki.path("ca.crt"),
        "reaper.batch_size": 20000, "reaper.guard_min_users": 1000000}))
    assert rc == EX_OK, err
    assert t.members() == set(LIVE) | set(users) - set(users[::10]), err


def test_key_expiry_watch_subscribes_over_tls(t):
    t.r.config_set("notify-keyspace-events", "Ex")
    conf = t.config({"redis.url": t.redis.url(), "tls.ca_file": t.pki.path("ca.crt"),
                     "reaper.watch_expiry": True, "reaper.interval": 3600})
    d = t.start(["-c", conf], env={"POD_NAME": "a"})
    d.wait_log(r"watching key expiry", 10)
    wait_until(lambda: t.members() == set(LIVE), 15, what="the first pass", alive=[d])
    t.rt.crash(LIVE[0], expire=True)
    wait_until(lambda: LIVE[0] not in t.members(), 10, what="removal on the expiry event",
               alive=[d])


# --- handshake failures: each its own message; --once exits 69 ----------------------

def failing_server(pki, h, **server):
    (h.dir / f"srv{len(h.servers)}").mkdir()
    srv = TlsRedisServer(h.dir / f"srv{len(h.servers)}", pki, **server)
    h.servers.append(srv)
    srv.start()
    return srv


@pytest.mark.parametrize("server,tls,host,message", [
    ({}, {"ca_file": None}, "127.0.0.1",
     r"signed by an unknown CA \(issuer CN=presence-reaper test CA\): set tls\.ca_file"),
    ({}, {"ca_file": "ca2.crt"}, "127.0.0.1", r"signed by an unknown CA"),
    ({"cert": "other"}, {}, "127.0.0.1",
     r"hostname mismatch: the server's certificate \(CN=other\.example\) is not valid "
     r"for 127\.0\.0\.1"),
    ({}, {"server_name": "db.example"}, "127.0.0.1",
     r"hostname mismatch: .* is not valid for db\.example"),
    ({"cert": "expired"}, {}, "localhost",
     r"the server's certificate \(CN=localhost\) expired on \d{4}-\d\d-\d\d"),
    ({"auth_clients": True}, {}, "127.0.0.1",
     r"requires a client certificate: set tls\.cert_file and tls\.key_file"),
    ({"auth_clients": True}, {"cert_file": "client2.crt", "key_file": "client2.key"},
     "127.0.0.1", r"refused our client certificate \(tls\.cert_file\)"),
])
def test_once_tls_failure_exits_69_with_its_own_message(t, server, tls, host, message):
    srv = failing_server(t.pki, t, **server)
    files = {k: (t.pki.path(v) if isinstance(v, str) and k != "server_name" else v)
             for k, v in tls.items()}
    rc, _, err = once(t, tls_conf(t, srv.url(host), **files))
    assert rc == EX_UNAVAILABLE, err
    assert re.search(message, err), err
    assert t.members() == set(LIVE + STALE)


def test_plain_client_on_a_tls_port(t):
    rc, _, err = once(t, tls_conf(t, t.redis.url(scheme="redis"), ca_file=None))
    assert rc == EX_UNAVAILABLE, err
    assert "a plain client on a TLS port? (use rediss:// or tls.enabled = true)" in err, err


def test_tls_client_on_a_plain_port(t):
    plain = t.server()
    rc, _, err = once(t, tls_conf(t, f"rediss://127.0.0.1:{plain.port}/0"))
    assert rc == EX_UNAVAILABLE, err
    assert "a TLS client on a plain port?" in err, err


def test_verify_false_connects_with_a_warning_at_every_connect(t):
    srv = failing_server(t.pki, t, cert="expired")
    srv.client().sadd("presence:online-users", "gone")
    rc, _, err = once(t, tls_conf(t, srv.url(), ca_file=None, verify=False))
    assert rc == EX_OK, err
    assert re.search(r"warn: TLS: tls\.verify is false", err), err
    d = t.start(["-c", tls_conf(t, srv.url(), ca_file=None, verify=False)],
                env={"POD_NAME": "a"})
    d.wait_log(r"connected to rediss://", 10)
    srv.client().execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    d.wait_log(r"connected to rediss://", 10, after=1)
    assert d.count(r"warn: TLS: tls\.verify is false") >= 2, d.stderr()


# --- files: checked at start (78), -t --------------------------------------------

def garbage(t, name):
    path = t.dir / name
    path.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    return str(path)


@pytest.mark.parametrize("tls,message", [
    ({"ca_file": "/nonexistent/ca.crt"},
     r"tls\.ca_file: cannot read /nonexistent/ca\.crt: No such file or directory"),
    ({"ca_dir": "/nonexistent"}, r"tls\.ca_dir: cannot read /nonexistent"),
    ({"ca_file": "GARBAGE"}, r"tls\.ca_file: .*: no usable certificate"),
    ({"cert_file": "client.crt", "key_file": "client2.key"},
     r"tls\.key_file is not the key of tls\.cert_file"),
    ({"cert_file": "GARBAGE", "key_file": "client.key"},
     r"tls\.cert_file: .*: no usable certificate"),
    ({"cert_file": "client.crt"}, r"tls\.cert_file: mutual TLS needs both"),
])
@pytest.mark.parametrize("mode", [["--once"], ["-t"], []])
def test_unusable_tls_files_at_start_exit_78(t, tls, message, mode):
    files = {k: (garbage(t, "bad.pem") if v == "GARBAGE" else
                 t.pki.path(v) if not v.startswith("/") else v) for k, v in tls.items()}
    rc, out, err = t.run(["-c", tls_conf(t, **files)] + mode, timeout=30)
    assert rc == EX_CONFIG, err
    assert re.search(message, err), err
    if mode == ["-t"] and "mutual" not in message:
        assert re.search(message, out.decode()), out


def test_an_encrypted_key_is_refused_without_a_prompt(t):
    key = t.dir / "enc.key"
    p = __import__("subprocess").run(
        ["openssl", "pkey", "-in", t.pki.path("client.key"), "-aes256", "-passout",
         "pass:secret", "-out", str(key)], capture_output=True)
    assert p.returncode == 0, p.stderr
    rc, _, err = once(t, tls_conf(t, cert_file=t.pki.path("client.crt"), key_file=str(key)))
    assert rc == EX_CONFIG, err
    assert "tls.key_file" in err and "no usable private key" in err, err


def test_check_config_shows_the_session_and_the_certificate(t):
    rc, out, err = t.run(["-t", "-c", tls_conf(t)])
    out = out.decode()
    assert rc == EX_OK, err
    assert re.search(r'^tls = \{\n  enabled = true;\n  ca_file = "[^"]+/ca\.crt";', out, re.M), out
    assert re.search(r"^# redis rediss://127\.0\.0\.1:\d+/0: reachable$", out, re.M), out
    assert re.search(r"^# tls: TLSv1\.3, cipher \S+$", out, re.M), out
    assert re.search(r"^# tls: server certificate CN=localhost, expires \d{4}-\d\d-\d\d "
                     r"\d\d:\d\d:\d\d UTC \(in 36[45] days\)$", out, re.M), out
    assert "WARNING" not in out and "expires on" not in err


def test_check_config_warns_of_a_certificate_expiring_within_14_days(t):
    srv = failing_server(t.pki, t, cert="soon")
    rc, out, err = t.run(["-t", "-c", tls_conf(t, srv.url())])
    out = out.decode()
    assert rc == EX_OK, err
    assert re.search(r"\(in [67] days\)", out), out
    assert "# tls: WARNING: the server certificate expires within 14 days" in out, out
    assert re.search(r"warn: TLS: the server certificate \(CN=localhost\) expires on", err), err


# --- mutual TLS and rotation ----------------------------------------------------------

def client_files(t, name):
    """Copy NAME.crt/.key to the files the daemon is configured with (rotation)."""
    shutil.copyfile(t.pki.path(f"{name}.crt"), t.dir / "client.crt")
    shutil.copyfile(t.pki.path(f"{name}.key"), t.dir / "client.key")
    os.chmod(t.dir / "client.key", 0o600)
    return str(t.dir / "client.crt"), str(t.dir / "client.key")


@pytest.fixture
def m(pki):
    """TLS redis-server that requires client certificates signed by ca."""
    yield from stale_world(pki, auth_clients=True)


def test_mutual_tls_reaps(m):
    crt, key = client_files(m, "client")
    rc, _, err = once(m, tls_conf(m, cert_file=crt, key_file=key))
    assert rc == EX_OK, err
    assert m.members() == set(LIVE)


def test_rotated_client_certificate_is_used_without_a_restart(m):
    crt, key = client_files(m, "client")
    d = m.start(["-c", tls_conf(m, cert_file=crt, key_file=key)], env={"POD_NAME": "a"})
    d.wait_log(r"connected to rediss://", 10)
    wait_until(lambda: m.members() == set(LIVE), 15, what="the stale users removed", alive=[d])

    # The renewed certificate, from another CA, lands on disk; Redis now trusts only that CA.
    client_files(m, "client2")
    m.redis.ca_name = "ca2"
    m.redis.restart()
    m.r = m.redis.client()
    m.rt = Realtime(m.r)
    m.rt.connect_many(LIVE + STALE)
    m.rt.crash_many(STALE)
    d.wait_log(r"info: connected to rediss://\S+ \(tls ", 20, after=1)
    wait_until(lambda: m.members() == set(LIVE), 15, what="reaping with the new certificate",
               alive=[d])
    assert "refused our client certificate" not in d.stderr(), d.stderr()
    # The old certificate no longer gets in: the daemon really uses the new files.
    rc, _, err = once(m, tls_conf(m, cert_file=m.pki.path("client.crt"),
                                  key_file=m.pki.path("client.key")))
    assert rc == EX_UNAVAILABLE and "refused our client certificate" in err, err


def test_a_bad_file_at_reconnect_keeps_the_previous_certificates(m):
    crt, key = client_files(m, "client")
    d = m.start(["-c", tls_conf(m, cert_file=crt, key_file=key)], env={"POD_NAME": "a"})
    d.wait_log(r"connected to rediss://", 10)
    os.unlink(key)
    m.r.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    d.wait_log(r"warn: TLS: cannot reload the certificate files: tls\.key_file: cannot read "
               r"\S+client\.key: No such file or directory; keeping the ones loaded before", 10)
    d.wait_log(r"connected to rediss://", 10, after=1)
    wait_until(lambda: m.members() == set(LIVE), 15, what="reaping on the kept certificates",
               alive=[d])
    client_files(m, "client")
    m.r.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    d.wait_log(r"info: TLS: the certificate files load again", 10)
    assert d.count(r"cannot reload the certificate files") == 1, d.stderr()


# --- TLS through the fault proxy (tests/integration/faultproxy.py) -------------

@pytest.fixture
def tpx(t):
    """A fault proxy in front of the TLS port: the reaper's TLS runs through it."""
    with fault_proxy(t.redis.port) as p:
        yield p


def test_tls_records_split_at_every_byte_reap_as_directly(t, tpx):
    tpx.split(True)
    rc, _, err = once(t, tls_conf(t, f"rediss://127.0.0.1:{tpx.port}/0"))
    assert rc == EX_OK, err
    assert t.members() == set(LIVE), err
    assert tpx.pieces_down > 1000, "the records were not cut"


@pytest.mark.parametrize("fault", ["half_open", "reset"])
def test_tls_connection_cut_under_the_loop_is_made_again(t, tpx, fault):
    """The TLS connection loses its server side without a word, or is reset in
    the middle of a reply: the leader gives up on it within the command timeout,
    makes a new one (a new handshake) and reaps."""
    conf = t.config({"redis.url": f"rediss://127.0.0.1:{tpx.port}/0",
                     "tls.ca_file": t.pki.path("ca.crt"), "redis.command_timeout": 1})
    d = t.start(["-c", conf], env={"POD_NAME": "tls-cut"})
    wait_until(lambda: t.members() == set(LIVE), 15, what="the stale users removed", alive=[d])
    links = tpx.connections
    if fault == "half_open":
        tpx.half_open()
    else:
        tpx.reset_mid_reply(3)
    wait_until(lambda: tpx.connections > links, 10, what="a new connection", alive=[d])
    t.rt.crash_many(LIVE[:2])
    wait_until(lambda: t.members() == set(LIVE[2:]), 15, what="two more removed", alive=[d])
    assert d.count(r"connected to rediss://.*\(tls TLSv1\.3") >= 2, d.stderr()

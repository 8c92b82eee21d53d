"""The metrics listener under abuse: idle connections, headers that trickle in,
oversized requests. Its bounds (libmicrohttpd's): 16 connections from one
address (more are closed at once), 64 in all (more wait in the kernel's
backlog), 5 s without a byte closes one, 32 KB per request. The
daemon's loop, /healthz from elsewhere and reaping go on throughout."""

import http.client
import socket
import threading
import time

from harness import hold_for, wait_until
from test_metrics import start_with_metrics

PER_IP, IDLE_TIMEOUT = 16, 5


def healthz_from(port, source):
    """GET /healthz from another loopback address (the kubelet is not the abuser)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2, source_address=(source, 0))
    try:
        t0 = time.monotonic()
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        return r.status, time.monotonic() - t0
    finally:
        c.close()


def closed_by_server(s, timeout=0.3):
    """Has the server ended this connection (EOF or reset)?"""
    s.settimeout(timeout)
    try:
        return s.recv(4096) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))


def reaping_goes_on(h, d, tag):
    user = b"after-" + tag
    h.rt.connect_many([user])
    h.rt.crash_many([user])
    wait_until(lambda: user not in h.members(), 10, what="reaping", alive=[d])


def test_idle_connections_are_bounded_and_closed_after_the_timeout(h):
    d, port = start_with_metrics(h)
    d.wait_cycles(1, 10)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=3) for _ in range(PER_IP)]
    extra = socket.create_connection(("127.0.0.1", port), timeout=3)
    assert wait_until(lambda: closed_by_server(extra), 3, what="the 17th from one address closed")
    assert not any(closed_by_server(s, 0.01) for s in idle), "one of the first 16 was closed"
    status, took = healthz_from(port, "127.0.0.2")
    assert status == 200 and took < 1, (status, took)
    n = len(d.cycles())
    reaping_goes_on(h, d, b"idle")
    assert len(d.cycles()) > n
    t0 = time.monotonic()
    wait_until(lambda: all(closed_by_server(s, 0.01) for s in idle), IDLE_TIMEOUT + 3,
               what="the idle connections closed by the listener")
    assert time.monotonic() - t0 <= IDLE_TIMEOUT + 3
    for s in idle + [extra]:
        s.close()
    # The address may connect again.
    assert healthz_from(port, "127.0.0.1")[0] == 200


def test_connections_from_many_addresses_are_bounded_in_all(h):
    d, port = start_with_metrics(h)
    held = []
    for a in range(2, 6):                              # 4 addresses x 16 = 64
        for _ in range(PER_IP):
            s = socket.socket()
            s.bind((f"127.0.0.{a}", 0))
            s.connect(("127.0.0.1", port))
            held.append(s)
    over = socket.socket()
    over.bind(("127.0.0.9", 0))
    over.connect(("127.0.0.1", port))       # the kernel's backlog takes it
    over.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    over.settimeout(1)
    try:
        early = over.recv(4096)
    except socket.timeout:
        early = None
    assert early is None, f"the 65th connection was served: {early[:80]!r}"
    reaping_goes_on(h, d, b"many")
    for s in held:
        s.close()
    over.settimeout(3)
    assert over.recv(4096).startswith(b"HTTP/1.1 200"), "not served once the others left"
    over.close()

def test_headers_trickling_in_hold_at_most_the_per_address_limit(h):
    """Slow headers from one address: a byte every 0.5 s keeps a connection
    alive past the idle timeout, but no more than 16 of them; the rest are
    closed at once, and /healthz from elsewhere answers all along."""
    d, port = start_with_metrics(h)
    stop = threading.Event()
    conns = [socket.create_connection(("127.0.0.1", port), timeout=3) for _ in range(PER_IP + 8)]
    request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000

    def trickle():
        for i in range(len(request)):
            for s in conns:
                try:
                    s.send(request[i:i + 1])
                except OSError:
                    pass
            if stop.wait(0.5):
                return
    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        wait_until(lambda: sum(closed_by_server(s, 0.01) for s in conns) >= 8, 3,
                   what="the connections over the limit closed")
        def healthy():
            status, took = healthz_from(port, "127.0.0.2")
            return status == 200 and took < 1
        hold_for(IDLE_TIMEOUT + 2, healthy, interval=0.5,
                 what="/healthz from elsewhere answering within 1 s")
        alive = [s for s in conns if not closed_by_server(s, 0.01)]
        assert len(alive) == PER_IP, f"{len(alive)} trickling connections held"
        reaping_goes_on(h, d, b"slow")
    finally:
        stop.set()
        t.join(5)
        for s in conns:
            s.close()


def test_an_oversized_request_is_refused_and_memory_stays_bounded(h):
    d, port = start_with_metrics(h)
    rss0 = rss_kb(d.pid)
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1000000 +
                      b"\r\n\r\n")
            reply = s.recv(4096)
        except (BrokenPipeError, ConnectionResetError):
            reply = b""
        assert reply == b"" or reply.split(b" ")[1] in (b"413", b"431", b"400"), reply[:80]
        s.close()
    rss1 = rss_kb(d.pid)
    assert rss1 - rss0 < 4096, f"RSS grew from {rss0} kB to {rss1} kB"
    assert healthz_from(port, "127.0.0.2")[0] == 200
    reaping_goes_on(h, d, b"big")

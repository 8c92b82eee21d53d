"""The fault proxy itself (faultproxy.py), against a real redis-server: each
fault does what the fault matrix relies on, and traffic is untouched
without one."""

import socket
import time

import pytest

from harness import wait_until


def raw(px, timeout=2.0):
    s = socket.create_connection(("127.0.0.1", px.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exactly(s, n):
    out = b""
    while len(out) < n:
        got = s.recv(n - len(out))
        if not got:
            raise ConnectionError(f"closed after {len(out)} of {n} bytes: {out!r}")
        out += got
    return out


def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def clients(h):
    return h.r.client_list()


def test_traffic_passes_untouched_and_is_counted(h, px):
    s = raw(px)
    value = bytes(range(256)) * 40
    s.sendall(command("SET", "k", value) + command("GET", "k"))
    assert recv_exactly(s, 5) == b"+OK\r\n"
    reply = b"$%d\r\n" % len(value) + value + b"\r\n"
    assert recv_exactly(s, len(reply)) == reply
    assert h.r.get("k") == value
    assert px.connections == 1 and px.open == 1
    assert px.bytes_down == 5 + len(reply)
    s.close()
    wait_until(lambda: px.open == 0, 5, what="the link closed with its client")


def test_latency_delays_each_direction_but_does_not_throttle_a_pipeline(h, px):
    s = raw(px)
    px.latency(0.05)                    # 100 ms round trip
    t0 = time.monotonic()
    s.sendall(command("PING"))
    assert recv_exactly(s, 7) == b"+PONG\r\n"
    one = time.monotonic() - t0
    t0 = time.monotonic()
    s.sendall(b"".join(command("INCR", "n") for _ in range(2000)))
    recv_exactly(s, sum(len(b":%d\r\n" % i) for i in range(1, 2001)))
    many = time.monotonic() - t0
    assert 0.1 <= one < 0.5, one
    assert many < 0.1 * 3, f"2000 pipelined commands took {many:.2f} s at 100 ms RTT"
    assert h.r.get("n") == b"2000"


def test_bandwidth_caps_the_bytes_a_second(h, px):
    h.r.set("big", b"x" * 100000)
    s = raw(px, timeout=10)
    px.bandwidth(200000, "down")
    t0 = time.monotonic()
    s.sendall(command("GET", "big"))
    recv_exactly(s, 100000 + len(b"$100000\r\n") + 2)
    took = time.monotonic() - t0
    assert took >= 0.45, took


def test_blackhole_keeps_both_sockets_open_and_heal_delivers_what_waited(h, px):
    s = raw(px, timeout=0.3)
    s.sendall(command("PING"))
    assert recv_exactly(s, 7) == b"+PONG\r\n"
    px.blackhole()
    s.sendall(command("SET", "during", "1"))
    with pytest.raises(socket.timeout):
        s.recv(100)
    assert h.r.get("during") is None, "nothing may pass while blackholed"
    assert px.open == 1
    px.heal()
    s.settimeout(2)
    assert recv_exactly(s, 5) == b"+OK\r\n"
    assert h.r.get("during") == b"1"


def test_pausing_replies_only_lets_commands_run(h, px):
    s = raw(px, timeout=0.3)
    px.pause("down")
    s.sendall(command("SET", "k", "v"))
    wait_until(lambda: h.r.get("k") == b"v", 5, what="the command run")
    with pytest.raises(socket.timeout):
        s.recv(100)
    px.resume("down")
    s.settimeout(2)
    assert recv_exactly(s, 5) == b"+OK\r\n"


def test_half_open_drops_the_server_side_and_tells_the_client_nothing(h, px):
    s = raw(px, timeout=0.3)
    s.sendall(command("CLIENT", "SETNAME", "through-proxy"))
    assert recv_exactly(s, 5) == b"+OK\r\n"
    assert any(c["name"] == "through-proxy" for c in clients(h))
    px.half_open()
    wait_until(lambda: not any(c["name"] == "through-proxy" for c in clients(h)), 5,
               what="Redis to see its client gone")
    s.sendall(command("SET", "after", "1"))
    with pytest.raises(socket.timeout):
        s.recv(100)                     # neither a reply nor an end of file
    assert h.r.get("after") is None


def test_reset_mid_reply_passes_n_bytes_then_resets(h, px):
    h.r.set("k", b"y" * 1000)
    s = raw(px)
    px.reset_mid_reply(3)
    s.sendall(command("GET", "k"))
    got = b""
    with pytest.raises(ConnectionResetError):
        while True:
            more = s.recv(100)
            if not more:
                raise AssertionError(f"an end of file, not a reset, after {got!r}")
            got += more
    assert got == b"$10"
    assert px.resets == 1
    s2 = raw(px)                        # once only
    s2.sendall(command("PING"))
    assert recv_exactly(s2, 7) == b"+PONG\r\n"


def test_split_sends_a_reply_byte_by_byte(h, px):
    h.r.set("k", b"z" * 300)
    s = raw(px)
    px.split(True)
    sent = px.bytes_down
    s.sendall(command("GET", "k"))
    assert recv_exactly(s, 306 + 2) == b"$300\r\n" + b"z" * 300 + b"\r\n"
    assert px.bytes_down - sent == 308
    assert px.pieces_down >= 308


def test_refuse_resets_new_connections_only(h, px):
    s = raw(px)
    s.sendall(command("PING"))
    assert recv_exactly(s, 7) == b"+PONG\r\n"      # accepted before the refusals
    px.refuse(True)
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        s2 = raw(px)
        s2.sendall(command("PING"))
        if not s2.recv(10):
            raise ConnectionResetError("end of file")
    s.sendall(command("PING"))
    assert recv_exactly(s, 7) == b"+PONG\r\n"

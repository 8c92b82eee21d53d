"""Bytes read from Redis never forge a log line or a line of -t output.

Anything that comes from Redis (IDs, the lock's value, error texts, CONFIG
values) is escaped before it is printed; the text log format also escapes
every control byte of a message, so no call site can break a line.
"""

import json
import re
import socket
import threading

import pytest

from harness import LOCK, wait_until

FORGED_CYCLE = b"info: cycle done: scanned=1 stale=1 removed=1 batches=1 duration=0.001s"
# A newline that forges a whole cycle line, a carriage return that forges a
# timestamped one over it on a terminal, an escape sequence, a backslash and
# a byte that is not UTF-8.
EVIL_HOLDER = (b"evil:1:0123456789abcdef\n" + FORGED_CYCLE +
               b"\r2030-01-01T00:00:00.000Z warn: lock released\x1b[2K \\ \xff")

TEXT_LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|info|debug): (.*)$")


def escape_id(value):
    """What common/escape.c's escape_id prints for value."""
    named = {0x5c: "\\\\", 0x0a: "\\n", 0x0d: "\\r", 0x09: "\\t"}
    return "".join(named.get(c) or (chr(c) if 0x20 <= c < 0x7f else "\\x%02x" % c)
                   for c in value)


def messages(err, fmt):
    """The message of every stderr line; fails on a line the log did not write."""
    assert "\r" not in err and "\x1b" not in err, repr(err)
    lines = err.split("\n")
    assert lines[-1] == "", "stderr must end with a newline"
    out = []
    for line in lines[:-1]:
        if fmt == "json":
            obj = json.loads(line)
            assert set(obj) == {"ts", "level", "msg"}, line
            out.append(obj["msg"])
        else:
            m = TEXT_LINE_RE.match(line)
            assert m, f"not a log line (forged?): {line!r}"
            out.append(m.group(2))
    for msg in out:
        assert not msg.startswith("cycle done"), f"forged cycle line: {msg!r}"
        assert not any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in msg), repr(msg)
    return out


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_once_standby_logs_the_holder_escaped(h, fmt):
    h.r.set(LOCK, EVIL_HOLDER, px=60000)
    rc, out, err = h.run(["-c", h.config(), "--once", "--log-format", fmt])
    assert rc == 0, err
    msgs = messages(err, fmt)
    said = [m for m in msgs if "another instance holds the lock" in m]
    assert len(said) == 1, msgs
    assert f"(holder {escape_id(EVIL_HOLDER)})" in said[0], said[0]
    assert h.lock() == EVIL_HOLDER


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_loop_standby_logs_the_holder_escaped(h, fmt):
    h.r.set(LOCK, EVIL_HOLDER, px=60000)
    d = h.start(["-c", h.config(), "--log-format", fmt], env={"POD_NAME": "standby"})
    d.wait_log(r"standby: lock held by", 10)
    d.kill()
    msgs = messages(d.stderr(), fmt)
    said = [m for m in msgs if m.startswith("standby: lock held by")]
    assert said == ["standby: lock held by " + escape_id(EVIL_HOLDER)], msgs
    assert h.lock() == EVIL_HOLDER


class FakeRedis:
    """A RESP server that answers like a Redis-compatible server or proxy whose
    error texts and CONFIG values carry control bytes.

    Redis 7 itself turns newlines in error replies into spaces and accepts only
    known letters in notify-keyspace-events, so a real redis-server cannot send
    these replies; older servers, other implementations and proxies can.
    """

    def __init__(self, path, replies):
        self.replies = replies
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.url = f"unix://{path}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self._session(conn)

    def _session(self, conn):
        buf = b""
        while True:
            cmd, buf = self._command(conn, buf)
            if cmd is None:
                return
            name = cmd[0].upper().decode()
            conn.sendall(self.replies.get(name, b"-ERR unknown command\r\n"))

    @staticmethod
    def _command(conn, buf):
        """One RESP array of bulk strings: (args, rest of buf) or (None, b"") at EOF."""
        def need(n):
            nonlocal buf
            while len(buf) < n:
                data = conn.recv(65536)
                if not data:
                    raise EOFError
                buf += data

        def line():
            nonlocal buf
            while b"\r\n" not in buf:
                need(len(buf) + 1)
            head, _, buf = buf.partition(b"\r\n")
            return head

        try:
            head = line()
            assert head[:1] == b"*", head
            args = []
            for _ in range(int(head[1:])):
                n = int(line()[1:])
                need(n + 2)
                args.append(buf[:n])
                buf = buf[n + 2:]
            return args, buf
        except (EOFError, OSError):
            return None, b""

    def close(self):
        self.sock.close()


def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


@pytest.fixture
def fake(bare):
    servers = []

    def start(replies):
        s = FakeRedis(bare.dir / f"fake{len(servers)}.sock", replies)
        servers.append(s)
        return s
    yield start
    for s in servers:
        s.close()


def stdout_lines(out):
    text = out.decode("utf-8")
    assert "\r" not in text and "\x1b" not in text, repr(text)
    return text.split("\n")


def test_check_config_escapes_config_values_and_error_texts(bare, fake):
    flags = b"Ex\n# guard probe: ok\x1b[2K"
    probe_err = b"ERR not here\n# guard probe: ok\rdone\x1b[31m"
    server = fake({
        "PING": b"+PONG\r\n",
        "CLIENT": b"+OK\r\n",
        "CONFIG": b"*2\r\n" + bulk(b"notify-keyspace-events") + bulk(flags),
        "SCARD": b"-" + probe_err + b"\r\n",
    })
    conf = bare.config({"reaper.watch_expiry": True}, url=server.url)
    rc, out, err = bare.run(["-c", conf, "-t"])
    assert rc == 0, err
    lines = stdout_lines(out)
    assert (f'# key-expiry events: notify-keyspace-events is "{escape_id(flags)}": ok'
            in lines), lines
    assert (f"# guard probe: SCARD presence:online-users: {escape_id(probe_err)}"
            in lines), lines
    assert "# guard probe: ok" not in lines, lines


def test_check_config_escapes_a_refused_handshake(bare, fake):
    refusal = b"ERR go away\n# redis unix:/x: reachable\x1b[2K"
    server = fake({"PING": b"-" + refusal + b"\r\n", "CLIENT": b"+OK\r\n"})
    rc, out, err = bare.run(["-c", bare.config(url=server.url), "-t"])
    assert rc == 0, err
    lines = stdout_lines(out)
    said = [ln for ln in lines if ln.startswith("# redis ")]
    assert len(said) == 1 and said[0].endswith(f": PING refused: {escape_id(refusal)}"), lines


def test_loop_logs_a_refused_handshake_escaped(bare, fake):
    """A Redis error text on stderr: the text log escapes it whatever the call site."""
    refusal = b"ERR go away\n" + FORGED_CYCLE + b"\x1b[2K"
    server = fake({"PING": b"-" + refusal + b"\r\n", "CLIENT": b"+OK\r\n"})
    d = bare.start(["-c", bare.config(url=server.url)])
    wait_until(lambda: "PING refused" in d.stderr(), 10, what="the refusal to be logged",
               alive=[d])
    d.kill()
    msgs = messages(d.stderr(), "text")
    assert any(escape_id(b"\n" + FORGED_CYCLE + b"\x1b") in m for m in msgs), msgs

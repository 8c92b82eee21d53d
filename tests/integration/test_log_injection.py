"""Bytes read from Redis never forge a log line or a line of -t output.

Anything that comes from Redis (IDs, the lock's value, error texts, CONFIG
values) is escaped before it is printed; the text log format also escapes
every control byte of a message, so no call site can break a line.
"""

import json
import re

import pytest

from harness import LOCK

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

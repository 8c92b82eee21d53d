"""Reaping under valgrind's memcheck: the real binary, --once and the loop with
every path on (events, the calendar, the metrics listener, odd IDs), against a
real redis-server. Any memcheck error, or a definite or indirect leak, turns
into exit status 99 and fails the test. Skipped for a sanitizer build
(valgrind cannot run one) and where valgrind is missing."""

import shutil
import signal
import subprocess

import pytest

from harness import EX_OK, binary, free_port, wait_until
from test_metrics import get

VALGRIND_ERROR = 99
ODD = [b"", b"a\nb", b"\x00\xff", b"sp ace", b"\xe2\x98\x83", b"x" * 600]


def _sanitized():
    with open(binary(), "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__ubsan_handle" in data


pytestmark = pytest.mark.skipif(shutil.which("valgrind") is None or _sanitized(),
                                reason="valgrind missing, or a sanitizer build")


def memcheck(h, args):
    return ["valgrind", "--quiet", f"--error-exitcode={VALGRIND_ERROR}", "--leak-check=full",
            "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
            f"--log-file={h.dir}/valgrind.%p.log", binary()] + list(args)


def report(h):
    return "\n".join(p.read_text(errors="replace") for p in h.dir.glob("valgrind.*.log"))


def users(h):
    live = [b"live-%d" % i for i in range(300)] + ODD[:3]
    stale = [b"stale-%d" % i for i in range(30)] + ODD[3:]
    h.rt.connect_many(live + stale)
    h.rt.crash_many(stale)
    return set(live), set(stale)


def test_once_reaps_clean_under_memcheck(h):
    live, _ = users(h)
    conf = h.config({"events.mode": "stream", "reaper.batch_size": 50})
    p = subprocess.run(memcheck(h, ["-c", str(conf), "--once"]), capture_output=True,
                       timeout=120, env=h.env())
    assert p.returncode == EX_OK, (p.returncode, p.stderr.decode(errors="replace")[-2000:],
                                   report(h))
    assert h.members() == live


def test_the_loop_reaps_and_stops_clean_under_memcheck(h):
    live, stale = users(h)
    port = free_port()
    conf = h.config({"events.mode": "publish", "reaper.batch_size": 50,
                     "reaper.track_expiry": True, "metrics.listen": f"127.0.0.1:{port}"})
    p = subprocess.Popen(memcheck(h, ["-c", str(conf)]), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=h.env())
    try:
        wait_until(lambda: h.members() == live, 60, interval=0.1, what="reaping under memcheck")
        crashed = [b"later-%d" % i for i in range(5)]
        h.rt.connect_many(crashed)
        for u in crashed:
            h.r.pexpire(h.rt.key(u), 500)
        wait_until(lambda: not set(crashed) & h.members(), 60, interval=0.1,
                   what="users crashed later reaped under memcheck")
        assert get(port, "/metrics", timeout=10)[0] == 200
        p.send_signal(signal.SIGTERM)
        rc = p.wait(60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read().decode(errors="replace")
    assert rc == EX_OK, (rc, err[-2000:], report(h))

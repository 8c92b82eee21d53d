"""--dry-run: report, never write; works for a user that may only read."""

import signal

from harness import DRYRUN_EXACT_RE, DRYRUN_RE, LOCK, wait_until

WRITE_COMMANDS = ("set", "srem", "del", "unlink", "pexpire", "expire", "eval", "evalsha",
                  "eval_ro", "evalsha_ro", "script|load", "publish", "xadd", "sadd", "fcall")

NEWLINE_ID = b"new\nline"


def populate(h):
    live = [b"live-%d" % i for i in range(40)]
    stale = [b"stale-%d" % i for i in range(25)] + [NEWLINE_ID, b"with space"]
    h.rt.connect_many(live + stale)
    h.rt.crash_many(stale)
    return set(live), set(stale)


def assert_no_writes(h):
    calls = h.commandstats()
    used = {c: calls[c] for c in WRITE_COMMANDS if calls.get(c)}
    assert not used, f"dry-run sent write commands: {used}"


def test_dry_run_once_changes_nothing(h):
    live, stale = populate(h)
    before = h.digest()
    h.r.config_resetstat()
    rc, out, err = h.run(["-c", h.config({"reaper.batch_size": 5}), "--dry-run", "--once"])
    assert rc == 0, err
    assert h.digest() == before, "dry-run changed the data set"
    assert h.r.exists(LOCK) == 0, "dry-run took the leader lock"
    assert h.members() == live | stale
    assert_no_writes(h)


def test_dry_run_prints_each_stale_id_once(h):
    live, stale = populate(h)
    rc, out, err = h.run(["-c", h.config({"reaper.batch_size": 5}), "--dry-run", "--once"])
    assert rc == 0, err
    lines = out.split(b"\n")
    assert lines[-1] == b"", "stdout must end with a newline"
    lines = lines[:-1]
    assert len(lines) == len(stale), f"expected {len(stale)} lines, got {len(lines)}: {lines}"
    for i in range(25):
        assert lines.count(b"stale-%d" % i) == 1, f"stale-{i} not printed exactly once"
    for uid in live:
        assert uid not in lines, f"live user {uid!r} reported as stale"


def test_dry_run_escapes_ids(h):
    live, stale = populate(h)
    rc, out, err = h.run(["-c", h.config(), "--dry-run", "--once"])
    assert rc == 0, err
    assert NEWLINE_ID not in out, "an ID with a newline was printed raw"
    lines = out.split(b"\n")[:-1]
    escaped = [l for l in lines if l.startswith(b"new") and l.endswith(b"line")]
    assert len(escaped) == 1, f"the newline ID should be printed once, escaped, on one line: {lines}"
    assert b"new" not in lines and b"line" not in lines


def test_dry_run_summary_on_stderr(h):
    live, stale = populate(h)
    rc, out, err = h.run(["-c", h.config(), "--dry-run", "--once"])
    assert rc == 0, err
    m = DRYRUN_RE.search(err)
    assert m, f"no dry-run summary on stderr:\n{err}"
    assert int(m.group("scanned")) == len(live) + len(stale)
    assert int(m.group("stale")) == len(stale)
    assert b"dry-run" not in out and b"scanned" not in out, "the summary belongs on stderr"
    assert DRYRUN_EXACT_RE.search(err), \
        f"the summary must read 'dry-run: scanned=N stale=N (nothing removed)':\n{err}"


def readonly_user(h):
    h.r.execute_command("ACL", "SETUSER", "ro", "on", ">ropw", "~*", "&*", "+@read", "+ping")
    return "unix://ro:ropw@" + h.redis.sock


def test_dry_run_as_read_only_acl_user(h):
    live, stale = populate(h)
    url = readonly_user(h)
    before = h.digest()
    rc, out, err = h.run(["-c", h.config(url=url), "--dry-run", "--once"])
    assert rc == 0, err
    assert h.digest() == before
    assert len(out.split(b"\n")[:-1]) == len(stale)
    assert b"stale-0\n" in out


def test_dry_run_as_read_only_user_from_settings(h):
    live, stale = populate(h)
    readonly_user(h)
    conf = h.config({"redis.username": "ro", "redis.password": "ropw"})
    before = h.digest()
    rc, out, err = h.run(["-c", conf, "--dry-run", "--once"])
    assert rc == 0, err
    assert h.digest() == before
    assert len(out.split(b"\n")[:-1]) == len(stale)


def test_real_run_as_read_only_user_fails_and_deletes_nothing(h):
    live, stale = populate(h)
    url = readonly_user(h)
    before = h.digest()
    rc, out, err = h.run(["-c", h.config(url=url), "--once"])
    assert rc != 0, f"a run that cannot write must not report success:\n{err}"
    assert h.digest() == before
    assert h.members() == live | stale


def test_shadow_mode_loop_never_writes(h):
    live, stale = populate(h)
    before = h.digest()
    h.r.config_resetstat()
    d = h.start(["-c", h.config(), "--dry-run"], env={"POD_NAME": "shadow"})
    wait_until(lambda: len(DRYRUN_RE.findall(d.stderr())) >= 2, 10, what="two dry-run cycles")
    d.signal(signal.SIGTERM)
    assert d.wait_exit(5) == 0
    assert h.digest() == before
    assert_no_writes(h)
    lines = d.stdout().split(b"\n")[:-1]
    # Each cycle prints each stale ID once.
    assert lines.count(b"stale-0") >= 2, lines
    assert b"live-0" not in lines


def test_dry_run_reports_even_when_another_instance_leads(h):
    live, stale = populate(h)
    h.r.set(LOCK, b"leader-pod:1:0123456789abcdef", px=60000)
    before = h.digest()
    rc, out, err = h.run(["-c", h.config(), "--dry-run", "--once"])
    assert rc == 0, err
    assert len(out.split(b"\n")[:-1]) == len(stale), "shadow mode reports whoever leads"
    assert h.digest() == before

"""The stale-ratio guard: a wrong key template must not wipe everyone offline."""

import re

from harness import EX_TEMPFAIL, hold_for

WRONG = {"keys.socket_suffix": ":wrong"}


def everyone_live(h, n=200):
    users = {b"user-%d" % i for i in range(n)}
    h.rt.connect_many(sorted(users))
    return users


def test_wrong_suffix_trips_the_guard(h):
    users = everyone_live(h)
    rc, out, err = h.run(["-c", h.config(WRONG), "--once"])
    assert rc == EX_TEMPFAIL, err
    assert h.members() == users, "the guard must stop every removal"
    assert "stale-ratio guard" in err, err
    assert re.search(r"(?i)(prefix|suffix)", err), "the message should name the likely cause"


def test_guard_disabled_removes(h):
    # Same setup, guard off: everything goes, so the guard is what stopped it above.
    everyone_live(h)
    rc, out, err = h.run(["-c", h.config({**WRONG, "reaper.max_stale_ratio": 1.0}), "--once"])
    assert rc == 0, err
    assert h.members() == set()


def test_guard_ignores_small_sets(h):
    everyone_live(h, 50)
    rc, out, err = h.run(["-c", h.config(WRONG), "--once"])
    assert rc == 0, err
    assert h.members() == set(), "below guard_min_users the guard does not apply"


def test_guard_min_users_is_configurable(h):
    users = everyone_live(h, 50)
    rc, out, err = h.run(["-c", h.config({**WRONG, "reaper.guard_min_users": 10}), "--once"])
    assert rc == EX_TEMPFAIL, err
    assert h.members() == users


def test_ratio_below_threshold_reaps(h):
    users = everyone_live(h)
    stale = {b"user-%d" % i for i in range(150)}
    h.rt.crash_many(stale)
    rc, out, err = h.run(["-c", h.config(), "--once"])
    assert rc == 0, err
    assert h.members() == users - stale


def test_ratio_above_configured_threshold(h):
    users = everyone_live(h)
    h.rt.crash_many({b"user-%d" % i for i in range(150)})
    rc, out, err = h.run(["-c", h.config({"reaper.max_stale_ratio": 0.5}), "--once"])
    assert rc == EX_TEMPFAIL, err
    assert h.members() == users


def test_guard_in_dry_run(h):
    users = everyone_live(h)
    before = h.digest()
    rc, out, err = h.run(["-c", h.config(WRONG), "--dry-run", "--once"])
    assert rc == EX_TEMPFAIL, err
    assert out == b"", "a refused dry run prints no IDs"
    assert "stale-ratio guard" in err
    assert h.digest() == before
    assert h.members() == users


def test_guard_in_loop_keeps_running_and_removes_nothing(h):
    users = everyone_live(h)
    d = h.start(["-c", h.config(WRONG)], env={"POD_NAME": "a"})
    d.wait_log(r"stale-ratio guard", 10)
    d.wait_log(r"stale-ratio guard", 10, after=1)
    hold_for(0.5, lambda: d.alive() and h.members() == users, what="no removal while guarded")


def test_check_config_reports_probe(h):
    everyone_live(h)
    h.rt.crash_many({b"user-%d" % i for i in range(150)})
    rc, out, err = h.run(["-c", h.config(), "--check-config"])
    assert rc == 0, err
    lines = out.decode().splitlines()
    # What it saw: a set this small is sampled whole, 150 of its 200 members stale ...
    assert ("# guard probe: online set presence:online-users has 200 members; "
            "sampled 200, 150 without a socket set (75.0%)") in lines, lines
    # ... which is under max_stale_ratio (0.9), so a cycle would go ahead.
    assert lines[-1] == "# guard probe: ok", lines
    assert len(h.members()) == 200, "--check-config must not remove anything"


def test_check_config_probe_with_wrong_suffix_warns(h):
    everyone_live(h)
    rc, out, err = h.run(["-c", h.config(WRONG), "--check-config"])
    assert rc == 0, err
    text = out.decode(errors="replace") + err
    assert "stale-ratio guard" in text or re.search(r"(?i)guard.*(trip|refuse|would)", text), text
    assert len(h.members()) == 200

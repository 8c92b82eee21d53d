"""presence-reaper --status: read-only, for the one online set or each shard.

The leader keeps its last pass's summary in a hash next to the lock (status.lua,
fenced by the lock, living three intervals); --status reads it with the lock,
the online set and a guard sample, prints text or JSON and exits as a Nagios
plugin does: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""

import json
import re
import signal

import pytest

from harness import EX_CONFIG, EX_USAGE, REPO, closed_port, wait_until
from test_acl import STATUS_ONLY, as_user, acl_lines, create_user, drop

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS_KEY = b"{presence:reaper:leader}:status"
FAST = {"reaper.interval": 0.5, "leader.lease": 2.0, "leader.renew": 0.5}
LIVE = [b"live-%03d" % i for i in range(150)]


def status(h, conf, fmt=None):
    """(exit status, stdout text) of --status."""
    rc, out, err = h.run(["-c", conf, "--status"] + (["--format", fmt] if fmt else []))
    assert "sanitizer" not in err.lower(), err
    return rc, out.decode()


def leading(h, settings=None, pod="st-a"):
    """A leader that has finished a pass (its summary is there)."""
    d = h.start(["-c", h.config(dict(FAST, **(settings or {})))], env={"POD_NAME": pod},
                name=pod)
    wait_until(lambda: h.r.exists(STATUS_KEY), 10, what="the first summary", alive=[d])
    return d


def test_a_healthy_group_is_ok_in_text_and_json(h):
    h.rt.connect_many(LIVE)
    a = leading(h)
    b = h.start(["-c", h.config(FAST)], env={"POD_NAME": "st-b"}, name="st-b")
    b.wait_log(r"standby: lock held by st-a", 10)
    rc, out = status(h, h.config(FAST))
    assert rc == OK, out
    lines = out.splitlines()
    assert re.match(r"presence-reaper OK: leader st-a:\d+:[0-9a-f]{16}, last pass ok [\d.]+ s "
                    r"ago$", lines[0]), out
    assert re.search(r"(?m)^lock presence:reaper:leader: held by st-a:.*lease [\d.]+ s left$", out)
    assert re.search(r"(?m)^last pass: ok, [\d.]+ s ago \(interval 0.5 s\): scanned 150, "
                     r"stale 0, removed 0, ghosts 0", out), out
    assert "online set presence:online-users: 150 members" in out
    rc, out = status(h, h.config(FAST), "json")
    doc = json.loads(out)
    assert rc == OK and doc["state"] == "OK" and doc["code"] == 0, doc
    s = doc["sets"][0]
    assert s["shard"] is None and s["reasons"] == [] and s["error"] is None
    assert s["lock"]["holder"].startswith("st-a:") and 0 < s["lock"]["lease_ms"] <= 2000
    assert s["last_pass"]["result"] == "ok" and s["last_pass"]["scanned"] == 150
    assert 0 <= s["last_pass"]["age_ms"] < 2000 and s["online_set"]["members"] == 150
    assert s["sample"]["sampled"] == 150 and s["sample"]["stale"] == 0
    assert a.alive() and b.alive()


def test_the_guard_tripped_is_critical(h):
    h.rt.connect_many(LIVE)
    h.rt.crash_many(LIVE[:140])
    d = leading(h)
    d.wait_log(r"stale-ratio guard", 10)
    rc, out = status(h, h.config(FAST), "json")
    doc = json.loads(out)
    assert rc == CRITICAL and doc["state"] == "CRITICAL", doc
    texts = [r["text"] for r in doc["sets"][0]["reasons"]]
    assert "the stale-ratio guard stopped the last pass" in texts, texts
    assert any(t.startswith("the guard's sample is over max_stale_ratio: 140 of 150") for t in texts)
    assert doc["sets"][0]["last_pass"]["result"] == "guard"
    assert h.members() == set(LIVE), "the guard removes nobody"


def test_a_group_without_a_leader_is_critical(h):
    h.rt.connect_many(LIVE)
    d = leading(h)
    d.proc.kill()
    d.wait_exit(5)
    wait_until(lambda: h.lock() is None, 5, what="the lease to run out")
    rc, out = status(h, h.config(FAST))
    assert rc == CRITICAL, out
    assert out.startswith("presence-reaper CRITICAL: no leader: the lock presence:reaper:leader "
                          "is free"), out
    assert "lock presence:reaper:leader: free" in out


def test_no_pass_for_two_intervals_warns_and_three_is_critical(h):
    """A leader stopped (SIGSTOP) with a long lease: still the holder, but its
    passes stop. Two intervals after the last: WARNING; after three the
    summary has expired (it lives three intervals and a second): CRITICAL."""
    h.rt.connect_many(LIVE)
    settings = {"reaper.interval": 1.0, "leader.lease": 30, "leader.renew": 5}
    d = leading(h, settings)
    d.signal(signal.SIGSTOP)
    try:
        conf = h.config(settings)
        rc, out = wait_until(lambda: (r := status(h, conf))[0] != OK and r, 5,
                             what="the status to leave OK")
        assert rc == WARNING and re.search(r"no pass for [\d.]+ s \(2 intervals of 1 s\)", out), out
        rc, out = wait_until(lambda: (r := status(h, conf))[0] == CRITICAL and r, 5,
                             what="three intervals without a pass")
        assert re.search(r"no pass for [\d.]+ s \(3 intervals of 1 s\)|is gone", out), out
        rc, out = wait_until(lambda: (r := status(h, conf))[0] == CRITICAL and "gone" in r[1]
                             and r, 5, what="the summary to expire")
        assert "no pass finished in 3 intervals ({presence:reaper:leader}:status is gone)" in out
        assert re.search(r"(?m)^lock presence:reaper:leader: held by st-a:", out), out
    finally:
        d.signal(signal.SIGCONT)


def test_ghosts_warn(h):
    h.rt.connect_many(LIVE)
    h.r.persist(h.rt.key(LIVE[0]))
    leading(h)
    rc, out = status(h, h.config(FAST))
    assert rc == WARNING, out
    assert re.search(r"^presence-reaper WARNING: 1 socket sets without a TTL \(ghosts\)$",
                     out.splitlines()[0]), out


def test_watch_expiry_without_expiry_events_warns(h):
    h.rt.connect_many(LIVE)
    h.r.config_set("notify-keyspace-events", "")
    settings = {"reaper.watch_expiry": True}
    leading(h, settings)
    rc, out = status(h, h.config(dict(FAST, **settings)))
    assert rc == WARNING, out
    assert 'reaper.watch_expiry gets no events: notify-keyspace-events is ""' in out
    h.r.config_set("notify-keyspace-events", "Ex")
    rc, out = status(h, h.config(dict(FAST, **settings)))
    assert rc == OK and 'keyspace notifications: "xE"' in out, out


def test_redis_unreachable_is_unknown(h):
    conf = h.config(FAST, url=f"redis://127.0.0.1:{closed_port()}")
    rc, out = status(h, conf)
    assert rc == UNKNOWN, out
    assert re.match(r"presence-reaper UNKNOWN: .*refused", out), out
    rc, out = status(h, conf, "json")
    doc = json.loads(out)
    assert rc == UNKNOWN and doc["sets"][0]["error"], doc


def test_a_status_key_of_another_type(h):
    """The leader says once that it cannot keep its summary and reaps on;
    --status says what is in the way (UNKNOWN)."""
    h.rt.connect_many(LIVE)
    h.r.rpush(STATUS_KEY, b"x")
    d = h.start(["-c", h.config(FAST)], env={"POD_NAME": "st-w"}, name="st-w")
    d.wait_cycles(3, 10)
    assert d.count(r"summary for --status was not kept in \{presence:reaper:leader\}:status: "
                   r".*WRONGTYPE the status key holds a list") == 1, d.stderr()
    h.rt.crash_many([LIVE[0]])
    wait_until(lambda: LIVE[0] not in h.members(), 10, what="reaping to go on", alive=[d])
    rc, out = status(h, h.config(FAST))
    assert rc == UNKNOWN and "WRONGTYPE" in out, out
    assert h.r.lrange(STATUS_KEY, 0, -1) == [b"x"]


def status_script(h):
    return h.r.register_script((REPO / "reaper" / "lua" / "status.lua").read_bytes())


def test_the_summary_is_fenced_by_the_lock_and_checks_its_type_first(h):
    script = status_script(h)
    keys = [b"presence:reaper:leader", STATUS_KEY]
    h.r.set(keys[0], b"theirs")
    assert script(keys=keys, args=[b"mine", 60000, b"result", b"ok"]) == 0
    assert not h.r.exists(STATUS_KEY)
    h.r.set(keys[0], b"mine")
    assert script(keys=keys, args=[b"mine", 60000, b"result", b"ok"]) == 1
    assert h.r.hget(STATUS_KEY, b"result") == b"ok" and 0 < h.r.pttl(STATUS_KEY) <= 60000
    h.r.delete(STATUS_KEY)
    h.r.sadd(STATUS_KEY, b"a")
    with pytest.raises(Exception, match="WRONGTYPE the status key holds a set"):
        script(keys=keys, args=[b"mine", 60000, b"result", b"ok"])
    assert h.r.smembers(STATUS_KEY) == {b"a"} and h.r.ttl(STATUS_KEY) == -1


def test_each_shard_has_its_line(h):
    shards = {"keys.shards": 3, "keys.online_set": "presence:<shard>:online-users",
              "leader.key": "presence:<shard>:reaper-lock"}
    conf = h.config(dict(FAST, **shards))
    d = h.start(["-c", conf], env={"POD_NAME": "st-s"}, name="st-s")
    wait_until(lambda: all(h.r.exists(b"{presence:%d:reaper-lock}:status" % i)
                           for i in range(3)), 15, what="a summary for each shard", alive=[d])
    rc, out = status(h, conf)
    assert rc == OK, out
    lines = out.splitlines()
    assert lines[0] == "presence-reaper OK: 3 shards: 3 OK, 0 WARNING, 0 CRITICAL, 0 UNKNOWN"
    for i in range(3):
        assert re.match(rf"shard {i} OK; lock held by st-s:.*; last pass ok [\d.]+ s ago, "
                        r"removed 0; online 0; sample 0 of 0 stale, 0 ghosts$", lines[1 + i]), out
    d.kill()
    rc, out = status(h, conf, "json")
    doc = json.loads(out)
    assert rc == CRITICAL and [s["shard"] for s in doc["sets"]] == ["0", "1", "2"], doc
    assert all(s["state"] == "CRITICAL" and s["lock"]["holder"] is None for s in doc["sets"])


def test_the_read_only_user_runs_it(h):
    h.rt.connect_many(LIVE)
    leading(h)
    create_user(h, acl_lines(h)["acl-dry-run"])
    rc, out = status(h, as_user(h, FAST))
    assert rc == OK, out


@pytest.mark.parametrize("rule", STATUS_ONLY)
def test_without_one_permission_the_status_is_unknown_naming_it(h, rule):
    h.rt.connect_many(LIVE)
    leading(h)
    drop(h, acl_lines(h)["acl-dry-run"], rule)
    rc, out = status(h, as_user(h, FAST))
    assert rc == UNKNOWN and "NOPERM" in out, out


@pytest.mark.parametrize("args", [["--format", "json"], ["--status", "--once"],
                                  ["--status", "--dry-run"], ["--status", "--format", "xml"]])
def test_usage_errors(bare, args):
    rc, out, err = bare.run(args)
    assert rc == EX_USAGE, err
    assert re.search(r"--format|--status", err), err


def test_a_configuration_error_is_78(bare, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("reaper = { interval = -1; };\n")
    rc, out, err = bare.run(["-c", str(conf), "--status"])
    assert rc == EX_CONFIG and out == b"", err

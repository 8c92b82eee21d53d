"""The least-privilege ACL user (presence-reaper.conf(5), ACL).

-t prints the ACL SETUSER line for the configuration ("# acl: ") and a
read-only one for --dry-run ("# acl-dry-run: "). Created as an operator
would, by pasting the line into redis-cli, the user runs every mode: the
loop, --once, --dry-run, events in both modes, reaper.watch_expiry; and the
server's ACL LOG shows that nothing the reaper sent was refused. Without any
one of the line's permissions --once exits 78 with the refused command named
and nothing removed; the loop says so once and reaps nothing until the
permission is back.
"""

import re
import subprocess

import pytest

from harness import EX_CONFIG, EX_OK, REPO, Realtime, errorstat, logged, wait_until
from test_sentinel import DATA_PW, SERVICE, cl, cluster, run_conf, seed  # noqa: F401

PW = "acl-test-pw"
USER = "presence-reaper"        # the placeholder of a configuration without a user
LIVE = [b"live-%03d" % i for i in range(150)]   # above guard_min_users: the guard samples
STALE = [b"stale-%d" % i for i in range(2)]
CHANNEL = b"presence:events"
STREAM = b"presence:events"
DEFAULT_LINE = (
    "ACL SETUSER presence-reaper reset on >PASSWORD resetchannels +ping +client|setname "
    "+type +scard +srandmember +sscan +exists +pttl +set +get +evalsha +script|load "
    "+pexpire +del +srem +hset +time ~presence:online-users ~presence:reaper:leader "
    "~{presence:reaper:leader}:status ~presence:user:*:sockets")
DEFAULT_DRY_RUN_LINE = (
    "ACL SETUSER presence-reaper reset on >PASSWORD resetchannels +ping +client|setname "
    "+type +scard +srandmember +sscan +exists +pttl +get +time +hgetall "
    "%R~presence:online-users %R~presence:reaper:leader %R~{presence:reaper:leader}:status "
    "%R~presence:user:*:sockets")
# What only the last pass's summary needs: the leader's status.lua (a refusal
# is said, and reaping goes on), and --status's reads.
SUMMARY_ONLY = ("+hset", "~{presence:reaper:leader}:status")
STATUS_ONLY = ("+get", "+time", "+hgetall", "%R~presence:reaper:leader",
               "%R~{presence:reaper:leader}:status")


@pytest.fixture
def w(h):
    """150 users online and 2 stale ones; an empty ACL LOG."""
    h.rt.connect_many(LIVE + STALE)
    h.rt.crash_many(STALE)
    h.r.execute_command("ACL", "LOG", "RESET")
    return h


def acl_lines(h, settings=None, status=EX_OK):
    """-t's two lines for these settings: {"acl": ..., "acl-dry-run": ...}."""
    rc, out, err = h.run(["-c", h.config(settings), "-t"])
    assert rc == status, err
    found = dict(re.findall(r"(?m)^# (acl|acl-dry-run): (ACL SETUSER .*)$", out.decode()))
    assert set(found) == {"acl", "acl-dry-run"}, out
    return found


def create_user(h, line, server=None):
    """Run the line as an operator does: PASSWORD replaced, pasted into redis-cli
    (on the test's server, or with the redis-cli arguments in server)."""
    assert ">PASSWORD " in line, line
    text = line.replace(">PASSWORD ", f">{PW} ", 1) + "\n"
    p = subprocess.run(["redis-cli"] + (server or ["-s", h.redis.sock]), input=text.encode(),
                       capture_output=True, timeout=10)
    assert p.returncode == 0 and p.stdout.strip() == b"OK", (line, p)


def as_user(h, settings=None, user=USER):
    """A config that connects as the ACL user."""
    return h.config(settings, url=f"unix://{user}:{PW}@{h.redis.sock}")


def refused(h):
    """What the server refused this test (ACL LOG): [(reason, object), ...]."""
    return [(e["reason"], e["object"]) for e in h.r.acl_log()]


def tokens(line):
    """The permission rules of a line (after the user name): plain splitting is
    enough for the keys of these tests, which need no quoting."""
    assert '"' not in line, line
    return line.split()[3:]


def drop(h, line, rule):
    """Create the user without one rule of the line."""
    rules = tokens(line)
    assert rule in rules, (rule, line)
    kept = [r for r in rules if r != rule]
    create_user(h, " ".join(["ACL", "SETUSER", USER] + kept))


# --- the lines -------------------------------------------------------------

def test_check_config_prints_the_documented_lines_for_the_default_keys(h):
    lines = acl_lines(h)
    assert lines == {"acl": DEFAULT_LINE, "acl-dry-run": DEFAULT_DRY_RUN_LINE}
    readme = (REPO / "README.md").read_text()
    man5 = ((REPO / "man" / "presence-reaper.conf.5").read_text()
            .replace("\\-", "-").replace("\\e", "\\").replace("\\&", ""))
    for where, text in (("README.md", readme), ("presence-reaper.conf.5", man5)):
        flat = re.sub(r"\s*\\?\n\s*", " ", text)
        assert DEFAULT_LINE in flat, f"{where} does not show the default line"
        assert DEFAULT_DRY_RUN_LINE in flat, f"{where} does not show the dry-run line"


def test_lines_follow_the_configuration(h):
    lines = acl_lines(h, {"redis.username": "chat-reaper", "redis.db": 3,
                          "events.mode": "publish", "events.channel": "chat:gone",
                          "reaper.watch_expiry": True, "keys.online_set": "chat:online"},
                      status=EX_CONFIG)     # no such user yet: AUTH fails
    acl = lines["acl"]
    assert acl.startswith("ACL SETUSER chat-reaper reset on >PASSWORD resetchannels "), acl
    for rule in ("+select", "+time", "+publish", "+subscribe", "~chat:online", "&chat:gone",
                 "&__keyevent@3__:expired"):
        assert rule in acl.split(), (rule, acl)
    assert "+xadd" not in acl.split() and "config" not in acl, acl
    ro = lines["acl-dry-run"].split()
    assert "+select" in ro and "%R~chat:online" in ro, ro
    assert not [r for r in ro if r[0] in "&~" or r in ("+srem", "+evalsha", "+set")], ro


def test_check_config_never_prints_the_password(h):
    h.r.execute_command("ACL", "SETUSER", "who", "on", ">secret-in-url", "+@all", "~*")
    rc, out, err = h.run(["-c", h.config(url=f"unix://who:secret-in-url@{h.redis.sock}"),
                          "-t"])
    assert rc == EX_OK, err
    assert b"# acl: ACL SETUSER who reset on >PASSWORD " in out, out
    assert b"secret-in-url" not in out and "secret-in-url" not in err


def test_odd_key_names_are_escaped_so_redis_cli_and_redis_read_them_back(h):
    keys = {"keys.online_set": "on line:*[1]", "keys.socket_prefix": "u?\\",
            "keys.socket_suffix": ' "s'}
    rt = Realtime(h.r, online=b"on line:*[1]", prefix=b"u?\\", suffix=b' "s')
    rt.connect_many(LIVE + STALE)
    rt.crash_many(STALE)
    create_user(h, acl_lines(h, keys)["acl"])
    rc, out, err = h.run(["-c", as_user(h, keys), "--once"])
    assert rc == EX_OK, err
    assert rt.members() == set(LIVE)
    assert refused(h) == []
    # The patterns match these keys, not their neighbours.
    u = h.redis.client(username=USER, password=PW)
    with pytest.raises(Exception, match="no permissions"):
        u.scard(b"on line:x[1]")
    with pytest.raises(Exception, match="no permissions"):
        u.pttl(b"uX\\id \"s")


# --- every mode works as that user ------------------------------------------

def test_once_and_the_loop_as_the_user(w):
    create_user(w, acl_lines(w)["acl"])
    rc, out, err = w.run(["-c", as_user(w), "--once"])
    assert rc == EX_OK, err
    assert w.members() == set(LIVE)
    assert w.lock() is None, "--once releases the lock"

    w.rt.connect_many(STALE)
    w.rt.crash_many(STALE)
    d = w.start(["-c", as_user(w)], env={"POD_NAME": "acl-loop"})
    d.wait_log(r"became leader", 10)
    wait_until(lambda: w.members() == set(LIVE), 10, what="the loop to reap", alive=[d])
    d.wait_cycles(2, 10)
    assert refused(w) == [], "the line must cover every command the reaper sends"
    assert not logged(d, "(warn|error)", ""), d.stderr()


def test_dry_run_as_the_read_only_user(w):
    create_user(w, acl_lines(w)["acl-dry-run"])
    rc, out, err = w.run(["-c", as_user(w), "--dry-run", "--once"])
    assert rc == EX_OK, err
    assert sorted(out.split()) == sorted(STALE)
    d = w.start(["-c", as_user(w), "--dry-run"], env={"POD_NAME": "acl-shadow"})
    d.wait_log(r"dry-run: scanned=152 stale=2", 10)
    rc, out, err = w.run(["-c", as_user(w), "-t"])
    assert rc == EX_OK and b"NOPERM" not in out, out
    assert refused(w) == []
    assert w.members() == set(LIVE + STALE)


def test_the_read_only_user_cannot_remove_anything(w):
    create_user(w, acl_lines(w)["acl-dry-run"])
    rc, out, err = w.run(["-c", as_user(w), "--once"])
    assert rc == EX_CONFIG, err
    assert re.search(r"error: .*NOPERM", err), err
    assert w.members() == set(LIVE + STALE) and w.lock() is None


def test_publish_events_as_the_user(w):
    settings = {"events.mode": "publish"}
    create_user(w, acl_lines(w, settings)["acl"])
    sub = w.r.pubsub()
    sub.subscribe(CHANNEL)
    wait_until(lambda: (sub.get_message(timeout=0.1) or {}).get("type") == "subscribe", 5,
               what="the test's subscription")
    rc, out, err = w.run(["-c", as_user(w, settings), "--once"])
    assert rc == EX_OK, err
    got = []
    wait_until(lambda: got.extend(m for m in [sub.get_message(timeout=0.1)] if m) or
               len(got) >= 2, 5, what="two events")
    assert sorted(re.search(rb'"user_id":"([^"]*)"', m["data"]).group(1) for m in got) == STALE
    assert w.members() == set(LIVE) and refused(w) == []
    sub.close()


def test_stream_events_as_the_user(w):
    settings = {"events.mode": "stream"}
    create_user(w, acl_lines(w, settings)["acl"])
    rc, out, err = w.run(["-c", as_user(w, settings), "--once"])
    assert rc == EX_OK, err
    entries = w.r.xrange(STREAM)
    assert sorted(e[1][b"user_id"] for e in entries) == STALE
    assert w.members() == set(LIVE) and refused(w) == []


def test_watch_expiry_as_the_user(w):
    """The line has no CONFIG: the operator sets notify-keyspace-events on the
    server; the reaper says at info that it cannot read it, and watches."""
    w.r.config_set("notify-keyspace-events", "Ex")
    settings = {"reaper.watch_expiry": True, "reaper.interval": 30}
    create_user(w, acl_lines(w, settings)["acl"])
    w.r.execute_command("ACL", "LOG", "RESET")
    d = w.start(["-c", as_user(w, settings)], env={"POD_NAME": "acl-watch"})
    d.wait_log(r"watching key expiry on __keyevent@0__:expired", 10)
    wait_until(lambda: len(d.cycles()) >= 1, 10, what="the first pass", alive=[d])
    w.rt.connect(b"crash")
    w.r.pexpire(w.rt.key(b"crash"), 100)
    wait_until(lambda: b"crash" not in w.members(), 5, what="event-driven reaping", alive=[d])
    assert len(d.cycles()) == 1, "the pass must not be what reaped it"
    assert logged(d, "info", r"may not read notify-keyspace-events"), d.stderr()
    assert not logged(d, "(warn|error)", ""), d.stderr()
    assert {obj for _, obj in refused(w)} == {"config|get"}, refused(w)


# --- without any one permission: exit 78, the command named, nothing removed --

def _named(rule):
    """What the error line must name for a rule: the command, key or channel."""
    if rule[0] in "~&":
        return re.escape(rule[1:])
    return re.escape(rule[1:].split("|")[0])


# The rules whose loss --once meets, by configuration. +client|setname is
# tested apart (its refusal is ignored), +role with Sentinel.
ONCE_CASES = [
    ({"events.mode": "publish"}, rule) for rule in
    DEFAULT_LINE.split()[7:] + ["+publish", "&presence:events"]
    if rule != "+client|setname" and rule not in SUMMARY_ONLY
] + [({"events.mode": "stream"}, "+xadd"), ({"events.mode": "stream"}, "~presence:events")]


@pytest.mark.parametrize("settings,rule", ONCE_CASES,
                         ids=[f"{s['events.mode']}:{r}" for s, r in ONCE_CASES])
def test_once_without_one_permission_exits_78_naming_it(w, settings, rule):
    line = acl_lines(w, settings)["acl"]
    sub = w.r.pubsub()
    sub.subscribe(CHANNEL)
    drop(w, line, rule)
    rc, out, err = w.run(["-c", as_user(w, settings), "--once"])
    assert rc == EX_CONFIG, err
    assert re.search(r"(?i)error: .*%s.*NOPERM|error: .*NOPERM.*%s" % (_named(rule),
                                                                      _named(rule)), err), err
    assert w.members() == set(LIVE + STALE), "nothing may be removed"
    assert w.lock() is None
    assert not w.r.exists(STREAM)
    assert [m for m in iter(lambda: sub.get_message(timeout=0.05), None)
            if m["type"] == "message"] == []
    sub.close()


DRY_RUN_CASES = DEFAULT_DRY_RUN_LINE.split()[7:]


# +type: only -t sends it as the read-only user (tested below).
@pytest.mark.parametrize("rule", [r for r in DRY_RUN_CASES if r not in ("+client|setname",
                                                                        "+type") + STATUS_ONLY])
def test_dry_run_without_one_permission_exits_78_naming_it(w, rule):
    drop(w, acl_lines(w)["acl-dry-run"], rule)
    rc, out, err = w.run(["-c", as_user(w), "--dry-run", "--once"])
    assert rc == EX_CONFIG, err
    named = re.escape(rule.split("~", 1)[1]) if "~" in rule else _named(rule)
    assert re.search(r"(?i)error: .*%s.*NOPERM" % named, err), err
    assert out == b"", "no IDs from a pass that could not finish"


def test_type_is_what_check_config_needs_from_the_read_only_user(w):
    drop(w, acl_lines(w)["acl-dry-run"], "+type")
    rc, out, err = w.run(["-c", as_user(w), "-t"])
    assert rc == EX_OK, err
    assert re.search(rb"(?m)^# keys: TYPE presence:online-users: NOPERM", out), out


@pytest.mark.parametrize("rule", SUMMARY_ONLY)
def test_without_a_summary_permission_once_reaps_and_says_so(w, rule):
    """Only the last pass's summary (status.lua) needs the rule: --once reaps,
    exits 0, and says once that it kept no summary for --status, and why."""
    drop(w, acl_lines(w)["acl"], rule)
    rc, out, err = w.run(["-c", as_user(w), "--once"])
    assert rc == EX_OK, err
    assert w.members() == set(LIVE)
    # Redis 7.0 refuses a command inside a script without naming it.
    assert len(re.findall(r"warn: the pass's summary for --status was not kept in "
                          r"\{presence:reaper:leader\}:status: EVALSHA status script: (NOPERM|"
                          r"ERR The user executing the script can't run this command).*"
                          r"\(reaping goes on\)", err)) == 1, err
    assert not w.r.exists(b"{presence:reaper:leader}:status")


def test_without_client_setname_it_works_unnamed(w):
    drop(w, acl_lines(w)["acl"], "+client|setname")
    rc, out, err = w.run(["-c", as_user(w), "--once"])
    assert rc == EX_OK, err
    assert w.members() == set(LIVE)
    assert {obj for _, obj in refused(w)} == {"client|setname"}


def test_loop_without_a_permission_mid_run_removes_nothing_until_it_is_back(w):
    """The leader had every permission; then PUBLISH is taken away. The reap
    script checks before its first write, so no user is removed without its
    event, however often the pass tries; given back, each goes with one event."""
    settings = {"events.mode": "publish"}
    line = acl_lines(w, settings)["acl"]
    w.rt.connect_many(STALE)
    create_user(w, line)
    d = w.start(["-c", as_user(w, settings)], env={"POD_NAME": "acl-mid"})
    d.wait_log(r"became leader", 10)
    d.wait_cycles(1, 10)
    sub = w.r.pubsub()
    sub.subscribe(CHANNEL)
    w.r.execute_command("ACL", "SETUSER", USER, "-publish")
    base = errorstat(w.r, "NOPERM")
    w.rt.crash_many(STALE)
    wait_until(lambda: errorstat(w.r, "NOPERM") >= base + 4, 30, what="four refused scripts",
               alive=[d])
    assert w.members() == set(LIVE + STALE), "removed without its event"
    assert len(logged(d, "error", r"PUBLISH to presence:events.*NOPERM|NOPERM.*PUBLISH to "
                      r"presence:events")) == 1, d.stderr()

    w.r.execute_command("ACL", "SETUSER", USER, "+publish")
    wait_until(lambda: w.members() == set(LIVE), 15, what="the stale users removed", alive=[d])
    got = [m for m in iter(lambda: sub.get_message(timeout=0.2), None) if m["type"] == "message"]
    assert sorted(re.search(rb'"user_id":"([^"]*)"', m["data"]).group(1) for m in got) == STALE
    sub.close()


def test_loop_without_the_expiry_channel_says_so_once_and_the_pass_reaps(w):
    settings = {"reaper.watch_expiry": True, "reaper.interval": 0.5}
    w.r.config_set("notify-keyspace-events", "Ex")
    drop(w, acl_lines(w, settings)["acl"], "&__keyevent@0__:expired")
    d = w.start(["-c", as_user(w, settings)], env={"POD_NAME": "acl-nochan"})
    wait_until(lambda: w.members() == set(LIVE), 10, what="the pass to reap", alive=[d])
    base = errorstat(w.r, "NOPERM")
    wait_until(lambda: errorstat(w.r, "NOPERM") >= base + 3, 30,
               what="three refused subscriptions", alive=[d])
    said = logged(d, "error", r"SUBSCRIBE __keyevent@0__:expired: NOPERM")
    assert len(said) == 1, d.stderr()
    assert "the periodic pass still reaps" in said[0], said

    w.r.execute_command("ACL", "SETUSER", USER, "&__keyevent@0__:expired")
    d.wait_log(r"watching key expiry", 15)
    d.wait_log(r"SUBSCRIBE __keyevent@0__:expired: NOPERM.*\(repeated \d+ times?; now cleared\)",
               5)


def test_without_select_a_database_other_than_0_fails_like_a_wrong_password(h):
    settings = {"redis.db": 2}
    drop(h, acl_lines(h, settings)["acl"], "+select")
    rc, out, err = h.run(["-c", as_user(h, settings), "--once"])
    assert rc == EX_CONFIG, err
    assert re.search(r"error: SELECT refused: NOPERM .*'select'", err), err
    rc, out, err = h.run(["-c", as_user(h, settings), "-t"])
    assert rc == EX_CONFIG, err
    assert re.search(rb"(?m)^# redis .*: SELECT refused: NOPERM", out), out


def test_loop_leader_without_a_permission_says_so_on_becoming_leader(h):
    """Nobody is stale, so no pass would meet the missing SREM: the check
    with no users, run on becoming leader, names it all the same."""
    h.rt.connect_many(LIVE)
    drop(h, acl_lines(h)["acl"], "+srem")
    d = h.start(["-c", as_user(h)], env={"POD_NAME": "acl-lead"})
    d.wait_log(r"became leader", 10)
    d.wait_log(r"error: EVALSHA reap script on .*NOPERM this user may not run SREM on "
               r"presence:online-users", 5)
    assert h.members() == set(LIVE)


def test_enable_notifications_without_config_warns_and_watches(w):
    w.r.config_set("notify-keyspace-events", "Ex")
    settings = {"reaper.watch_expiry": True, "reaper.enable_notifications": True}
    rc, out, err = w.run(["-c", w.config(settings), "-t"])
    assert b"leaves out CONFIG GET and CONFIG SET" in out, out
    create_user(w, acl_lines(w, settings)["acl"])
    rc, out, err = w.run(["-c", as_user(w, settings), "-t"])
    assert rc == EX_OK, err
    assert re.search(rb"(?m)^# key-expiry events: cannot tell \(CONFIG GET "
                     rb"notify-keyspace-events: NOPERM .*\), as with the acl line", out), out
    d = w.start(["-c", as_user(w, settings)], env={"POD_NAME": "acl-enable"})
    d.wait_log(r"watching key expiry", 10)
    assert len(logged(d, "warn", r"cannot read notify-keyspace-events.*NOPERM")) == 1, d.stderr()


def test_through_sentinel_the_user_needs_role_on_every_node(cl, bare):
    """ROLE confirms the primary a Sentinel names, so the line has +role with a
    Sentinel URL; ACL users are not replicated, so it goes to every node."""
    rc, out, err = bare.run(["-c", run_conf(bare, cl), "-t"])
    assert rc == EX_OK, err
    line = dict(re.findall(r"(?m)^# (acl): (ACL SETUSER .*)$", out.decode()))["acl"]
    assert "+role" in line.split(), line
    servers = [["-p", str(n.port), "--no-auth-warning", "-a", DATA_PW] for n in cl.nodes]
    for server in servers:
        create_user(bare, line, server)
    hosts = ",".join(s.addr for s in cl.sentinels)
    conf = run_conf(bare, cl, url=f"redis+sentinel://{USER}:{PW}@{hosts}/{SERVICE}/0")
    r = cl.primary()
    r.acl_log_reset()
    seed(r, LIVE, STALE)
    rc, out, err = bare.run(["-c", conf, "--once"])
    assert rc == EX_OK, err
    assert set(r.smembers(Realtime(r).online)) == set(LIVE)
    assert r.acl_log() == []

    for server in servers:
        create_user(bare, " ".join(["ACL", "SETUSER", USER, ">PASSWORD", "-role"]), server)
    seed(r, [], STALE)
    rc, out, err = bare.run(["-c", conf, "--once"])
    assert rc == EX_CONFIG, err
    assert re.search(r"ROLE: NOPERM .*'role'", err), err
    assert set(r.smembers(Realtime(r).online)) == set(LIVE + STALE)


# --- sharded presence ----------------------------------------------------------

SHARDED = {"keys.shards": 3, "keys.online_set": "presence:{<shard>}:online-users",
           "keys.socket_prefix": "presence:{<shard>}:user:",
           "leader.key": "presence:{<shard>}:reaper-lock",
           "leader.lease": 2, "leader.renew": 0.5, "reaper.interval": 1,
           "events.mode": "stream", "events.stream": "presence:{<shard>}:events"}


def sharded_presence(h):
    """Per shard, 150 live users and 2 stale ones, as the realtime servers write them."""
    for s in range(3):
        live = [b"live-%d-%03d" % (s, i) for i in range(150)]
        stale = [b"stale-%d-%d" % (s, i) for i in range(2)]
        h.r.sadd(f"presence:{{{s}}}:online-users", *(live + stale))
        for u in live:
            h.r.sadd(b"presence:{%d}:user:%s:sockets" % (s, u), b"sock")
            h.r.expire(b"presence:{%d}:user:%s:sockets" % (s, u), 120)


def online(h, s):
    return {m for m in h.r.smembers(f"presence:{{{s}}}:online-users")}


def test_sharded_lines_cover_every_shard_and_the_membership(h):
    lines = acl_lines(h, SHARDED)
    acl, ro = lines["acl"].split(), lines["acl-dry-run"].split()
    for rule in ("~presence:{*}:online-users", "~presence:{*}:reaper-lock",
                 "~presence:{*}:events", "~presence:{members}:reaper-lock",
                 "~presence:{*}:user:*:sockets", "+zadd", "+zrem", "+zremrangebyscore",
                 "+zcard", "+time", "+xadd"):
        assert rule in acl, (rule, acl)
    assert "+get" in ro and "%R~presence:{*}:reaper-lock" in ro, ro
    assert not [r for r in ro if r.startswith("+z") or r[0] in "&~"], ro


def test_sharded_loop_once_and_dry_run_as_the_users(h):
    sharded_presence(h)
    h.r.execute_command("ACL", "LOG", "RESET")
    lines = acl_lines(h, SHARDED)
    create_user(h, lines["acl-dry-run"])
    rc, out, err = h.run(["-c", as_user(h, SHARDED), "--dry-run", "--once"])
    assert rc == EX_OK, err
    assert sorted(out.split()) == sorted(b"stale-%d-%d" % (s, i) for s in range(3)
                                         for i in range(2))
    rc, out, err = h.run(["-c", as_user(h, SHARDED), "-t"])
    assert rc == EX_OK and b"NOPERM" not in out, out
    assert out.count(b": free\n") == 3, out
    create_user(h, lines["acl"])
    d = h.start(["-c", as_user(h, SHARDED)], env={"POD_NAME": "acl-shards"})
    wait_until(lambda: all(len(online(h, s)) == 150 for s in range(3)), 15,
               what="every shard reaped", alive=[d])
    wait_until(lambda: h.r.zcard("presence:{members}:reaper-lock") == 1, 5,
               what="the membership", alive=[d])
    assert refused(h) == [], "the line must cover every command the reaper sends"
    assert not logged(d, "(warn|error)", ""), d.stderr()


def test_sharded_loop_without_zadd_takes_no_shard_and_says_why(h):
    sharded_presence(h)
    drop(h, acl_lines(h, SHARDED)["acl"], "+zadd")
    d = h.start(["-c", as_user(h, SHARDED)], env={"POD_NAME": "acl-nozadd"})
    d.wait_log(r"replica membership: members\.lua on presence:\{members\}:reaper-lock: "
               r"NOPERM this user may not run ZADD", 10)
    d.wait_log(r"replica membership", 1)
    # Without a membership the fair share stays 0: no shard is taken, nothing removed.
    assert all(h.r.get(f"presence:{{{s}}}:reaper-lock") is None for s in range(3))
    assert all(len(online(h, s)) == 152 for s in range(3))
    assert not h.r.exists("presence:{members}:reaper-lock")


# A refused PTTL is met first by the guard's sample, which reads TTLs too.
@pytest.mark.parametrize("rule,named", [
    ("+sscan", r"SSCAN \(scan script\) presence:online-users: NOPERM this user may not run "
     r"SSCAN on the online set"),
    ("+pttl", r"NOPERM this user may not run PTTL on a socket set")])
def test_track_expiry_without_one_permission_names_it_and_removes_nothing(w, rule, named):
    """reaper.track_expiry reads in the scan script: a refusal inside it names
    the command, nothing is removed, and with the permission back the pass reaps."""
    settings = {"reaper.track_expiry": True, "reaper.interval": 1}
    line = acl_lines(w, settings)["acl"]
    drop(w, line, rule)
    d = w.start(["-c", as_user(w, settings)], env={"POD_NAME": "acl-track"})
    wait_until(lambda: logged(d, "error", named), 15, what="the refusal named", alive=[d])
    assert w.members() == set(LIVE + STALE), "nothing may be removed"
    w.r.execute_command("ACL", "SETUSER", USER, rule)
    wait_until(lambda: w.members() == set(LIVE), 15, what="the stale users removed", alive=[d])

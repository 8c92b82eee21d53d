"""Command line, environment precedence, --check-config and logging options."""

import json
import os
import re

import pytest

from harness import EX_UNAVAILABLE, closed_port, render_config, wait_until

OPTIONS = ["-c", "--config", "-t", "--check-config", "--once", "-n", "--dry-run",
           "--redis-url", "-v", "--verbose", "-q", "--quiet", "--log-format",
           "-V", "--version", "-h", "--help"]


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(bare, flag):
    rc, out, err = bare.run([flag])
    assert rc == 0, err
    assert re.match(rb"^presence-reaper \d+\.\d+\.\d+\n", out), out


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_mentions_every_option(bare, flag):
    rc, out, err = bare.run([flag])
    assert rc == 0, err
    text = out.decode()
    for opt in OPTIONS:
        assert re.search(r"(?<![\w-])" + re.escape(opt) + r"(?![\w-])", text), f"--help does not mention {opt}"


def test_check_config_prints_effective_config(h):
    conf = h.config({"reaper.batch_size": 321, "keys.online_set": "chat:present"})
    rc, out, err = h.run(["-c", conf, "--check-config"])
    assert rc == 0, err
    text = out.decode()
    assert re.search(r"batch_size\s*=\s*321\s*;", text), text
    assert '"chat:present"' in text, text
    # Defaults are part of the effective configuration too.
    assert re.search(r"guard_min_users\s*=\s*100\s*;", text), text
    assert '"presence:reaper:leader"' in text, text


def test_check_config_never_prints_passwords(h):
    h.r.config_set("requirepass", "env-secret-456")
    from harness import Realtime
    h.r = h.redis.client(password="env-secret-456")
    h.rt = Realtime(h.r)
    conf = h.config({"redis.password": "file-secret-123"})
    rc, out, err = h.run(["-c", conf, "--check-config"],
                         env={"PRESENCE_REAPER_REDIS_PASSWORD": "env-secret-456"})
    assert rc == 0, err
    both = out.decode(errors="replace") + err
    assert "file-secret-123" not in both
    assert "env-secret-456" not in both
    assert "(redacted)" in out.decode(), out


def test_check_config_never_prints_url_password(h):
    url = f"redis://:url-secret-789@127.0.0.1:{closed_port()}/0"
    rc, out, err = h.run(["-c", h.config(url=url), "-t"])
    assert rc == 0, err
    assert "url-secret-789" not in out.decode(errors="replace") + err


def test_check_config_with_unreachable_redis_still_exits_zero(h):
    url = f"redis://127.0.0.1:{closed_port()}/0"
    rc, out, err = h.run(["-c", h.config(url=url), "--check-config"])
    assert rc == 0, err


def test_check_config_makes_no_writes(h):
    h.rt.connect_many([b"live", b"stale"])
    h.rt.crash_many([b"stale"])
    before = h.digest()
    rc, out, err = h.run(["-c", h.config(), "--check-config"])
    assert rc == 0, err
    assert h.digest() == before


def populated(h):
    h.rt.connect_many([b"live", b"stale"])
    h.rt.crash_many([b"stale"])


def dead_url():
    return f"redis://127.0.0.1:{closed_port()}/0"


def test_env_url_overrides_file(h):
    populated(h)
    conf = h.config(url=dead_url())
    rc, out, err = h.run(["-c", conf, "--once"], env={"PRESENCE_REAPER_REDIS_URL": h.redis.unix_url})
    assert rc == 0, err
    assert h.members() == {b"live"}


def test_redis_url_env_fallback(h):
    populated(h)
    conf = h.config(url=dead_url())
    rc, out, err = h.run(["-c", conf, "--once"], env={"REDIS_URL": h.redis.tcp_url})
    assert rc == 0, err
    assert h.members() == {b"live"}


def test_presence_reaper_url_wins_over_redis_url(h):
    populated(h)
    rc, out, err = h.run(["-c", h.config(), "--once"],
                         env={"PRESENCE_REAPER_REDIS_URL": dead_url(), "REDIS_URL": h.redis.unix_url})
    assert rc == EX_UNAVAILABLE, err
    assert h.members() == {b"live", b"stale"}


def test_flag_overrides_env(h):
    populated(h)
    conf = h.config(url=dead_url())
    rc, out, err = h.run(["-c", conf, "--once", "--redis-url", h.redis.tcp_url],
                         env={"PRESENCE_REAPER_REDIS_URL": dead_url()})
    assert rc == 0, err
    assert h.members() == {b"live"}


def test_flag_overrides_env_the_other_way(h):
    populated(h)
    rc, out, err = h.run(["-c", h.config(), "--once", "--redis-url", dead_url()],
                         env={"PRESENCE_REAPER_REDIS_URL": h.redis.unix_url})
    assert rc == EX_UNAVAILABLE, err
    assert h.members() == {b"live", b"stale"}


def test_env_password_overrides_file_password(h):
    populated(h)
    h.r.config_set("requirepass", "right-pw")
    from harness import Realtime
    h.r = h.redis.client(password="right-pw")
    h.rt = Realtime(h.r)
    conf = h.config({"redis.password": "wrong-pw"})
    rc, out, err = h.run(["-c", conf, "--once"], env={"PRESENCE_REAPER_REDIS_PASSWORD": "right-pw"})
    assert rc == 0, err
    assert h.members() == {b"live"}


def test_password_file(h):
    populated(h)
    h.r.config_set("requirepass", "from-file")
    from harness import Realtime
    h.r = h.redis.client(password="from-file")
    h.rt = Realtime(h.r)
    secret = h.dir / "secret"
    secret.write_text("from-file\n")
    os.chmod(secret, 0o600)
    rc, out, err = h.run(["-c", h.config({"redis.password_file": str(secret)}), "--once"])
    assert rc == 0, err
    assert h.members() == {b"live"}


def test_world_readable_password_warns(h):
    conf = h.config({"redis.password": "pw"}, mode=0o644)
    rc, out, err = h.run(["-c", conf, "--check-config"])
    assert f"password in {conf} is readable by other users" in err, err
    conf = h.config({"redis.password": "pw"}, mode=0o600)
    rc, out, err = h.run(["-c", conf, "--check-config"])
    assert "readable by other users" not in err, err


def test_password_in_redis_url_option_warns(h):
    """The command line is in the process list: say so, and where to put it instead."""
    url = f"redis://:cli-secret-42@127.0.0.1:{closed_port()}/0"
    rc, out, err = h.run(["-c", h.config(), "-t", "--redis-url", url])
    assert "--redis-url: the password in the URL is visible to other users in the process list" in err, err
    assert "PRESENCE_REAPER_REDIS_PASSWORD" in err and "redis.password_file" in err, err
    assert "cli-secret-42" not in err + out.decode(), "the password must not be printed"
    # The same URL from the environment, or without a password, draws no warning.
    rc, out, err = h.run(["-c", h.config(), "-t"], env={"PRESENCE_REAPER_REDIS_URL": url})
    assert "process list" not in err, err
    rc, out, err = h.run(["-c", h.config(), "-t", "--redis-url", h.redis.unix_url])
    assert "process list" not in err, err


def test_readable_password_file_warns(h):
    secret = h.dir / "secret"
    secret.write_text("pw\n")
    conf = h.config({"redis.password_file": str(secret)})
    for mode in (0o644, 0o604):
        os.chmod(secret, mode)
        rc, out, err = h.run(["-c", conf, "-t"])
        assert f"password in {secret} is readable by other users" in err, (oct(mode), err)
    # Owner only, or a group of the process's own (a Kubernetes fsGroup): quiet.
    os.chown(secret, -1, os.getegid())
    for mode in (0o600, 0o640, 0o400, 0o440):
        os.chmod(secret, mode)
        rc, out, err = h.run(["-c", conf, "-t"])
        assert "readable by other users" not in err, (oct(mode), err)


def test_db_from_url(h):
    db3 = h.redis.client(db=3)
    from harness import Realtime
    rt3 = Realtime(db3)
    rt3.connect_many([b"live", b"stale"])
    rt3.crash_many([b"stale"])
    populated(h)  # the same users in db 0 must stay untouched
    rc, out, err = h.run(["-c", h.config(url=h.redis.unix_url + "?db=3"), "--once"])
    assert rc == 0, err
    assert set(db3.smembers(b"presence:online-users")) == {b"live"}
    assert h.members() == {b"live", b"stale"}


def test_missing_default_config_is_fine(h):
    if os.path.exists("/etc/presence-reaper.conf"):
        pytest.skip("/etc/presence-reaper.conf exists on this machine")
    populated(h)
    rc, out, err = h.run(["--once", "--redis-url", h.redis.unix_url])
    assert rc == 0, err
    assert h.members() == {b"live"}


def test_relative_include(h):
    populated(h)
    sub = h.dir / "conf.d"
    sub.mkdir()
    (sub / "keys.conf").write_text('keys = { online_set = "inc:online"; };\n')
    main = h.config(raw=render_config({"redis.url": h.redis.unix_url}) + '@include "conf.d/keys.conf"\n')
    from harness import Realtime
    rt = Realtime(h.r, online=b"inc:online")
    rt.connect_many([b"a", b"b"])
    rt.crash_many([b"b"])
    cwd = os.getcwd()
    try:
        os.chdir("/")
        rc, out, err = h.run(["-c", main, "--once"])
    finally:
        os.chdir(cwd)
    assert rc == 0, err
    assert h.members(b"inc:online") == {b"a"}
    assert h.members() == {b"live", b"stale"}


def test_quiet_hides_info(h):
    populated(h)
    rc, out, err = h.run(["-c", h.config(), "--once", "-q"])
    assert rc == 0, err
    assert "cycle done" not in err and " info:" not in err, err
    assert h.members() == {b"live"}


def test_verbose_shows_debug(h):
    populated(h)
    rc, out, err = h.run(["-c", h.config(), "--once", "-v"])
    assert rc == 0, err
    assert " debug:" in err, err
    assert "cycle done" in err


def test_text_log_format(h):
    rc, out, err = h.run(["-c", h.config(), "--once"])
    assert rc == 0, err
    line = [l for l in err.splitlines() if "cycle done" in l][0]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info: cycle done: ", line), line


def test_json_log_format(h):
    populated(h)
    rc, out, err = h.run(["-c", h.config(), "--once", "--log-format", "json"])
    assert rc == 0, err
    lines = err.splitlines()
    assert lines
    msgs = []
    for l in lines:
        obj = json.loads(l)
        assert {"ts", "level", "msg"} <= set(obj), obj
        msgs.append(obj["msg"])
    assert any(m.startswith("cycle done:") for m in msgs), msgs


def test_log_format_from_file(h):
    rc, out, err = h.run(["-c", h.config({"log.format": "json"}), "--once"])
    assert rc == 0, err
    for l in err.splitlines():
        json.loads(l)


def test_check_config_output_is_valid_config(h):
    """The effective configuration printed by -t reads back as the same configuration."""
    conf = h.config({"reaper.batch_size": 77, "reaper.max_stale_ratio": 0.5,
                     "keys.socket_suffix": ":socks", "leader.identity": "pod-x",
                     "redis.password": "pw1"}, url=dead_url())
    rc, first, err = h.run(["-c", conf, "--check-config"])
    assert rc == 0, err
    again = h.dir / "again.conf"
    again.write_bytes(first)
    os.chmod(again, 0o600)
    rc, second, err = h.run(["-c", again, "--check-config"])
    assert rc == 0, f"-t output is not a valid config file:\n{err}\n{first.decode()}"

    def settings(text):
        return [l for l in text.decode().splitlines() if l.strip() and not l.lstrip().startswith("#")]
    assert settings(first) == settings(second)
    assert re.search(r"batch_size\s*=\s*77\s*;", first.decode())


def test_select_only_when_db_is_not_zero(h):
    populated(h)
    h.r.config_resetstat()
    rc, out, err = h.run(["-c", h.config(), "--once"])
    assert rc == 0, err
    calls = h.commandstats()
    assert calls.get("select", 0) == 0, calls


def test_db_setting_and_url_precedence(h):
    from harness import Realtime
    db2 = h.redis.client(db=2)
    rt2 = Realtime(db2)
    rt2.connect_many([b"live", b"stale"])
    rt2.crash_many([b"stale"])
    populated(h)
    # redis.db applies when the URL names no database ...
    rc, out, err = h.run(["-c", h.config({"redis.db": 2}), "--once"])
    assert rc == 0, err
    assert set(db2.smembers(b"presence:online-users")) == {b"live"}
    assert h.members() == {b"live", b"stale"}
    # ... and a database in the URL wins over it.
    rt2.connect_many([b"stale2"])
    rt2.crash_many([b"stale2"])
    rc, out, err = h.run(["-c", h.config({"redis.db": 2}, url=h.redis.tcp_url), "--once"])
    assert rc == 0, err
    assert h.members() == {b"live"}, "URL /0 must select db 0"
    assert b"stale2" in set(db2.smembers(b"presence:online-users"))


def test_url_password_wins_over_setting(h):
    populated(h)
    h.r.config_set("requirepass", "url-pw")
    from harness import Realtime
    h.r = h.redis.client(password="url-pw")
    h.rt = Realtime(h.r)
    url = "unix://:url-pw@" + h.redis.sock
    rc, out, err = h.run(["-c", h.config({"redis.password": "setting-pw"}, url=url), "--once"])
    assert rc == 0, err
    assert h.members() == {b"live"}


def test_url_password_is_percent_decoded(h):
    populated(h)
    h.r.config_set("requirepass", "p@ss:w/rd%")
    from harness import Realtime
    h.r = h.redis.client(password="p@ss:w/rd%")
    h.rt = Realtime(h.r)
    url = f"redis://:p%40ss%3Aw%2Frd%25@127.0.0.1:{h.redis.port}/0"
    rc, out, err = h.run(["-c", h.config(url=url), "--once"])
    assert rc == 0, err
    assert h.members() == {b"live"}


def test_acl_user_from_url_wins_over_setting(h):
    populated(h)
    h.r.execute_command("ACL", "SETUSER", "reaper", "on", ">rpw", "~*", "&*", "+@all")
    url = "unix://reaper:rpw@" + h.redis.sock
    rc, out, err = h.run(["-c", h.config({"redis.username": "nobody"}, url=url), "--once"])
    assert rc == 0, err
    assert h.members() == {b"live"}


def test_username_setting_alone_authenticates_as_that_user(h):
    """redis.username without any password: the connection is that ACL user's."""
    h.r.execute_command("ACL", "SETUSER", "reaper-np", "on", "nopass", "~*", "&*", "+@all")
    d = h.start(["-c", h.config({"redis.username": "reaper-np"})])

    def reaper_users():
        return [c["user"] for c in h.r.client_list()
                if c.get("name", "").startswith("presence-reaper")]

    users = wait_until(reaper_users, 10, what="the reaper's connection", alive=[d])
    assert set(users) == {"reaper-np"}, users


def test_identity_from_setting_and_pod_name(h):
    conf = h.config({"leader.identity": "from-setting"})
    rc, out, err = h.run(["-c", conf, "--check-config"], env={"POD_NAME": "from-env"})
    assert rc == 0, err
    assert '"from-setting"' in out.decode()
    rc, out, err = h.run(["-c", h.config(), "--check-config"], env={"POD_NAME": "from-env"})
    assert rc == 0, err
    assert re.search(r'identity\s*=\s*"from-env"', out.decode()), out.decode()

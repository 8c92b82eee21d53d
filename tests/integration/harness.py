"""Helpers for the presence-reaper integration tests.

Everything here drives real processes: a throwaway redis-server in a temporary
directory (Unix socket + a free TCP port on 127.0.0.1), the realtime servers'
own Lua scripts, and the presence-reaper binary.  Every wait is a condition
polled against a deadline; nothing sleeps and hopes.
"""

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURES = REPO / "packaging" / "realtime"   # the kit's scripts, as the realtime servers run them

ONLINE = b"presence:online-users"
PREFIX = b"presence:user:"
SUFFIX = b":sockets"
LOCK = b"presence:reaper:leader"

# "<identity>:<pid>:<16 hex digits>"
TOKEN_RE = re.compile(rb"^(?P<ident>.*):(?P<pid>\d+):(?P<rand>[0-9a-fA-F]{16})$")
# The per-cycle info line exactly as the contract writes it ...
CYCLE_EXACT_RE = re.compile(
    r"cycle done: scanned=(?P<scanned>\d+) stale=(?P<stale>\d+) "
    r"removed=(?P<removed>\d+) batches=(?P<batches>\d+) duration=(?P<duration>[0-9.]+)s$", re.M)
# ... and as most tests read it: the same fields, other key=value fields allowed,
# so one format slip fails one test (test_cycle_info_line), not every test.
CYCLE_RE = re.compile(
    r"cycle done: scanned=(?P<scanned>\d+) stale=(?P<stale>\d+) "
    r"removed=(?P<removed>\d+)(?: \w+=\S+)*? batches=(?P<batches>\d+)(?: \w+=\S+)*? "
    r"duration=(?P<duration>[0-9.]+)s")
DRYRUN_EXACT_RE = re.compile(
    r"dry-run: scanned=(?P<scanned>\d+) stale=(?P<stale>\d+) \(nothing removed\)$", re.M)
DRYRUN_RE = re.compile(
    r"dry-run: scanned=(?P<scanned>\d+) stale=(?P<stale>\d+)(?: \w+=\S+)* \(nothing removed\)")

# Variables that would leak the developer's environment into the binary.
SCRUBBED_ENV = ("PRESENCE_REAPER_REDIS_URL", "REDIS_URL", "PRESENCE_REAPER_REDIS_PASSWORD", "POD_NAME")

# Reports of the ASan/UBSan build: any of these on stderr fails the test.
SANITIZER_RE = re.compile(r"ERROR: (?:Address|Leak)Sanitizer|runtime error: |"
                          r"SUMMARY: (?:Address|Leak|UndefinedBehavior)Sanitizer")

# Users with a live socket set who are not in the online set (KEYS: the online
# set, then each user's socket set; ARGV: the users): must always be empty.
LIVE_ONLINE_CHECK = b"""
local bad = {}
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 and redis.call('SISMEMBER', KEYS[1], ARGV[i - 1]) == 0 then
    bad[#bad + 1] = ARGV[i - 1]
  end
end
return bad
"""

EX_OK, EX_USAGE, EX_DATAERR, EX_UNAVAILABLE, EX_SOFTWARE, EX_TEMPFAIL, EX_CONFIG = 0, 64, 65, 69, 70, 75, 78


_BIN = os.path.abspath(os.environ.get("PRESENCE_REAPER_BIN")
                       or str(REPO / "build" / "reaper" / "presence-reaper"))


def binary():
    path = _BIN
    if not os.access(path, os.X_OK):
        raise AssertionError(f"presence-reaper binary not found at {path} (set PRESENCE_REAPER_BIN)")
    return path


def wait_until(cond, timeout, interval=0.02, what=None, alive=()):
    """Poll cond() until it returns a truthy value; return that value.

    Raises AssertionError naming `what` when the deadline passes, or at once
    when one of the `alive` daemons has exited.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        for d in alive:
            if not d.alive():
                raise AssertionError(f"{d.name} exited (status {d.proc.returncode}) "
                                     f"while waiting for {what or cond}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what or cond}")
        time.sleep(interval)


def hold_for(duration, invariant, interval=0.02, what=None):
    """Check invariant() repeatedly for `duration` seconds; fail as soon as it is false.

    This is the opposite of wait_until: an observation window in which
    something must stay true (a process stays alive, a lock stays put).
    """
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        if not invariant():
            raise AssertionError(f"invariant broken: {what or invariant}")
        time.sleep(interval)
    if not invariant():
        raise AssertionError(f"invariant broken: {what or invariant}")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port():
    """A TCP port on 127.0.0.1 that nothing listens on (connections are refused)."""
    return free_port()


def socket_key(uid, prefix=PREFIX, suffix=SUFFIX):
    return prefix + uid + suffix


def proc_cpu_seconds(pid):
    """utime + stime of a process, in seconds, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    # comm may contain spaces and parentheses: split after the last ')'.
    fields = data[data.rindex(b")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def errorstat(client, code):
    """How many replies of this error code the server has sent (INFO errorstats)."""
    value = client.info("errorstats").get(f"errorstat_{code}", {})
    if isinstance(value, str):      # older clients leave "count=N" unparsed
        value = dict(kv.split("=", 1) for kv in value.split(","))
    return int(value.get("count", 0))


def logged(d_or_text, level, pattern):
    """Lines at `level` (warn|error|info|debug) whose message matches pattern."""
    text = d_or_text if isinstance(d_or_text, str) else d_or_text.stderr()
    return re.findall(r"(?m)^\S+ %s: .*%s.*$" % (level, pattern), text)


class RedisServer:
    """A redis-server of our own: Unix socket and a TCP port, no persistence."""

    def __init__(self, workdir, extra_args=()):
        self.dir = Path(workdir)
        self.sock = str(self.dir / "redis.sock")
        self.port = None
        self.proc = None
        self.log = self.dir / "redis.log"
        self.extra_args = list(extra_args)   # e.g. ["--rename-command", "EVALSHA", ""]

    @property
    def unix_url(self):
        return "unix://" + self.sock

    @property
    def tcp_url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, keep_port=False):
        attempts = 0
        while True:
            attempts += 1
            if not keep_port or self.port is None:
                self.port = free_port()
            if self._spawn():
                return
            # Lost a race for the port (or the socket): retry, a new port unless pinned.
            if attempts >= (20 if keep_port else 5):
                raise AssertionError("redis-server did not start:\n" + self._log_tail())
            if keep_port:
                time.sleep(0.1)

    def _spawn(self):
        try:
            os.unlink(self.sock)
        except FileNotFoundError:
            pass
        args = ["redis-server",
                "--port", str(self.port), "--bind", "127.0.0.1",
                "--unixsocket", self.sock, "--unixsocketperm", "700",
                "--save", "", "--appendonly", "no",
                "--dir", str(self.dir), "--logfile", str(self.log),
                "--daemonize", "no", "--enable-debug-command", "local"] + self.extra_args
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            try:
                c = redis.Redis(unix_socket_path=self.sock, socket_timeout=1)
                if c.ping():
                    c.close()
                    return True
            except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError, OSError):
                pass
            time.sleep(0.02)
        self.stop()
        raise AssertionError("redis-server did not answer PING within 10s:\n" + self._log_tail())

    def _log_tail(self):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def restart(self):
        """Stop and start again on the same port and socket (the data set is lost)."""
        self.stop()
        self.start(keep_port=True)

    def client(self, **kw):
        kw.setdefault("socket_timeout", 10)
        return redis.Redis(unix_socket_path=self.sock, **kw)


class Realtime:
    """One realtime (WebSocket) server, using the servers' own atomic scripts."""

    def __init__(self, r, online=ONLINE, prefix=PREFIX, suffix=SUFFIX):
        self.r = r
        self.online = online
        self.prefix = prefix
        self.suffix = suffix
        self._connect = r.register_script((FIXTURES / "connect.lua").read_bytes())
        self._heartbeat = r.register_script((FIXTURES / "heartbeat.lua").read_bytes())
        self._disconnect = r.register_script((FIXTURES / "disconnect.lua").read_bytes())

    def key(self, uid):
        return self.prefix + uid + self.suffix

    def connect(self, user, sock=b"s1", ttl=60, client=None):
        return self._connect(keys=[self.online, self.key(user)], args=[user, sock, ttl], client=client)

    def heartbeat(self, user, ttl=60, client=None):
        return self._heartbeat(keys=[self.key(user)], args=[ttl], client=client)

    def disconnect(self, user, sock=b"s1", client=None):
        return self._disconnect(keys=[self.online, self.key(user)], args=[user, sock], client=client)

    def crash(self, user, expire=False):
        """The user's server died: its socket set disappears, no disconnect runs.

        expire=True lets Redis expire the set (PEXPIRE 1 ms); otherwise DEL it.
        """
        key = self.key(user)
        if expire:
            self.r.pexpire(key, 1)
            wait_until(lambda: self.r.exists(key) == 0, 5, what=f"expiry of {key!r}")
        else:
            self.r.delete(key)

    def connect_many(self, users, ttl=60):
        pipe = self.r.pipeline(transaction=False)
        for u in users:
            self.connect(u, ttl=ttl, client=pipe)
        pipe.execute()

    def crash_many(self, users):
        users = list(users)
        if users:
            self.r.delete(*[self.key(u) for u in users])

    def members(self):
        return set(self.r.smembers(self.online))


def _render(value):
    if isinstance(value, (list, tuple)):
        return "[ " + ", ".join(_render(v) for v in value) + " ]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if ("." in text or "e" in text) else text + ".0"
    if isinstance(value, bytes):
        value = value.decode()
    value = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{value}"'


def render_config(settings):
    """libconfig text for {"group.name": value}; one setting per line."""
    groups = {}
    for name, value in settings.items():
        group, _, key = name.partition(".")
        groups.setdefault(group, []).append((key, value))
    lines = []
    for group, items in groups.items():
        lines.append(f"{group} = {{")
        for key, value in items:
            lines.append(f"  {key} = {_render(value)};")
        lines.append("};")
    return "\n".join(lines) + "\n"


# A daemon that floods its log (a retry loop without backoff writes hundreds
# of MB a second) is stopped by SIGXFSZ instead of filling the disk.
LOG_LIMIT = 32 << 20


def _limit_output():
    resource.setrlimit(resource.RLIMIT_FSIZE, (LOG_LIMIT, LOG_LIMIT))


class Daemon:
    """presence-reaper in loop mode; output goes to files so pipes never fill."""

    def __init__(self, args, env, workdir, name):
        self.name = name
        self.out_path = Path(workdir) / f"{name}.stdout"
        self.err_path = Path(workdir) / f"{name}.stderr"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([binary()] + list(args), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, env=env,
                                         preexec_fn=_limit_output)
        self.pid = self.proc.pid
        self._err_size = -1
        self._err_text = ""

    def stderr(self):
        size = os.path.getsize(self.err_path)
        if size != self._err_size:
            self._err_text = self.err_path.read_bytes().decode("utf-8", "replace")
            self._err_size = size
        return self._err_text

    def stdout(self):
        return self.out_path.read_bytes()

    def alive(self):
        return self.proc.poll() is None

    def flooded(self):
        return self.proc.returncode == -signal.SIGXFSZ

    def count(self, pattern):
        return len(re.findall(pattern, self.stderr()))

    def cycles(self):
        return [m.groupdict() for m in CYCLE_RE.finditer(self.stderr())]

    def wait_log(self, pattern, timeout, after=0):
        """Wait until `pattern` occurs more than `after` times on stderr."""
        wait_until(lambda: self.count(pattern) > after, timeout,
                   what=f"{self.name} to log {pattern!r}", alive=[self])

    def wait_cycles(self, n, timeout):
        """Wait until `n` more cycles than now have completed."""
        base = len(self.cycles())
        wait_until(lambda: len(self.cycles()) >= base + n, timeout,
                   what=f"{self.name} to complete {n} more cycle(s)", alive=[self])

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not exit within {timeout}s")

    def cpu_seconds(self):
        return proc_cpu_seconds(self.pid)

    def kill(self, grace=3):
        """Stop it: SIGTERM first (so a sanitizer build checks for leaks), then SIGKILL."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _collapse(lines):
    """Fold runs of the same message (timestamps aside) into one line."""
    out, prev, n = [], None, 0
    for line in lines + [None]:
        body = line.split(" ", 1)[-1] if line is not None else None
        if body == prev and line is not None:
            n += 1
            continue
        if n > 1:
            out.append(f"    ... last line repeated {n - 1} more times")
        if line is not None:
            out.append(line)
        prev, n = body, 1
    return out


class Harness:
    """Per-test world: a temp dir, a redis-server, a client, a realtime server, daemons."""

    DEFAULTS = {
        "reaper.interval": 0.5,
        "leader.lease": 2,
        "leader.renew": 0.5,
    }

    def __init__(self, with_redis=True):
        self.dir = Path(tempfile.mkdtemp(prefix="prt-"))
        self.daemons = []
        self.redis = None
        self.r = None
        self.rt = None
        if with_redis:
            self.redis = RedisServer(self.dir)
            try:
                self.redis.start()
                self.r = self.redis.client()
                self.rt = Realtime(self.r)
            except BaseException:
                self.redis.stop()
                shutil.rmtree(self.dir, ignore_errors=True)
                raise
        self._nconf = 0
        self.servers = []

    # --- more servers ------------------------------------------------------
    def server(self, extra_args=(), name=None):
        """Another redis-server of this test (own folder, socket and port), stopped at close."""
        workdir = self.dir / (name or f"redis{len(self.servers) + 2}")
        workdir.mkdir()
        srv = RedisServer(workdir, extra_args)
        self.servers.append(srv)
        srv.start()
        return srv

    def replica(self, primary=None, serve_stale=True, synced=True):
        """A redis-server replicating `primary` (the test's own by default).

        With synced=True, wait until the link is up and the replica holds
        the primary's data set (same DEBUG DIGEST). serve_stale=False sets
        replica-serve-stale-data no: with its primary gone it answers
        MASTERDOWN.
        """
        primary = primary or self.redis
        srv = self.server(["--replica-serve-stale-data", "yes" if serve_stale else "no"],
                          name=f"replica{len(self.servers) + 1}")
        c = srv.client()
        c.execute_command("REPLICAOF", "127.0.0.1", str(primary.port))
        if synced:
            p = primary.client()
            wait_until(lambda: c.info("replication").get("master_link_status") == "up"
                       and c.execute_command("DEBUG", "DIGEST") == p.execute_command("DEBUG", "DIGEST"),
                       15, what="the replica to sync")
            p.close()
        c.close()
        return srv

    # --- configuration ---------------------------------------------------
    def config(self, settings=None, raw=None, name=None, url=None, mode=0o600):
        """Write a config file; `settings` override the short test defaults."""
        self._nconf += 1
        path = self.dir / (name or f"reaper{self._nconf}.conf")
        if raw is None:
            merged = dict(self.DEFAULTS)
            if self.redis is not None:
                merged["redis.url"] = url or self.redis.unix_url
            elif url is not None:
                merged["redis.url"] = url
            merged.update(settings or {})
            merged = {k: v for k, v in merged.items() if v is not None}
            raw = render_config(merged)
        path.write_text(raw)
        os.chmod(path, mode)
        return path

    def env(self, extra=None):
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        env.update(extra or {})
        return env

    # --- running the binary -------------------------------------------------
    def run(self, args, timeout=30, env=None):
        """Run to completion: (rc, stdout bytes, stderr text)."""
        try:
            p = subprocess.run([binary()] + list(args), stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=timeout, env=self.env(env))
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"presence-reaper {args} did not finish within {timeout}s; "
                                 f"stderr: {(e.stderr or b'').decode(errors='replace')}")
        err = p.stderr.decode("utf-8", "replace")
        self.last_stderr = err
        if SANITIZER_RE.search(err):
            raise AssertionError(f"sanitizer report from presence-reaper {args}:\n{err}")
        return p.returncode, p.stdout, err

    run_reaper = run

    def start(self, args, env=None, name=None):
        name = name or f"daemon{len(self.daemons) + 1}"
        d = Daemon(args, self.env(env), self.dir, name)
        self.daemons.append(d)
        return d

    def redis_back(self):
        """Start redis-server again on the same port and socket, with fresh clients."""
        self.redis.start(keep_port=True)
        self.r = self.redis.client()
        self.rt = Realtime(self.r)

    # --- Redis views ----------------------------------------------------------
    def members(self, key=ONLINE):
        return set(self.r.smembers(key))

    def lock(self, key=LOCK):
        return self.r.get(key)

    def digest(self):
        return self.r.execute_command("DEBUG", "DIGEST")

    def commandstats(self):
        return {k[len("cmdstat_"):] if k.startswith("cmdstat_") else k: v["calls"]
                for k, v in self.r.info("commandstats").items()}

    def holder(self, daemons=None):
        """The daemon whose token is the lock value (None when none)."""
        value = self.lock()
        if value is None:
            return None
        m = TOKEN_RE.match(value)
        if not m:
            return None
        for d in daemons or self.daemons:
            if int(m.group("pid")) == d.pid:
                return d
        return None

    # --- teardown ---------------------------------------------------------------
    def close(self):
        for d in self.daemons:
            d.kill()
        sanitizer = [d.name for d in self.daemons if SANITIZER_RE.search(d.stderr())]
        if self.r is not None:
            try:
                self.r.close()
            except Exception:
                pass
        if self.redis is not None:
            self.redis.stop()
        for srv in self.servers:
            srv.stop()
        for d in self.daemons:
            try:
                with open(d.err_path, "rb") as f:
                    size = f.seek(0, 2)
                    f.seek(max(0, size - 16384))
                    tail = _collapse(f.read().decode("utf-8", "replace").splitlines()[1:])[-30:]
                flood = " - killed by SIGXFSZ: it flooded its log" if d.flooded() else ""
                print(f"--- {d.name} (pid {d.pid}, rc {d.proc.returncode}, "
                      f"{size} bytes of stderr{flood}) tail ---")
                print("\n".join(tail))
            except OSError:
                pass
        if sanitizer:
            for d in self.daemons:
                if d.name in sanitizer:
                    text = d.stderr()
                    print(f"--- {d.name}: sanitizer report ---")
                    print(text[SANITIZER_RE.search(text).start():][:20000])
        shutil.rmtree(self.dir, ignore_errors=True)
        if sanitizer:
            raise AssertionError(f"sanitizer reports on stderr of {', '.join(sanitizer)}")

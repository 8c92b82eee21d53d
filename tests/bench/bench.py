#!/usr/bin/python3
"""Benchmark presence-reaper against the old per-server loop and the ceiling.

On one throwaway redis-server (its own temporary folder and Unix socket, no
persistence, stopped on exit and on SIGINT/SIGTERM/SIGHUP), for each size N:
presence-gen creates N users (a fraction stale), then each method makes full
passes, interleaved, each pass on the same full set (the stale users are put
back before every pass):

  ceiling          the least work any correct full pass must make Redis do:
                   an SSCAN-only pass at the reaper's batch size (scanpass),
                   plus EXISTS on every user's socket key sent by an ideal
                   pipelining client (redis-cli --pipe, fed a RESP file
                   written beforehand); the two times are summed
  presence-reaper  the real binary, --once
  old loop         SMEMBERS, one EXISTS round trip per user, one SREM per
                   stale user (oldloop)

After every pass of the reaper and of the old loop the online set must equal
the live users exactly; anything else stops the benchmark with an error.

With --tls the server also listens on loopback TCP, plain and TLS, and
presence-reaper --once makes full passes over each, interleaved: the time TLS
costs, and the reaper's peak RSS with it.

Prints Markdown on stdout, progress on stderr. --batch-curve, --idle and
--tls add their own sections; with none (or with --table) the main table runs.
"""

import argparse
import ctypes
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis

ONLINE = b"presence:online-users"
PREFIX = b"presence:user:"
SUFFIX = b":sockets"
EXPECTED = b"bench:expected-live"
SOCKET_TTL = 86400     # no socket set may expire during a run (no heartbeats)
SLOWLOG_US = 100
LONG_US = 2000          # the target: no command blocks Redis longer than 2 ms
TLS_RATIO_TARGET = 1.3  # a TLS pass takes at most this times the plain TCP pass
TLS_RSS_TARGET_MB = 10
METHODS = ("ceiling", "presence-reaper", "old loop")
CURVE_BATCHES = "50,100,200,500,1000,2000,5000"
PR_SET_PDEATHSIG = 1
DRIVER_NAME = "presence-bench"      # our own probes, left out of the slowlog figures
LIBC = ctypes.CDLL(None, use_errno=True)


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def _die_with_parent():
    """In a child: be killed when the driver dies, even by SIGKILL."""
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def run(argv, what, stdin=None, measure=None, stats=None):
    """Run a client to completion. Returns (seconds, peak RSS KiB, stdout, stderr).

    With measure (the runstat binary), seconds and RSS are runstat's own
    figures for the client alone; without, seconds is the driver's and RSS 0.
    stats, a dict, also gets all of runstat's figures (maxanon_kib: the peak
    of the client's own memory, without shared library pages).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as stat:
        if measure:
            argv = [measure, "-o", stat.name] + argv
        t0 = time.perf_counter()
        p = subprocess.run(argv, stdin=stdin or subprocess.DEVNULL, stdout=out,
                           stderr=err, preexec_fn=_die_with_parent)
        seconds, rss = time.perf_counter() - t0, 0
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
        if p.returncode != 0:
            raise BenchError(f"{what} exited with {p.returncode}:\n{stderr[-2000:]}")
        if measure:
            st = fields(stat.read(), "seconds")
            seconds, rss = st["seconds"], int(st["maxrss_kib"])
            if stats is not None:
                stats.update(st)
    return seconds, rss, stdout, stderr


def fields(text, prefix):
    """key=value pairs of the line starting with prefix, as numbers."""
    for line in text.splitlines():
        if line.startswith(prefix):
            return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", line)}
    raise BenchError(f"no '{prefix}' line in:\n{text}")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certs(folder):
    """A CA and a certificate for 127.0.0.1 it signs: (ca, cert, key) paths."""
    def ssl(*argv):
        p = subprocess.run(["openssl"] + list(argv), cwd=folder, capture_output=True,
                           text=True)
        if p.returncode != 0:
            raise BenchError(f"openssl {argv[0]}: {p.stderr}")
    ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "30", "-subj", "/CN=bench CA")
    ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(folder, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "30", "-extfile", "san.ext")
    return tuple(os.path.join(folder, n) for n in ("ca.crt", "server.crt", "server.key"))


class Server:
    """A throwaway redis-server on a Unix socket in its own temporary folder;
    with tls, also on loopback TCP, plain (self.port) and TLS (self.tls_port);
    with tcp, on loopback TCP (self.port) too."""

    def __init__(self, binary, cpu, tls=False, tcp=False):
        self.dir = tempfile.mkdtemp(prefix="presence-bench.")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.logfile = os.path.join(self.dir, "redis.log")
        pin = (lambda: (_die_with_parent(), os.sched_setaffinity(0, {cpu}))) \
            if cpu is not None else _die_with_parent
        net = ["--port", "0"]
        if tcp:
            self.port = free_port()
            net = ["--port", str(self.port), "--bind", "127.0.0.1"]
        if tls:
            self.ca, cert, key = make_certs(self.dir)
            self.port, self.tls_port = free_port(), free_port()
            net = ["--port", str(self.port), "--bind", "127.0.0.1",
                   "--tls-port", str(self.tls_port), "--tls-cert-file", cert,
                   "--tls-key-file", key, "--tls-ca-cert-file", self.ca,
                   "--tls-auth-clients", "no"]
        self.proc = subprocess.Popen(
            [binary] + net + ["--unixsocket", self.sock, "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", self.dir,
             "--logfile", self.logfile, "--daemonize", "no"],
            stdin=subprocess.DEVNULL, preexec_fn=pin)
        self.cli = redis.Redis(unix_socket_path=self.sock, socket_timeout=600,
                               client_name=DRIVER_NAME)
        try:
            self._wait_ready()
            self.cli.config_set("slowlog-log-slower-than", SLOWLOG_US)
            self.cli.config_set("slowlog-max-len", 100000)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"redis-server exited:\n{self._log_tail()}")
            try:
                if self.cli.ping():
                    return
            except (redis.ConnectionError, FileNotFoundError):
                time.sleep(0.02)
        raise BenchError(f"redis-server did not answer within 10 s:\n{self._log_tail()}")

    def _log_tail(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def cpu_wait_ms(self):
        """Time Redis's main thread was runnable but waiting for a CPU
        (/proc/PID/schedstat): other work on its core, which stretches
        whatever command it was running."""
        with open(f"/proc/{self.proc.pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e6

    def cpu_seconds(self):
        info = self.cli.info("cpu")
        return info["used_cpu_sys"] + info["used_cpu_user"]

    def slowest(self):
        """(microseconds, command name) of the longest logged command, or (0, ''),
        and how many logged commands took longer than LONG_US.

        Our own probes are left out: SLOWLOG RESET itself takes a while when it
        frees many entries, and is logged after it ran.
        """
        entries = [e for e in self.cli.execute_command("SLOWLOG", "GET", "100000")
                   if e[5] != DRIVER_NAME.encode()]
        over = sum(1 for e in entries if e[2] > LONG_US)
        if not entries:
            return 0, "", 0
        top = max(entries, key=lambda e: e[2])
        return top[2], top[3][0].decode(errors="replace").upper(), over


class Bench:
    def __init__(self, args, srv):
        self.a = args
        self.srv = srv
        self.conf = os.path.join(srv.dir, "reaper.conf")
        self.redis_opts = ["--socket", srv.sock]
        self.gen_opts = []          # -n, --stale, --odd of the current data
        self.users = self.live = 0

    # --- data -------------------------------------------------------------
    def generate(self, n, stale=None):
        cli = self.srv.cli
        cli.flushall()
        stale = self.a.stale if stale is None else stale
        self.gen_opts = ["-n", str(n), "--stale", str(stale)] + \
            (["--odd"] if self.a.odd else [])
        log(f"generating {n} users ({stale:g} stale)...")
        _, _, out, _ = run([self.a.gen] + self.redis_opts + self.gen_opts +
                           ["--ttl", str(SOCKET_TTL)], "presence-gen")
        made = fields(out, "created")
        log(f"  {out.strip()}")
        self.users, self.live = int(made["users"]), int(made["live"])
        self._store_expected()

    def _store_expected(self):
        """Record, before any pass, which members have a socket set: the live users."""
        cli = self.srv.cli
        members = list(cli.sscan_iter(ONLINE, count=10000))
        if len(members) != self.users:
            raise BenchError(f"online set has {len(members)} members, expected {self.users}")
        for i in range(0, len(members), 10000):
            chunk = members[i:i + 10000]
            pipe = cli.pipeline(transaction=False)
            for m in chunk:
                pipe.exists(PREFIX + m + SUFFIX)
            live = [m for m, e in zip(chunk, pipe.execute()) if e]
            if live:
                cli.sadd(EXPECTED, *live)
        if cli.scard(EXPECTED) != self.live:
            raise BenchError(f"{cli.scard(EXPECTED)} users have socket sets, "
                             f"presence-gen said {self.live}")

    def restore(self):
        _, _, out, _ = run([self.a.gen] + self.redis_opts + self.gen_opts + ["--restore"],
                           "presence-gen --restore")
        if self.srv.cli.scard(ONLINE) != self.users:
            raise BenchError(f"restore left {self.srv.cli.scard(ONLINE)} members, "
                             f"expected {self.users}: {out}")

    def verify(self, what):
        """The online set must now hold exactly the live users."""
        cli = self.srv.cli
        size = cli.scard(ONLINE)
        common = cli.execute_command("SINTERCARD", 2, ONLINE, EXPECTED)
        if size != self.live or common != self.live:
            raise BenchError(f"{what} left {size} members ({common} of them live), "
                             f"expected exactly the {self.live} live users")

    # --- methods ----------------------------------------------------------
    def write_conf(self, batch_size=None, url=None, ca_file=None):
        with open(self.conf, "w") as f:
            f.write(f'redis = {{ url = "{url or "unix://" + self.srv.sock}"; }};\n')
            if batch_size is not None:
                f.write(f"reaper = {{ batch_size = {batch_size}; }};\n")
            if ca_file is not None:
                f.write(f'tls = {{ ca_file = "{ca_file}"; }};\n')

    def reaper_batch_size(self):
        """The reaper's default batch size, from its effective configuration."""
        self.write_conf()
        _, _, out, _ = run([self.a.reaper, "-t", "-c", self.conf], "presence-reaper -t")
        m = re.search(r"^\s*batch_size\s*=\s*(\d+);", out, re.M)
        if not m:
            raise BenchError(f"no batch_size in presence-reaper -t output:\n{out}")
        return int(m.group(1))

    def pass_ceiling(self, resp_file, batch):
        s1, r1, out, _ = run([self.a.scanpass] + self.redis_opts +
                             ["--count", str(batch)], "scanpass", measure=self.a.runstat)
        if fields(out, "scanpass")["members"] < self.users:
            raise BenchError(f"SSCAN pass missed members: {out}")
        with open(resp_file, "rb") as f:
            s2, r2, out, _ = run([self.a.redis_cli, "-s", self.srv.sock, "--pipe"],
                                 "redis-cli --pipe", stdin=f, measure=self.a.runstat)
        if f"errors: 0, replies: {self.users}" not in out:
            raise BenchError(f"redis-cli --pipe: {out}")
        return s1 + s2, max(r1, r2)

    def pass_reaper(self):
        st = {}
        seconds, rss, _, _ = run([self.a.reaper, "--once", "-c", self.conf],
                                 "presence-reaper --once", measure=self.a.runstat, stats=st)
        self.last_anon = st.get("maxanon_kib", 0)
        return seconds, rss

    def pass_oldloop(self):
        seconds, rss, out, _ = run([self.a.oldloop] + self.redis_opts, "oldloop",
                                   measure=self.a.runstat)
        if int(fields(out, "oldloop")["removed"]) != self.users - self.live:
            raise BenchError(f"old loop removed the wrong number: {out}")
        return seconds, rss

    def measure(self, fn):
        """One pass on the full set: seconds, RSS, Redis CPU and its longest command."""
        self.restore()
        srv = self.srv
        srv.cli.slowlog_reset()
        cpu0, wait0 = srv.cpu_seconds(), srv.cpu_wait_ms()
        self.last_anon = 0
        seconds, rss = fn()
        cpu, wait = srv.cpu_seconds() - cpu0, srv.cpu_wait_ms() - wait0
        slow_us, slow_cmd, over = srv.slowest()
        return {"s": seconds, "rss": rss, "anon": self.last_anon, "cpu": cpu, "wait": wait,
                "slow_us": slow_us,
                "slow_cmd": slow_cmd, "over": over}


# --- formatting -------------------------------------------------------------
def passes(n):
    return f"{n} pass" if n == 1 else f"{n} passes"


def num(x):
    return f"{x:.3g}" if x < 1000 else f"{x:.0f}"


def summary(samples):
    """Min and median seconds; the longest command of the median pass (robust
    to a pass in which Redis was descheduled) and of the worst pass; the median
    count of commands over LONG_US (a few = preemption, one per batch = the
    batch itself is too long)."""
    secs = [s["s"] for s in samples]
    by_slow = sorted(samples, key=lambda s: s["slow_us"])
    return {"min": min(secs), "median": statistics.median(secs),
            "cpu": statistics.median(s["cpu"] for s in samples),
            "rss": max(s["rss"] for s in samples),
            "anon": max(s["anon"] for s in samples),
            "slow_med": by_slow[(len(by_slow) - 1) // 2], "slow_max": by_slow[-1],
            "over": statistics.median(s["over"] for s in samples),
            "wait_med": statistics.median(s["wait"] for s in samples),
            "wait_max": max(s["wait"] for s in samples)}


def slow_text(s):
    if s["slow_us"] == 0:
        return f"< {SLOWLOG_US / 1000:.2f} ms"
    return f"{s['slow_us'] / 1000:.2f} ms {s['slow_cmd']}"


def slow_cells(r):
    """Longest command (median pass / worst pass), the count over LONG_US and
    how long Redis waited for its CPU (median pass / worst pass)."""
    return (f"{slow_text(r['slow_med'])} / {slow_text(r['slow_max'])} | {r['over']:g} "
            f"| {r['wait_med']:.1f} / {r['wait_max']:.1f}")


def machine_lines(args, pinned):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        kib = int(f.readline().split()[1])
    rv = subprocess.run([args.redis_server, "--version"], capture_output=True,
                        text=True).stdout.strip()
    pv = subprocess.run([args.reaper, "--version"], capture_output=True,
                        text=True).stdout.strip()
    src = os.path.dirname(os.path.abspath(__file__))
    rev = subprocess.run(["git", "-C", src, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip() or "unknown"
    pin = (f"redis-server pinned to CPU {pinned[0]}, every client and this driver "
           f"to CPU {pinned[1]} (sched_setaffinity, as `taskset -c`)"
           if pinned else "nothing pinned")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [f"- machine: {os.cpu_count()} CPUs ({cpu}), "
            f"{kib / 1048576:.1f} GiB RAM, Linux {platform.release()}; "
            f"load average at start {load}",
            f"- {rv}",
            f"- {pv} (source {rev})",
            f"- {pin}"]


# --- sections ---------------------------------------------------------------
def table_section(b, args):
    batch = b.reaper_batch_size()
    b.write_conf()
    rows, checks = [], []
    for n in args.sizes:
        b.generate(n)
        resp = os.path.join(b.srv.dir, "exists.resp")
        run([args.gen, "--emit-exists", resp] + b.gen_opts, "presence-gen --emit-exists")
        pass_fn = {"ceiling": lambda: b.pass_ceiling(resp, batch),
                  "presence-reaper": b.pass_reaper, "old loop": b.pass_oldloop}
        samples = {m: [] for m in METHODS}
        for r in range(args.repeat):
            for m in METHODS:
                log(f"  {n} users, {m}, pass {r + 1}/{args.repeat}...")
                samples[m].append(b.measure(pass_fn[m]))
                if m != "ceiling":
                    b.verify(f"{m} (pass {r + 1})")
        os.unlink(resp)
        res = {m: summary(samples[m]) for m in METHODS}
        for m in METHODS:
            rows.append((b.users, m, res[m], res["ceiling"]["median"],
                         res["old loop"]["median"]))
        checks.append(f"- {b.users} users: after every pass of the old loop and of "
                      f"presence-reaper ({args.repeat} each) the online set was exactly "
                      f"the {b.live} live users")
    print(f"\n### Full pass, {args.stale:.0%} stale (SSCAN COUNT {batch}), "
          f"{passes(args.repeat)} each\n")
    print("| users | method | s (min) | s (median) | users/s | x ceiling "
          "| speed-up vs old loop | longest Redis command: median pass / worst pass "
          f"| commands > {LONG_US / 1000:g} ms | Redis waited for CPU ms "
          "| Redis CPU s | client peak RSS MiB |")
    print("|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for n, m, r, ceil, old in rows:
        print(f"| {n} | {m} | {num(r['min'])} | {num(r['median'])} "
              f"| {n / r['median']:,.0f} | {r['median'] / ceil:.2f} "
              f"| {old / r['median']:.1f} | {slow_cells(r)} "
              f"| {r['cpu']:.2f} | {r['rss'] / 1024:.1f} |")
    print()
    print("\n".join(checks))


def curve_section(b, args):
    b.generate(args.curve_size)
    rows = []
    for size in args.curve_batches:
        b.write_conf(size)
        samples = []
        for r in range(args.repeat):
            log(f"  batch_size {size}, pass {r + 1}/{args.repeat}...")
            samples.append(b.measure(b.pass_reaper))
            b.verify(f"presence-reaper batch_size={size}")
        rows.append((size, summary(samples)))
    b.write_conf()
    print(f"\n### Batch size, presence-reaper --once at {b.users} users, "
          f"{passes(args.repeat)} each\n")
    print("| reaper.batch_size | s (min) | s (median) "
          "| longest Redis command: median pass / worst pass "
          f"| commands > {LONG_US / 1000:g} ms | Redis waited for CPU ms "
          "| Redis CPU s | peak RSS MiB |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|")
    for size, r in rows:
        print(f"| {size} | {num(r['min'])} | {num(r['median'])} | {slow_cells(r)} "
              f"| {r['cpu']:.2f} | {r['rss'] / 1024:.1f} |")


def tls_section(b, args):
    """presence-reaper --once over loopback TCP, plain and TLS, interleaved."""
    srv = b.srv
    b.generate(args.tls_size)
    ways = {"plain TCP": {"url": f"redis://127.0.0.1:{srv.port}/0"},
            "TLS": {"url": f"rediss://127.0.0.1:{srv.tls_port}/0", "ca_file": srv.ca}}
    samples = {w: [] for w in ways}
    for r in range(args.repeat):
        for way, conf in ways.items():
            b.write_conf(**conf)
            log(f"  {b.users} users over {way}, pass {r + 1}/{args.repeat}...")
            samples[way].append(b.measure(b.pass_reaper))
            b.verify(f"presence-reaper over {way} (pass {r + 1})")
    b.write_conf()
    res = {w: summary(samples[w]) for w in ways}
    plain, tls = res["plain TCP"], res["TLS"]
    print(f"\n### TLS, presence-reaper --once at {b.users} users over loopback TCP, "
          f"{passes(args.repeat)} each\n")
    print("| transport | s (min) | s (median) | x plain TCP | Redis CPU s "
          "| peak RSS MiB | peak own (anonymous) memory MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for way, r in res.items():
        print(f"| {way} | {num(r['min'])} | {num(r['median'])} "
              f"| {r['median'] / plain['median']:.2f} | {r['cpu']:.2f} "
              f"| {r['rss'] / 1024:.1f} | {r['anon'] / 1024:.1f} |")
    ratio, rss_mb = tls["median"] / plain["median"], tls["rss"] / 1024
    print(f"\n- TLS / plain TCP: {ratio:.2f} (target <= {TLS_RATIO_TARGET}: "
          f"{'met' if ratio <= TLS_RATIO_TARGET else 'MISSED'}); peak RSS over TLS "
          f"{rss_mb:.1f} MiB (target <= {TLS_RSS_TARGET_MB} MB: "
          f"{'met' if rss_mb * 1.048576 <= TLS_RSS_TARGET_MB else 'MISSED'}), of which "
          f"{tls['anon'] / 1024:.1f} MiB its own anonymous memory, the rest pages of "
          f"the shared libraries")
    print(f"- after every pass over each transport the online set was exactly the "
          f"{b.live} live users")


class Monitor:
    """A MONITOR connection, read only at the end (Redis buffers meanwhile)."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(path)
        self.s.sendall(b"MONITOR\r\n")
        self.buf = b""
        self._until(b"+OK\r\n")

    def _until(self, marker):
        while marker not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise BenchError("MONITOR connection closed")
            self.buf += chunk

    def lines_until(self, marker):
        """Every monitored command up to the one that carries marker."""
        self._until(marker)
        self.s.close()
        head = self.buf[:self.buf.rindex(b"\r\n", 0, self.buf.index(marker))]
        return [ln for ln in head.split(b"\r\n")[1:] if ln.startswith(b"+")]


def idle_run(b, args, users):
    """Commands one leader sends in idle_seconds of its loop over users users."""
    if users:
        b.generate(users, stale=0)
    else:
        b.srv.cli.flushall()
        b.users = b.live = 0
    b.write_conf()
    mon = Monitor(b.srv.sock)
    errlog = open(os.path.join(b.srv.dir, "leader.log"), "w+")
    log(f"  leader in the loop for {args.idle_seconds} s over {users} users...")
    leader = subprocess.Popen([args.reaper, "-c", b.conf], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=errlog,
                              preexec_fn=_die_with_parent)
    try:
        time.sleep(args.idle_seconds)   # the measurement window itself
        if leader.poll() is not None:
            raise BenchError("the leader exited during the idle run")
        marker = b"bench-idle-end-%d" % os.getpid()
        b.srv.cli.echo(marker)
    finally:
        leader.terminate()
        try:
            leader.wait(10)
        except subprocess.TimeoutExpired:
            leader.kill()
            leader.wait()
    sent, inside = {}, 0
    for ln in mon.lines_until(marker):
        m = re.match(rb'\+[\d.]+ \[\d+ (\S+)\] "([^"]*)"', ln)
        if not m:
            continue
        if m.group(1) == b"lua":
            inside += 1
        else:
            name = m.group(2).decode(errors="replace").upper()
            sent[name] = sent.get(name, 0) + 1
    errlog.seek(0)
    cycles = errlog.read().count("cycle done")
    errlog.close()
    total = sum(sent.values())
    by = ", ".join(f"{k} {v}" for k, v in sorted(sent.items(), key=lambda kv: -kv[1]))
    return f"| {users} | {total} | {total / args.idle_seconds:.2f} | {cycles} | {by} | {inside} |"


def idle_section(b, args):
    rows = [idle_run(b, args, n) for n in args.idle_users]
    print(f"\n### Idle leader: nobody stale, default settings, {args.idle_seconds:g} s "
          f"in the loop\n")
    print("| users | commands sent | per second | cycles | by command | run by its scripts |")
    print("|---:|---:|---:|---:|---|---:|")
    for row in rows:
        print(row)


# --- main -------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="10000,100000,1000000",
                   help="comma-separated user counts (default %(default)s)")
    p.add_argument("--large", action="store_true", help="add 10000000 to --sizes")
    p.add_argument("--repeat", type=int, default=3, help="passes per method (default 3)")
    p.add_argument("--stale", type=float, default=0.01, help="stale fraction (default 0.01)")
    p.add_argument("--odd", action="store_true", help="add presence-gen's odd IDs")
    p.add_argument("--table", action="store_true", help="the main table (the default)")
    p.add_argument("--batch-curve", action="store_true",
                   help="presence-reaper --once for each --curve-batches size")
    p.add_argument("--idle", action="store_true",
                   help="commands per second sent by a leader in the loop")
    p.add_argument("--tls", action="store_true",
                   help="presence-reaper over TLS against plain TCP on loopback")
    p.add_argument("--tls-size", type=int, default=1000000,
                   help="users for --tls (default 1000000)")
    p.add_argument("--all", action="store_true",
                   help="table, batch curve, idle and TLS")
    p.add_argument("--curve-size", type=int, default=1000000)
    p.add_argument("--curve-batches", default=CURVE_BATCHES)
    p.add_argument("--idle-users", default="0,10000,100000",
                   help="comma-separated user counts for --idle (default %(default)s)")
    p.add_argument("--idle-seconds", type=float, default=60)
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin redis-server and the clients to different CPUs")
    p.add_argument("--build", help="meson build folder holding all the programs")
    p.add_argument("--reaper", help="presence-reaper binary")
    p.add_argument("--gen", help="presence-gen binary")
    p.add_argument("--oldloop", help="oldloop binary")
    p.add_argument("--scanpass", help="scanpass binary")
    p.add_argument("--runstat", help="runstat binary")
    p.add_argument("--redis-server", default="redis-server")
    p.add_argument("--redis-cli", default="redis-cli")
    a = p.parse_args(argv)
    defaults = {"reaper": "reaper/presence-reaper", "gen": "tests/tools/presence-gen",
                "oldloop": "tests/bench/oldloop", "scanpass": "tests/bench/scanpass",
                "runstat": "tests/bench/runstat"}
    fill_programs(p, a, defaults)
    a.sizes = [int(s) for s in a.sizes.split(",")] + ([10000000] if a.large else [])
    a.idle_users = [int(s) for s in a.idle_users.split(",")]
    a.curve_batches = [int(s) for s in a.curve_batches.split(",")]
    if a.repeat < 1:
        p.error("--repeat must be at least 1")
    if a.all:
        a.table = a.batch_curve = a.idle = a.tls = True
    elif not (a.batch_curve or a.idle or a.tls):
        a.table = True
    return a


def fill_programs(parser, args, defaults):
    """Each program not named by its option is defaults[option] under --build."""
    for key, rel in defaults.items():
        if getattr(args, key) is None:
            if args.build is None:
                parser.error(f"--{key} or --build is needed")
            setattr(args, key, os.path.join(args.build, rel))


def pin_cpus(args):
    """(redis CPU, client CPU), or None when pinning is off or impossible."""
    cpus = sorted(os.sched_getaffinity(0))
    if args.no_pin or len(cpus) < 2:
        return None
    os.sched_setaffinity(0, {cpus[1]})     # this driver and, by inheritance, clients
    return cpus[0], cpus[1]


def _on_signal(signo, _frame):
    raise SystemExit(128 + signo)


def main(argv):
    args = parse_args(argv)
    for prog in (args.redis_server, args.redis_cli):
        if shutil.which(prog) is None:
            log(f"bench: {prog} not found")
            return 77
    for signo in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signo, _on_signal)

    def body(b, pinned):
        print("## presence-reaper benchmark\n")
        print("\n".join(machine_lines(args, pinned)))
        if args.table:
            table_section(b, args)
        if args.batch_curve:
            curve_section(b, args)
        if args.idle:
            idle_section(b, args)
        if args.tls:
            tls_section(b, args)
    return with_server(args, body, "bench", tls=args.tls)


def with_server(args, body, name, tls=False, tcp=False):
    """Run body(Bench, pinned CPUs) on a throwaway redis-server, pinned when it
    can be, stopped however body ends. The exit status: 0, or 1 on a BenchError."""
    pinned = pin_cpus(args)
    srv = None
    try:
        srv = Server(args.redis_server, pinned[0] if pinned else None, tls=tls, tcp=tcp)
        body(Bench(args, srv), pinned)
    except BenchError as e:
        log(f"{name}: {e}")
        return 1
    finally:
        if srv is not None:
            srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""Crash-to-offline latency, Redis CPU and reaper memory: the sweep alone,
key-expiry watching, and the expiry calendar, side by side.

One throwaway redis-server on a Unix socket holds N online users whose
socket sets live 60 s and are refreshed every 30 s, as the realtime servers
do: a heartbeat script refreshes a slice of the live users every 100 ms, so
each is refreshed once every 30 s and no live set is ever under 30 s from
expiry. The churn driver then "crashes" CHURN% of them per minute, spread
evenly: a crashed user's server stops refreshing, so its set runs out 30 to
60 s later, at the expiry time Redis reports for it then (PEXPIRETIME); a
fresh user connects in its place, so the set stays at N. presence-reaper
runs with events.mode = "stream", so every removal leaves its Redis-clock
timestamp: latency = removal ts - expiry, for every crashed user whose set
ran out during the run.

Three runs of the same length, each on a fresh server after a 35 s warm-up
(every live set refreshed once, the reaper's first pass done): the reaper
sweeping at the default interval, sweeping plus reaper.watch_expiry, and
sweeping plus reaper.track_expiry. The driver's scripts go as plain EVAL and
the reaper's as EVALSHA, so INFO commandstats tells them apart: Redis CPU
for the reaper is INFO used_cpu_user over the run, less the time inside the
driver's EVALs, less the same server's rest (its own housekeeping, the
driver's socket) measured the same way over a stretch with the reaper
stopped (SIGSTOP), scaled to one hour. System time is printed but left out
of that figure: on a VM it comes in bursts that follow no command (a
redis-server serving only the 100 ms heartbeats of 20k users spends 0 s
user and 0.13 s system in some seconds, nothing in others). The reaper's peak
RSS is its VmHWM. redis-server is pinned to one CPU, the driver and the
reaper to the other.

    /usr/bin/python3 tests/bench/churn.py --build build [-n 1000000] [--seconds 120]
                                          [--plots DIR]

With --plots, the latencies also go to DIR/crash-offline.json and gnuplot
draws their distribution, DIR/crash-offline.png (tests/bench/plots.py).
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import redis

# The user's server died: its set is no longer refreshed. Returns when it runs out.
CRASH = """
return redis.call('PEXPIRETIME', KEYS[1])
"""
CONNECT = """
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if redis.call('SCARD', KEYS[2]) == 1 then redis.call('SADD', KEYS[1], ARGV[1]) end
"""
HEARTBEAT = """
for _, id in ipairs(ARGV) do
  redis.call('PEXPIRE', 'presence:user:' .. id .. ':sockets', 60000)
end
"""
ONLINE = "presence:online-users"
STREAM = "presence:events"
HEARTBEAT_S, TICK_S, TTL_MS = 30.0, 0.1, 60000
MODES = ("sweep", "watch", "track")
LABEL = {"sweep": "sweep only", "watch": "watch_expiry", "track": "track_expiry"}


def key(uid):
    return "presence:user:%s:sockets" % uid


class Server:
    def __init__(self, cpu):
        self.dir = tempfile.mkdtemp(prefix="churn-")
        self.sock = os.path.join(self.dir, "redis.sock")
        cmd = ["redis-server", "--port", "0", "--unixsocket", self.sock, "--save", "",
               "--appendonly", "no", "--dir", self.dir, "--notify-keyspace-events", "Ex"]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu)] + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.r = redis.Redis(unix_socket_path=self.sock)
                self.r.ping()
                break
            except (redis.ConnectionError, FileNotFoundError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def cpu(self):
        """Redis user and system CPU seconds, and those inside the driver's
        scripts (EVAL)."""
        i = self.r.info("cpu")
        ev = self.r.info("commandstats").get("cmdstat_eval", {"usec": 0})
        return i["used_cpu_user"], i["used_cpu_sys"], ev["usec"] / 1e6

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Script:
    """A driver script sent as plain EVAL: the reaper sends only EVALSHA, so
    the time inside these is the driver's alone (INFO commandstats)."""

    def __init__(self, body):
        self.body = body

    def __call__(self, keys=(), args=(), client=None):
        return client.execute_command("EVAL", self.body, len(keys), *keys, *args)


class Fleet(threading.Thread):
    """The realtime servers: refresh every live user once per 30 s, in 100 ms
    slices; crash per_minute users a minute (no more refreshes), each replaced
    by a fresh user. crashes: {uid: expiry_ms} while recording."""

    def __init__(self, srv, n, per_minute, tag):
        super().__init__(daemon=True)
        self.r = redis.Redis(unix_socket_path=srv.sock)
        self.live = ["u%d" % i for i in range(n)]
        self.per_tick = max(1, int(round(n * TICK_S / HEARTBEAT_S)))
        self.rate = per_minute / 60.0
        self.tag = tag
        self.crashes = {}
        self.recording = False
        self.stopping = False
        self.late_ticks = 0
        self.fresh = 0

    def crash_some(self, k, pipe):
        crash, connect = Script(CRASH), Script(CONNECT)
        victims = []
        for _ in range(k):
            at = (self.fresh * 7919 + 13) % len(self.live)     # spread over the fleet
            self.fresh += 1
            victims.append(self.live[at])
            crash(keys=[key(self.live[at])], client=pipe)
            uid = "%s-%d" % (self.tag, self.fresh)
            connect(keys=[ONLINE, key(uid)], args=[uid, "s1", TTL_MS], client=pipe)
            self.live[at] = uid
        return victims

    def run(self):
        beat = Script(HEARTBEAT)
        pos, crashed, t0 = 0, 0, time.monotonic()
        next_tick = t0
        while not self.stopping:
            pipe = self.r.pipeline(transaction=False)
            ids = [self.live[(pos + i) % len(self.live)] for i in range(self.per_tick)]
            pos = (pos + self.per_tick) % len(self.live)
            beat(args=ids, client=pipe)
            victims = []
            if self.recording:
                due = int((time.monotonic() - self.rec_t0) * self.rate)
                victims = self.crash_some(due - crashed, pipe)
                crashed = due
            res = pipe.execute()
            for uid, exp in zip(victims, res[1::2]):
                self.crashes[uid] = exp
            next_tick += TICK_S
            pause = next_tick - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                self.late_ticks += 1

    def start_recording(self):
        self.rec_t0 = time.monotonic()
        self.recording = True

    def stop_recording(self):
        self.recording = False


def peak_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def start_reaper(args, srv, mode):
    conf = os.path.join(srv.dir, "reaper.conf")
    with open(conf, "w") as f:
        f.write('redis = { url = "unix://%s"; };\n' % srv.sock)
        f.write('events = { mode = "stream"; stream_maxlen = 0; };\n')
        f.write('reaper = { watch_expiry = %s; track_expiry = %s; };\n' %
                ("true" if mode == "watch" else "false", "true" if mode == "track" else "false"))
    cmd = [args.reaper, "-c", conf]
    if args.cpu is not None:
        cmd = ["taskset", "-c", str(1 - args.cpu)] + cmd
    log = open(os.path.join(srv.dir, "reaper.log"), "w")
    p = subprocess.Popen(cmd, env=dict(os.environ, POD_NAME="bench"), stderr=log)
    deadline = time.monotonic() + 600
    while "cycle done" not in open(log.name).read():
        if time.monotonic() > deadline or p.poll() is not None:
            raise SystemExit("the reaper's first pass did not end:\n" + open(log.name).read())
        time.sleep(0.2)
    return p, log.name


def latencies(srv, crashes):
    lat, start = {}, "-"
    while True:
        got = srv.r.xrange(STREAM, min=start, count=10000)
        for eid, f in got:
            uid = f[b"user_id"].decode()
            if uid in crashes:
                lat[uid] = json.loads(f[b"event"])["ts"] - crashes[uid]
        if len(got) < 10000:
            return lat
        start = "(" + got[-1][0].decode()


def window(srv, fleet, seconds):
    """Over a stretch of heartbeats and churn, per hour: Redis user CPU
    seconds outside the driver's scripts, its system CPU seconds, and the
    seconds inside the driver's scripts."""
    (user0, sys0, ev0), t0 = srv.cpu(), time.monotonic()
    fleet.start_recording()
    while time.monotonic() - t0 < seconds:
        time.sleep(0.2)
    fleet.stop_recording()
    user, sys_, ev = srv.cpu()
    hour = 3600 / (time.monotonic() - t0)
    return ((user - user0) - (ev - ev0)) * hour, (sys_ - sys0) * hour, (ev - ev0) * hour


def run_mode(args, mode):
    srv = Server(args.cpu)
    try:
        if args.cpu is not None:
            os.sched_setaffinity(0, {1 - args.cpu})
        # A long TTL first: the heartbeat gives every set its 60 s within 30 s.
        subprocess.run([args.gen, "--socket", srv.sock, "-n", str(args.n), "--stale", "0",
                        "--ttl", "900"], check=True, stdout=subprocess.DEVNULL)
        fleet = Fleet(srv, args.n, args.n * args.churn / 100.0, mode)
        fleet.start()
        t_warm = time.monotonic()
        reaper, log = start_reaper(args, srv, mode)
        while time.monotonic() - t_warm < HEARTBEAT_S + 5:
            time.sleep(0.2)
        mark = os.path.getsize(log)
        t_run = time.monotonic()
        cpu, sys_cpu, driver = window(srv, fleet, args.seconds)
        secs = time.monotonic() - t_run
        during = open(log).read()[mark:]
        crashes = dict(fleet.crashes)
        # The crashed sets still to run out, and to be reaped (a sweep takes an interval).
        end = max(crashes.values()) + 35000 if crashes else 0
        while srv_ms(srv) < end:
            time.sleep(0.5)
        lat = latencies(srv, crashes)
        rss = peak_rss_kb(reaper.pid)
        # The same server, heartbeats and churn with the reaper stopped: its baseline.
        reaper.send_signal(signal.SIGSTOP)
        base_cpu, base_sys, _ = window(srv, fleet, max(60.0, args.seconds / 2))
        reaper.send_signal(signal.SIGCONT)
        reaper.send_signal(signal.SIGTERM)
        reaper.wait(10)
        fleet.stopping = True
        fleet.join(5)
        text = open(log).read()
        checks = sum(int(x) for x in re.findall(r"calendar \((\d+) checks\)", during))
        return {"net": cpu - base_cpu, "sys": sys_cpu, "base_sys": base_sys,
                "checks": checks / secs * 3600,
                "tracked": [int(x) for x in re.findall(r"tracking (\d+) sets", during)],
                "base": base_cpu, "driver": driver,
                "crashed": len(crashes),
                "lat": sorted(v for u, v in lat.items()), "reaped": len(lat), "rss": rss,
                "late_ticks": fleet.late_ticks, "log": text,
                "passes": [float(x) for x in re.findall(r"cycle done: .* duration=([\d.]+)s", text)]}
    finally:
        srv.stop()


def srv_ms(srv):
    s, us = srv.r.time()
    return s * 1000 + us // 1000


def pct(v, p):
    return v[min(len(v) - 1, int(len(v) * p / 100.0))] if v else float("nan")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", help="meson build folder (gives --reaper and --gen)")
    p.add_argument("--reaper")
    p.add_argument("--gen")
    p.add_argument("-n", type=int, default=1000000)
    p.add_argument("--churn", type=float, default=1.0, help="percent of users crashing a minute")
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--cpu", type=int, default=1, help="CPU for redis-server (-1: no pinning)")
    p.add_argument("--plots", help="folder for crash-offline.png (gnuplot, plots.py) and "
                   "the latencies it is drawn from")
    a = p.parse_args(argv)
    if a.build:
        a.reaper = a.reaper or os.path.join(a.build, "reaper/presence-reaper")
        a.gen = a.gen or os.path.join(a.build, "tests/tools/presence-gen")
    if not a.reaper or not a.gen:
        p.error("give --build, or --reaper and --gen")
    a.cpu = None if a.cpu < 0 or (os.cpu_count() or 1) < 2 else a.cpu
    a.modes = a.modes.split(",")
    if not set(a.modes) <= set(MODES):
        p.error("--modes: " + ", ".join(MODES))
    return a


def plot(args, res):
    """The latencies of each mode, as JSON, and their distribution drawn by plots.py."""
    os.makedirs(args.plots, exist_ok=True)
    data = os.path.join(args.plots, "crash-offline.json")
    with open(data, "w") as f:
        json.dump({"users": args.n, "churn": args.churn,
                   "modes": {LABEL[m]: res[m]["lat"] for m in args.modes}}, f)
    subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "plots.py"),
                    "churn", data, args.plots], check=True)


def main(argv):
    args = parse_args(argv)
    res = {}
    for m in args.modes:
        print(f"churn: {args.n} users, {m}...", file=sys.stderr, flush=True)
        res[m] = run_mode(args, m)
    print(f"{args.n} online users (socket sets of 60 s refreshed every 30 s), {args.churn:g}% "
          f"crashing per minute, {args.seconds:.0f} s a run, default interval (30 s); "
          f"redis-server {'pinned to CPU %d' % args.cpu if args.cpu is not None else 'not pinned'}\n")
    print("| mode | crashed | reaped | TTL end to offline p50 / p99 / max | "
          "Redis user CPU / hour for the reaper | Redis system CPU / hour, with / without "
          "the reaper | passes, median s | reaper peak RSS |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for m in args.modes:
        r = res[m]
        lat, passes = r["lat"], sorted(r["passes"])
        print(f"| {LABEL[m]} | {r['crashed']} | {r['reaped']} | "
              f"{pct(lat, 50) / 1000:.2f} s / {pct(lat, 99) / 1000:.2f} s / "
              f"{(lat[-1] if lat else float('nan')) / 1000:.2f} s | {r['net']:.0f} s | "
              f"{r['sys']:.0f} s / {r['base_sys']:.0f} s | "
              f"{pct(passes, 50):.2f} ({len(passes)}) | {r['rss'] / 1024:.1f} MB |")
    print("\nRedis user CPU for the reaper: over the run, less the time inside the driver's "
          "scripts (heartbeats, crashes, connects), less the rest with the reaper stopped "
          "(SIGSTOP), per hour. The driver's scripts, per hour: " +
          ", ".join(f"{LABEL[m]} {res[m]['driver']:.0f} s" for m in args.modes) +
          "; the rest with the reaper stopped: " +
          ", ".join(f"{LABEL[m]} {res[m]['base']:.0f} s" for m in args.modes) +
          ". Heartbeat ticks late: " + ", ".join(f"{m} {res[m]['late_ticks']}" for m in args.modes))
    if args.plots:
        plot(args, res)
    if "track" in res:
        t = res["track"]
        print(f"\ntrack_expiry: {t['checks']:.0f} calendar checks per hour; sets tracked at the "
              f"end of each pass in the run: {', '.join(str(x) for x in t['tracked'])}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

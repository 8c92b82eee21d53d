#!/usr/bin/env python3
"""Crash-to-offline latency and Redis CPU: key-expiry watching vs sweep only.

One throwaway redis-server on a Unix socket holds N online users (long
TTLs, so no heartbeat traffic is needed). A churn driver then "crashes"
CHURN% of them per minute, spread evenly: each crash gives the user's
socket set a 1 s TTL (as a dead server's set runs out) and records the
exact expiry time from Redis's clock; a fresh user connects in its place,
so the set stays at N. presence-reaper runs with events.mode = "stream",
so every removal leaves its Redis-clock timestamp: latency = removal ts -
expiry ts, for every crashed user.

Three runs of the same length: churn alone (baseline), the reaper sweeping
at the default interval, and the reaper sweeping plus watch_expiry. Redis
CPU is INFO used_cpu_sys + used_cpu_user over the run, minus the baseline,
scaled to one hour.

    /usr/bin/python3 tests/bench/churn.py --reaper build/reaper/presence-reaper \\
        --gen build/tests/tools/presence-gen [-n 1000000] [--seconds 120]
"""
import argparse
import json
import os
import threading
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import redis

CRASH = """
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local t = redis.call('TIME')
return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
"""
CONNECT = """
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
if redis.call('SCARD', KEYS[2]) == 1 then redis.call('SADD', KEYS[1], ARGV[1]) end
"""
ONLINE = "presence:online-users"
STREAM = "presence:events"


def key(uid):
    return "presence:user:%s:sockets" % uid


class Server:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="churn-")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.sock, "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--notify-keyspace-events", "Ex"],
            stdout=subprocess.DEVNULL)
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
        i = self.r.info("cpu")
        return i["used_cpu_sys"] + i["used_cpu_user"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def churn(srv, n, per_minute, seconds, tag):
    """Crash per_minute users a minute for `seconds`; returns {uid: expiry_ms}."""
    crash = srv.r.register_script(CRASH)
    connect = srv.r.register_script(CONNECT)
    rate = per_minute / 60.0
    expiry = {}
    t0 = time.monotonic()
    done = 0
    victim = 0
    while time.monotonic() - t0 < seconds:
        due = int((time.monotonic() - t0) * rate)
        if due > done:
            pipe = srv.r.pipeline(transaction=False)
            batch = []
            for _ in range(due - done):
                uid = "u%d" % (victim * 7919 % n)      # spread over the set
                victim += 1
                batch.append(uid)
                crash(keys=[key(uid)], args=[1000], client=pipe)
                fresh = "%s-%d" % (tag, victim)
                connect(keys=[ONLINE, key(fresh)], args=[fresh, "s1", 86400], client=pipe)
            for uid, res in zip(batch, pipe.execute()[0::2]):
                expiry[uid] = res
            done = due
        time.sleep(0.01)
    return expiry


class ExpiryListener(threading.Thread):
    """Notes when Redis actually expires each socket set (its expired event)."""

    def __init__(self, srv):
        super().__init__(daemon=True)
        self.ps = redis.Redis(unix_socket_path=srv.sock).pubsub(ignore_subscribe_messages=True)
        self.ps.subscribe("__keyevent@0__:expired")
        self.seen = {}
        self.stop = False

    def run(self):
        while not self.stop:
            m = self.ps.get_message(timeout=0.2)
            if m and m["type"] == "message":
                k = m["data"].decode()
                if k.startswith("presence:user:") and k.endswith(":sockets"):
                    self.seen[k[len("presence:user:"):-len(":sockets")]] = time.time() * 1000


def run_mode(args, mode):
    srv = Server()
    try:
        subprocess.run([args.gen, "--socket", srv.sock, "-n", str(args.n), "--stale", "0",
                        "--ttl", "86400"], check=True, stdout=subprocess.DEVNULL)
        reaper = None
        if mode != "baseline":
            conf = os.path.join(srv.dir, "reaper.conf")
            with open(conf, "w") as f:
                f.write('redis = { url = "unix://%s"; };\n' % srv.sock)
                f.write('events = { mode = "stream"; stream_maxlen = 0; };\n')
                f.write('reaper = { watch_expiry = %s; };\n' % ("true" if mode == "watch" else "false"))
            reaper = subprocess.Popen([args.reaper, "-c", conf, "-q"], env=dict(os.environ, POD_NAME="bench"))
            deadline = time.monotonic() + 60       # its first pass over the set
            while srv.r.get("presence:reaper:leader") is None or srv.r.xlen(STREAM) < 0:
                if time.monotonic() > deadline:
                    raise SystemExit("the reaper did not take the lock")
                time.sleep(0.1)
        listener = ExpiryListener(srv)
        listener.start()
        cpu0, t0 = srv.cpu(), time.monotonic()
        expiry = churn(srv, args.n, args.n * args.churn / 100.0, args.seconds, mode)
        cpu1, t1 = srv.cpu(), time.monotonic()
        lat, after_event = [], []
        if reaper:
            # Let the last crashes expire and be reaped (a sweep may take an interval).
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline and srv.r.xlen(STREAM) < len(expiry):
                time.sleep(0.2)
            for _, f in srv.r.xrange(STREAM):
                uid = f[b"user_id"].decode()
                if uid in expiry:
                    ts = json.loads(f[b"event"])["ts"]
                    lat.append(ts - expiry[uid])
                    if uid in listener.seen:
                        after_event.append(ts - listener.seen[uid])
            reaper.send_signal(signal.SIGTERM)
            reaper.wait(10)
        listener.stop = True
        return {"cpu": cpu1 - cpu0, "secs": t1 - t0, "crashed": len(expiry), "lat": sorted(lat),
                "after_event": sorted(after_event)}
    finally:
        srv.stop()


def pct(v, p):
    return v[min(len(v) - 1, int(len(v) * p / 100.0))] if v else float("nan")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reaper", required=True)
    p.add_argument("--gen", required=True)
    p.add_argument("-n", type=int, default=1000000)
    p.add_argument("--churn", type=float, default=1.0, help="percent of users crashing a minute")
    p.add_argument("--seconds", type=float, default=120)
    args = p.parse_args()
    res = {m: run_mode(args, m) for m in ("baseline", "sweep", "watch")}
    base = res["baseline"]["cpu"] / res["baseline"]["secs"]
    print(f"{args.n} online users, {args.churn}% crashing per minute, {args.seconds:.0f} s a run, "
          "default interval (30 s)\n")
    print("| mode | crashed | reaped | TTL end to offline p50 / p99 | Redis expiry event to "
          "offline p50 / p99 | Redis CPU / hour (net of churn) |")
    print("|---|---|---|---|---|---|")
    for m in ("sweep", "watch"):
        r = res[m]
        lat, ev = r["lat"], r["after_event"]
        net = (r["cpu"] / r["secs"] - base) * 3600
        print(f"| {'sweep only' if m == 'sweep' else 'watch_expiry'} | {r['crashed']} | {len(lat)} | "
              f"{pct(lat, 50) / 1000:.2f} s / {pct(lat, 99) / 1000:.2f} s | "
              f"{pct(ev, 50) / 1000:.3f} s / {pct(ev, 99) / 1000:.3f} s | {net:.0f} s |")
    print(f"\nbaseline (churn alone): {base * 3600:.0f} s of Redis CPU per hour")


if __name__ == "__main__":
    sys.exit(main())

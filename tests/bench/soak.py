#!/usr/bin/python3
"""Soak: presence churn plus a fault every minute, for --minutes (default 10).

One throwaway redis-server (the integration harness's); two presence-reaper
replicas, each through a fault proxy of its own (tests/integration/
faultproxy.py), each with its metrics listener; 5,000 steady users and four
realtime servers churning 400 more (connect, heartbeat, disconnect, crash),
straight to Redis. Each minute one fault, in turn, hits the proxy of the
replica that leads: 100 ms round trips, replies byte by byte, a blackhole
healed after 10 s, a half-open connection, a reset in the middle of a reply,
its replies paused 5 s, new connections refused 10 s, the leader's
connections killed by Redis (CLIENT KILL ID, found by their client name),
Redis busy 3 s (DEBUG SLEEP).

Then the minute's check: the churn stops, the crashed users' sets run out,
the leader makes two passes, and the online set must be exactly the users
with a live socket set; a sampler checks all through the minute that no user
with a live socket set was ever missing from it. It prints, each minute, the
fault, the invariant, each replica's RSS and open file descriptors, and the
server's client connections; at the end the first and last of each. Exit
status 1 when an invariant failed or a replica died.

    /usr/bin/python3 tests/bench/soak.py --build build [--minutes 60]
    bash tests/bench/soak.sh [MINUTES]
"""

import argparse
import os
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from faultproxy import FaultProxy                            # noqa: E402
import harness                                               # noqa: E402
from harness import Harness, free_port, wait_until          # noqa: E402
from test_churn import Sampler, Server, wait_settled        # noqa: E402

STEADY = [b"steady-%05d" % i for i in range(5000)]
POOLS = [[b"s%d-u%d" % (i, j) for j in range(100)] for i in range(4)]
EVERYONE = [u for p in POOLS for u in p]
SETTINGS = {"reaper.interval": 2, "reaper.batch_size": 200, "leader.lease": 4,
            "leader.renew": 1, "redis.command_timeout": 1, "events.mode": "stream",
            "events.stream_maxlen": 10000}


def fault_latency(w, px, leader):
    px.latency(0.05)
    time.sleep(20)
    px.latency(0)


def fault_split(w, px, leader):
    px.split(True)
    time.sleep(20)
    px.split(False)


def fault_blackhole(w, px, leader):
    px.blackhole()
    time.sleep(10)
    px.heal()


def fault_half_open(w, px, leader):
    px.half_open()


def fault_reset(w, px, leader):
    px.reset_mid_reply(7)


def fault_pause(w, px, leader):
    px.pause("down")
    time.sleep(5)
    px.resume("down")


def fault_refuse(w, px, leader):
    px.refuse(True)
    px.half_open()                  # so the leader has to connect again
    time.sleep(10)
    px.refuse(False)


def fault_client_kill(w, px, leader):
    """Redis drops the leader's connections (by their client name), no one else's."""
    ids = [c["id"] for c in w.r.client_list() if c.get("name") == f"presence-reaper@{leader.name}"]
    if not ids:
        raise AssertionError(f"no connection named presence-reaper@{leader.name} to kill")
    for i in ids:
        w.r.execute_command("CLIENT", "KILL", "ID", i)


def fault_busy(w, px, leader):
    w.redis.client(socket_timeout=10).execute_command("DEBUG", "SLEEP", "3")


FAULTS = [fault_latency, fault_split, fault_blackhole, fault_half_open, fault_reset,
          fault_pause, fault_refuse, fault_client_kill, fault_busy]


def proc_figures(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def leader_of(w, replicas):
    return w.holder([d for d, _ in replicas])


def one_minute(w, replicas, n, seconds, faults):
    """Churn and one fault for about a minute; then the check. Returns (fault, ok, why)."""
    fault = faults[n % len(faults)]
    stop, stop_sampler = threading.Event(), threading.Event()
    fleet = [Server(w, i, POOLS[i], stop) for i in range(len(POOLS))]
    sampler = Sampler(w, EVERYONE, stop_sampler)
    sampler.start()
    for s in fleet:
        s.start()
    t0 = time.monotonic()
    lead = leader_of(w, replicas) or replicas[0][0]
    px = next(p for d, p in replicas if d is lead)
    fault(w, px, lead)
    while time.monotonic() - t0 < seconds:
        time.sleep(0.5)
    stop.set()
    for s in fleet:
        s.join(10)
    errors = [repr(s.error) for s in fleet if s.error]
    try:
        wait_settled(w, EVERYONE)
        lead = wait_until(lambda: leader_of(w, replicas), 30, what="a leader")
        lead.wait_cycles(2, 30)
    except AssertionError as e:
        errors.append(str(e))
    stop_sampler.set()
    sampler.join(10)
    pipe = w.r.pipeline(transaction=False)
    for u in EVERYONE + STEADY:
        pipe.exists(w.rt.key(u))
    live = {u for u, e in zip(EVERYONE + STEADY, pipe.execute()) if e}
    online = w.members()
    if sampler.violations:
        errors.append(f"{len(sampler.violations)} samples saw live users missing")
    if online != live:
        errors.append(f"stale left {len(online - live)}, live missing {len(live - online)}")
    if not all(d.alive() for d, _ in replicas):
        errors.append("a replica died")
    return fault.__name__[len("fault_"):], not errors, "; ".join(errors)


def _on_signal(signo, _frame):
    raise SystemExit(128 + signo)       # so the servers and replicas are stopped


def main(argv):
    for signo in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signo, _on_signal)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    p.add_argument("--minutes", type=int, default=10)
    p.add_argument("--seconds", type=float, default=45.0,
                   help="churn and fault in each minute (the check takes the rest)")
    p.add_argument("--faults", default=",".join(f.__name__[len("fault_"):] for f in FAULTS),
                   help="the faults, in turn (default: all)")
    a = p.parse_args(argv)
    by_name = {f.__name__[len("fault_"):]: f for f in FAULTS}
    unknown = [x for x in a.faults.split(",") if x not in by_name]
    if unknown:
        p.error(f"--faults: unknown {', '.join(unknown)}; known: {', '.join(by_name)}")
    faults = [by_name[x] for x in a.faults.split(",")]
    os.environ["PRESENCE_REAPER_BIN"] = os.path.abspath(
        os.path.join(a.build, "reaper", "presence-reaper"))
    harness._BIN = os.environ["PRESENCE_REAPER_BIN"]
    w = Harness()
    proxies, replicas = [], []
    failed = 0
    try:
        w.rt.connect_many(STEADY, ttl=7 * 86400)     # their servers never crash
        for name in ("soak-a", "soak-b"):
            px = FaultProxy("127.0.0.1", w.redis.port)
            proxies.append(px)
            conf = w.config(dict(SETTINGS, **{"metrics.listen": f"127.0.0.1:{free_port()}"}),
                            url=px.url)
            replicas.append((w.start(["-c", str(conf)], env={"POD_NAME": name}, name=name), px))
        wait_until(lambda: leader_of(w, replicas), 30, what="a leader")
        print("| minute | fault | invariant | RSS a / b, kB | fds a / b | Redis clients |")
        print("|---:|---|---|---|---|---:|", flush=True)
        rows = []
        for n in range(a.minutes):
            t0 = time.monotonic()
            fault, ok, why = one_minute(w, replicas, n, a.seconds, faults)
            figs = [proc_figures(d.pid) if d.alive() else (0, 0) for d, _ in replicas]
            clients = w.r.info("clients")["connected_clients"]
            rows.append(figs)
            failed += not ok
            print(f"| {n + 1} | {fault} | {'held' if ok else 'FAILED: ' + why} | "
                  f"{figs[0][0]} / {figs[1][0]} | {figs[0][1]} / {figs[1][1]} | {clients} |",
                  flush=True)
            while time.monotonic() - t0 < 60:
                time.sleep(0.5)
        first, last = rows[0], rows[-1]
        print(f"\n{a.minutes} minutes, invariant held in {a.minutes - failed}; RSS kB first / "
              f"last: a {first[0][0]} / {last[0][0]}, b {first[1][0]} / {last[1][0]}; fds "
              f"first / last: a {first[0][1]} / {last[0][1]}, b {first[1][1]} / {last[1][1]}")
    finally:
        w.close()
        for px in proxies:
            px.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""Sharded presence on a local Redis Cluster: rounds of every shard's pass.

A throwaway Cluster of six redis-servers on loopback (three primaries, three
replicas; tests/integration/clusterutil.py, stopped on exit and on signals)
holds SHARDS shards of USERS users each, as the sharded key templates name
them ("presence:{N}:online-users", "presence:{N}:user:<id>:sockets"), each
shard loaded by presence-gen straight into the primary that serves its hash
slot; a fraction of each shard is stale (in the online set, no socket set).

For each replica count, that many presence-reaper processes run the loop
(distinct POD_NAME, keys.shards = SHARDS, interval 3600 s so no pass runs
unasked). Once the replicas hold their fair shares, each round puts the stale
users back (presence-gen --restore) and sends every replica SIGHUP: a reload
gives every shard back and takes it again, and a shard taken is passed at
once, so all the shards' passes start together. The round ends when every
shard has logged its "cycle done" and every online set is exactly its live
users. Per round: wall time from the first pass's start to the last pass's
end (log timestamps minus each pass's duration), the users removed (must
equal the stale users put back), Redis CPU (INFO used_cpu_sys +
used_cpu_user) on each primary before and after, the reapers' own CPU
(/proc/PID/stat) and their peak RSS (VmHWM).

From the measured Redis CPU per user it projects a larger deployment
(--project-users, --project-primaries, --project-shards), saying what is
measured and what is projected.

Prints Markdown on stdout, progress on stderr.
"""

import argparse
import concurrent.futures
import datetime
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import redis  # noqa: E402

from bench import (BenchError, _die_with_parent, _on_signal, fields, fill_programs,  # noqa: E402
                   log, machine_lines, run)
from clusterutil import Cluster  # noqa: E402
from harness import SCRUBBED_ENV, proc_cpu_seconds, wait_until  # noqa: E402

ONLINE = "presence:{%s}:online-users"
PREFIX = "presence:{%s}:user:"
SUFFIX = ":sockets"
LOCK = "presence:{%s}:reaper-lock"
MEMBERS = "presence:{members}:reaper-lock"     # leader.members_key's default here
SOCKET_TTL = 86400      # no socket set may expire during a run
LEASE, RENEW = 5, 1     # standbys try for a free shard every second: short handovers
NODE_TIMEOUT_MS = 15000  # no failover because a busy 2-core machine answered late
SEED = 1                # presence-gen's default --seed
MASK = (1 << 64) - 1
CYCLE_RE = re.compile(r"cycle done: scanned=(\d+) stale=(\d+) removed=(\d+) "
                      r"batches=(\d+) duration=([0-9.]+)s")
SHARE_RE = re.compile(r"(\d+) live replicas: fair share (\d+)")


# --- the data -----------------------------------------------------------------
def splitmix64(x):
    x = (x + 0x9e3779b97f4a7c15) & MASK
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & MASK
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & MASK
    return x ^ (x >> 31)


def stale_ids(n, fraction):
    """The users presence-gen -n n --stale fraction makes stale (its is_stale();
    checked against the data after loading, so a slip here stops the run)."""
    nstale = int(fraction * n + 0.5)
    phase = splitmix64(SEED) % n
    return [b"u%d" % i for i in range(n)
            if (i + phase + 1) * nstale // n != (i + phase) * nstale // n]


class Shard:
    def __init__(self, cluster, name, n):
        self.name = name
        self.online = ONLINE % name
        self.node = cluster.owner(self.online.encode())
        self.slot = cluster.keyslot(self.online.encode())
        self.n = n

    def gen(self, args, *more):
        return [args.gen, "--socket", self.node.sock, "-n", str(self.n), "--stale",
                str(args.stale), "--online", self.online, "--prefix", PREFIX % self.name,
                "--suffix", SUFFIX] + list(more)

    def socket_keys(self, ids):
        return [(PREFIX % self.name).encode() + i + SUFFIX.encode() for i in ids]


class Data:
    """The shards, loaded into their primaries, and checks of what they hold."""

    def __init__(self, args, cluster):
        self.args = args
        self.cluster = cluster
        self.shards = [Shard(cluster, str(i), args.users) for i in range(args.shards)]
        self.stale = stale_ids(args.users, args.stale)
        self.live = args.users - len(self.stale)
        self.primaries = sorted({s.node.port for s in self.shards})
        self.clients = {s.node.port: s.node.client(socket_timeout=60) for s in self.shards}

    def by_primary(self, fn):
        """fn(shard) for every shard, the primaries in parallel, one shard at a time each."""
        groups = {}
        for s in self.shards:
            groups.setdefault(s.node.port, []).append(s)
        with concurrent.futures.ThreadPoolExecutor(len(groups)) as pool:
            for f in [pool.submit(lambda g=g: [fn(s) for s in g]) for g in groups.values()]:
                f.result()

    def load(self):
        def one(s):
            _, _, out, _ = run(s.gen(self.args, "--ttl", str(SOCKET_TTL)), "presence-gen")
            made = fields(out, "created")
            if int(made["users"]) != s.n or int(made["stale"]) != len(self.stale):
                raise BenchError(f"shard {s.name}: presence-gen made {out.strip()}")
        total = self.args.shards * self.args.users
        log(f"loading {self.args.shards} shards x {self.args.users} users into "
            f"{len(self.primaries)} primaries...")
        t0 = time.monotonic()
        self.by_primary(one)
        seconds = time.monotonic() - t0
        log(f"  {total} users in {seconds:.1f} s ({total / seconds:,.0f} users/s)")
        self.check_loaded()
        return seconds

    def check_loaded(self):
        """Exactly the stale users lack a socket set, and every other user has one."""
        keys_in = {}
        for s in self.shards:
            keys_in[s.slot] = keys_in.get(s.slot, 0) + self.live + 1
        for s in self.shards:
            c = self.clients[s.node.port]
            gone = sum(c.exists(*chunk) for chunk in chunks(s.socket_keys(self.stale)))
            count = c.execute_command("CLUSTER", "COUNTKEYSINSLOT", s.slot)
            if c.scard(s.online) != s.n or not all(self.members(s, self.stale)) or gone:
                raise BenchError(f"shard {s.name}: the stale users are not as generated")
            if count != keys_in[s.slot]:
                raise BenchError(f"shard {s.name}: slot {s.slot} holds {count} keys, "
                                 f"expected {keys_in[s.slot]}")

    def members(self, s, ids):
        c = self.clients[s.node.port]
        return [m for chunk in chunks(ids) for m in c.smismember(s.online, chunk)]

    def restore(self):
        """The stale users back online in every shard."""
        def one(s):
            run(s.gen(self.args, "--restore"), "presence-gen --restore")
        self.by_primary(one)
        for s in self.shards:
            if self.clients[s.node.port].scard(s.online) != s.n:
                raise BenchError(f"shard {s.name}: restore left the wrong member count")

    def clean(self):
        """Every online set holds its live users only (counted; see exact())."""
        return all(self.clients[s.node.port].scard(s.online) == self.live
                   for s in self.shards)

    def exact(self):
        """Every online set is exactly its live users: the right count, no stale one."""
        for s in self.shards:
            if self.clients[s.node.port].scard(s.online) != self.live or \
                    any(self.members(s, self.stale)):
                raise BenchError(f"shard {s.name}: the online set is not its live users")

    def cpu(self):
        """used_cpu_sys + used_cpu_user of every node, by port."""
        out = {}
        for n in self.cluster.live():
            c = n.client()
            try:
                info = c.info("cpu")
                out[n.port] = info["used_cpu_sys"] + info["used_cpu_user"]
            finally:
                c.close()
        return out

    def holders(self):
        """Identity holding each shard's lock (None when free)."""
        out = []
        for s in self.shards:
            v = self.clients[s.node.port].get(LOCK % s.name)
            out.append(v.decode().rsplit(":", 2)[0] if v else None)
        return out

    def members_live(self):
        """Replicas whose membership has not run out (scores are expiry times, ms).
        A replica stopped within leader.renew of a SIGHUP does not leave it: its
        main connection is still being made again after the reload."""
        c = self.cluster.owner(MEMBERS.encode()).client()
        try:
            sec, usec = c.time()
            return c.zcount(MEMBERS, f"({sec * 1000 + usec // 1000}", "+inf")
        finally:
            c.close()

    def close(self):
        for c in self.clients.values():
            c.close()


def machine_busy():
    """CPU seconds the whole machine has been busy (/proc/stat), all CPUs."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def driver_cpu():
    t = os.times()
    return t.user + t.system


def chunks(items, size=5000):
    return [items[i:i + size] for i in range(0, len(items), size)]


# --- the replicas -------------------------------------------------------------
def log_time(ts):
    """A log line's timestamp ("2026-11-30T06:59:19.881Z") as Unix seconds."""
    t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()


class Replicas:
    """count presence-reaper processes in the loop, each logging JSON to a file."""

    def __init__(self, args, folder, conf, count):
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        self.procs, self.paths = [], []
        self.offsets = [0] * count
        try:
            for i in range(count):
                path = os.path.join(folder, f"reaper-{count}-{i + 1}.log")
                with open(path, "w") as err:
                    self.procs.append(subprocess.Popen(
                        [args.reaper, "-c", conf], stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=err,
                        env=dict(env, POD_NAME=f"bench-{i + 1}"),
                        preexec_fn=_die_with_parent))
                self.paths.append(path)
        except BaseException:
            self.stop()
            raise

    def check_alive(self):
        for i, p in enumerate(self.procs):
            if p.poll() is not None:
                raise BenchError(f"replica {i + 1} exited with {p.returncode}:\n"
                                 f"{self.tail(i)}")

    def tail(self, i):
        with open(self.paths[i], errors="replace") as f:
            return "".join(f.readlines()[-20:])

    def records(self, i, since=0):
        """The JSON log records of replica i from byte offset since."""
        with open(self.paths[i], "rb") as f:
            f.seek(since)
            return [json.loads(ln) for ln in f.read().splitlines() if ln.startswith(b"{")]

    def mark(self):
        self.offsets = [os.path.getsize(p) for p in self.paths]

    def passes(self):
        """Every pass logged since mark(): replica, shard, start, end, removed."""
        out = []
        for i in range(len(self.procs)):
            for r in self.records(i, self.offsets[i]):
                m = CYCLE_RE.search(r["msg"])
                if m and "shard" in r:
                    end, duration = log_time(r["ts"]), float(m.group(5))
                    out.append({"replica": i, "shard": r["shard"], "end": end,
                                "start": end - duration, "duration": duration,
                                "removed": int(m.group(3))})
        return out

    def passes_due(self):
        """Shards taken whose pass has not ended yet: a seat passes its shard as
        soon as it takes it."""
        due = set()
        for i in range(len(self.procs)):
            for r in self.records(i):
                if "shard" not in r:
                    continue
                if r["msg"].startswith("became leader"):
                    due.add((i, r["shard"]))
                elif CYCLE_RE.search(r["msg"]) or r["msg"] == "lock released":
                    due.discard((i, r["shard"]))
        return due

    def live_counts(self):
        """The replica count each replica saw at its last membership change."""
        counts = []
        for i in range(len(self.procs)):
            seen = [SHARE_RE.search(r["msg"]) for r in self.records(i)]
            seen = [int(m.group(1)) for m in seen if m]
            counts.append(seen[-1] if seen else 0)
        return counts

    def hup(self):
        for p in self.procs:
            p.send_signal(signal.SIGHUP)

    def cpu(self):
        return sum(proc_cpu_seconds(p.pid) for p in self.procs)

    def peak_rss_kib(self):
        peak = 0
        for p in self.procs:
            with open(f"/proc/{p.pid}/status") as f:
                peak = max([peak] + [int(ln.split()[1]) for ln in f
                                     if ln.startswith("VmHWM:")])
        return peak

    def keep_logs(self, folder):
        if folder:
            os.makedirs(folder, exist_ok=True)
            for p in self.paths:
                shutil.copy(p, folder)

    def stop(self):
        """SIGTERM; each must give its shards back and exit 0."""
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        bad = []
        for i, p in enumerate(self.procs):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.returncode != 0:
                bad.append(f"replica {i + 1} exited with {p.returncode}")
        if bad:
            raise BenchError("; ".join(bad))


def write_conf(path, cluster, shards):
    with open(path, "w") as f:
        f.write(f'redis = {{ url = "{cluster.url()}"; }};\n'
                f'keys = {{ online_set = "{ONLINE % "<shard>"}"; '
                f'socket_prefix = "{PREFIX % "<shard>"}"; shards = {shards}; }};\n'
                f'leader = {{ key = "{LOCK % "<shard>"}"; lease = {LEASE}; '
                f'renew = {RENEW}; }};\n'
                'reaper = { interval = 3600; };\n'
                'log = { format = "json"; };\n')


# --- rounds -------------------------------------------------------------------
def settle(data, reps, count, timeout):
    """Wait until every replica knows count replicas, every shard's lock is held,
    nobody holds more than the fair share, and every shard taken was passed."""
    share = math.ceil(len(data.shards) / count)

    def settled():
        reps.check_alive()
        if any(n != count for n in reps.live_counts()):
            return False
        held = data.holders()
        if None in held or max(held.count(h) for h in held) > share:
            return False
        return not reps.passes_due() and data.clean()
    wait_until(settled, timeout, interval=0.2,
               what=f"{count} replicas to hold fair shares of {len(data.shards)} shards")


def one_round(data, reps, timeout):
    """Stale users back, SIGHUP every replica, wait until every shard passed once."""
    reps.mark()
    data.restore()
    cpu0, own0, busy0, drv0 = data.cpu(), reps.cpu(), machine_busy(), driver_cpu()
    reps.hup()

    def passed():
        reps.check_alive()
        return len({p["shard"] for p in reps.passes()}) == len(data.shards) and data.clean()
    wait_until(passed, timeout, interval=0.1, what="every shard's pass")
    cpu1, own1, busy1, drv1 = data.cpu(), reps.cpu(), machine_busy(), driver_cpu()
    data.exact()
    passes = reps.passes()
    removed = sum(p["removed"] for p in passes)
    stale = len(data.stale) * len(data.shards)
    if len(passes) != len(data.shards):
        raise BenchError(f"{len(passes)} passes in a round of {len(data.shards)} shards")
    if removed != stale:
        raise BenchError(f"the passes removed {removed} users, {stale} were stale")
    return {"wall": max(p["end"] for p in passes) - min(p["start"] for p in passes),
            "longest": max(p["duration"] for p in passes),
            "spread": max(p["start"] for p in passes) - min(p["start"] for p in passes),
            "removed": removed,
            "held": sorted((sum(1 for p in passes if p["replica"] == i)
                            for i in range(len(reps.procs))), reverse=True),
            "cpu": {port: cpu1[port] - cpu0[port] for port in cpu0},
            "own": own1 - own0,
            "other": (busy1 - busy0) - sum(cpu1[p] - cpu0[p] for p in cpu0) - (own1 - own0) -
            (drv1 - drv0)}


def run_replicas(args, data, conf, count):
    """Start count replicas, let them settle, measure args.rounds rounds, stop them."""
    timeout = max(60.0, args.shards * args.users / 20000)
    log(f"{count} replica(s): starting, waiting for fair shares and first passes...")
    reps = Replicas(args, str(data.cluster.dir), conf, count)
    try:
        settle(data, reps, count, timeout * 3)
        rounds = []
        for r in range(args.rounds):
            log(f"  {count} replica(s), round {r + 1}/{args.rounds}...")
            rounds.append(one_round(data, reps, timeout))
            r = rounds[-1]
            log(f"    {r['wall']:.2f} s (longest pass {r['longest']:.2f} s, starts spread "
                f"over {r['spread']:.2f} s), removed {r['removed']}, Redis CPU "
                f"{sum(r['cpu'][p] for p in data.primaries):.2f} s, reaper CPU {r['own']:.2f} s, "
                f"other processes {r['other']:.2f} s")
        rss = reps.peak_rss_kib()
    finally:
        try:
            reps.stop()
        finally:
            reps.keep_logs(args.logs)
    wait_until(lambda: not any(data.holders()) and data.members_live() == 0, LEASE * 2,
               interval=0.1, what="the locks given back and the replica membership empty")
    return {"rounds": rounds, "rss": rss}


# --- the report ---------------------------------------------------------------
def med(values):
    return statistics.median(values)


def span(values, fmt="{:.2f}"):
    return f"{fmt.format(min(values))} - {fmt.format(max(values))}"


def per_user_us(data, rnd):
    """Redis CPU of all primaries in a round, per user, in microseconds."""
    users = len(data.shards) * data.args.users
    return sum(rnd["cpu"][p] for p in data.primaries) / users * 1e6


def summary_table(data, results):
    users = len(data.shards) * data.args.users
    print("| reaper replicas | shards passed per replica | round s (median) | round s (min - max) "
          "| longest shard pass s | pass starts spread over s | users removed per round "
          "| Redis CPU s per round, all primaries | Redis CPU s per round, busiest primary "
          "| Redis CPU µs per user | reaper CPU s per round | reaper CPU µs per user "
          "| reaper peak RSS MiB | other processes' CPU s |")
    print("|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for count, res in results.items():
        rs = res["rounds"]
        held = sorted({"/".join(map(str, r["held"])) for r in rs})
        print(f"| {count} | {', '.join(held)} | {med([r['wall'] for r in rs]):.2f} "
              f"| {span([r['wall'] for r in rs])} "
              f"| {med([r['longest'] for r in rs]):.2f} | {med([r['spread'] for r in rs]):.2f} "
              f"| {rs[0]['removed']} "
              f"| {med([sum(r['cpu'][p] for p in data.primaries) for r in rs]):.2f} "
              f"| {med([max(r['cpu'][p] for p in data.primaries) for r in rs]):.2f} "
              f"| {med([per_user_us(data, r) for r in rs]):.2f} "
              f"| {med([r['own'] for r in rs]):.2f} "
              f"| {med([r['own'] / users * 1e6 for r in rs]):.2f} | {res['rss'] / 1024:.1f} "
              f"| {med([r['other'] for r in rs]):.2f} |")


def primary_table(data, results):
    names = {p: sorted((s.name for s in data.shards if s.node.port == p), key=int)
             for p in data.primaries}
    print("| primary | shards | users | " +
          " | ".join(f"Redis CPU s per round, {c} replica{'s' if c > 1 else ''}"
                     for c in results) + " | Redis CPU µs per user |")
    print("|---|---|---:|" + "---:|" * len(results) + "---:|")
    for p in data.primaries:
        users = len(names[p]) * data.args.users
        cpus = [[r["cpu"][p] for r in res["rounds"]] for res in results.values()]
        every = [c for cs in cpus for c in cs]
        print(f"| 127.0.0.1:{p} | {len(names[p])} ({', '.join(names[p])}) | {users} | " +
              " | ".join(f"{med(cs):.2f}" for cs in cpus) +
              f" | {med(every) / users * 1e6:.2f} |")


def report(args, data, machine, load_s, results):
    total = len(data.shards) * args.users
    nrounds = sum(len(r["rounds"]) for r in results.values())
    print("## presence-reaper: sharded presence on a local Redis Cluster\n")
    print("\n".join(machine))
    print(f"- Cluster: {len(data.primaries)} primaries and {len(data.primaries)} replicas "
          f"on loopback, all on this machine; {args.shards} shards x {args.users} users "
          f"({total} online, {args.stale:.0%} stale), loaded in {load_s:.1f} s; load "
          f"average at the end {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\n### {args.shards} shards x {args.users} users, {args.stale:.0%} stale, "
          f"{args.rounds} round{'s' if args.rounds > 1 else ''} per replica count\n")
    summary_table(data, results)
    print()
    primary_table(data, results)
    print(f"\n- every round ({nrounds}): each of the {args.shards} shards passed once, the "
          f"passes removed {len(data.stale) * args.shards} users = the stale users put back, "
          f"and every online set was then exactly its {data.live} live users")
    project(args, data, results)


def keyslot(tag):
    """Redis Cluster's hash slot of a key whose hash tag is tag (CRC16/XMODEM)."""
    crc = 0
    for b in tag.encode():
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xffff
    return crc % 16384


def busiest_primary(shards, primaries):
    """Most shards "0".."shards-1" on one primary when the primaries own equal slot
    ranges, as redis-cli --cluster create assigns them."""
    counts = [0] * primaries
    for i in range(shards):
        counts[keyslot(str(i)) * primaries // 16384] += 1
    return max(counts), min(counts)


def project(args, data, results):
    rounds = [r for res in results.values() for r in res["rounds"]]
    total = len(data.shards) * args.users
    redis_us = [per_user_us(data, r) for r in rounds]
    own_us = [r["own"] / total * 1e6 for r in rounds]
    u, p, s = args.project_users, args.project_primaries, args.project_shards
    per_primary = u / p
    cpu = med(redis_us) * per_primary / 1e6
    most, least = busiest_primary(s, p)
    replicas = max(2, math.ceil(med(own_us) * u / 1e6 / cpu))
    print(f"\n### Projected, not measured: {u / 1e6:g}M online users, {p} primaries, "
          f"{s} shards\n")
    print(f"From this run's Redis CPU per user (all primaries, {len(rounds)} rounds): median "
          f"{med(redis_us):.2f} µs ({span(redis_us)}); the reaper's own CPU per user: "
          f"median {med(own_us):.2f} µs ({span(own_us)}). Assumed: Redis CPU grows linearly "
          f"with the users on a primary; a round is bound by the busiest primary's Redis "
          f"CPU (one Redis thread, its shards' passes running at once, each in its own "
          f"reaper thread); one core per reaper replica; figures of a 2-core VM running "
          f"six redis-servers and the reapers are noisy.\n")
    print("| | projected |")
    print("|---|---:|")
    print(f"| users per shard | {u / s:,.0f} |")
    print(f"| shards per primary, spread evenly | {s / p:g} |")
    print(f"| users per primary | {per_primary:,.0f} |")
    print(f"| Redis CPU per primary per round | {cpu:.1f} s |")
    print(f"| round time (bound by Redis CPU) | {cpu:.1f} s |")
    print(f"| share of a primary's core at interval = 30 | "
          f"{min(1.0, cpu / 30):.0%} |")
    print(f"| reaper CPU per round, all replicas | {med(own_us) * u / 1e6:.1f} s |")
    print(f"| reaper replicas (one core each, at least 2) | {replicas}, "
          f"{math.ceil(s / replicas)} shards each |")
    print(f"| shards \"0\"..\"{s - 1}\" on {p} equal slot ranges: most / fewest on a "
          f"primary | {most} / {least} |")
    print(f"| round time with that placement (busiest primary) | "
          f"{med(redis_us) * most * u / s / 1e6:.1f} s |")


# --- main ---------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shards", type=int, default=16, help="shards (default 16)")
    p.add_argument("--users", type=int, default=250000,
                   help="users per shard (default 250000)")
    p.add_argument("--stale", type=float, default=0.01,
                   help="stale fraction of each shard (default 0.01)")
    p.add_argument("--replicas", default="1,3",
                   help="comma-separated reaper replica counts (default 1,3)")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds per replica count (default 3)")
    p.add_argument("--smoke", action="store_true",
                   help="4 shards x 2000 users, 1 round per replica count")
    p.add_argument("--project-users", type=float, default=100e6)
    p.add_argument("--project-primaries", type=int, default=32)
    p.add_argument("--project-shards", type=int, default=256)
    p.add_argument("--logs", help="keep the reapers' logs in this folder")
    p.add_argument("--build", help="meson build folder holding both programs")
    p.add_argument("--reaper", help="presence-reaper binary")
    p.add_argument("--gen", help="presence-gen binary")
    p.add_argument("--redis-server", default="redis-server")
    a = p.parse_args(argv)
    fill_programs(p, a, {"reaper": "reaper/presence-reaper",
                         "gen": "tests/tools/presence-gen"})
    if a.smoke:
        a.shards, a.users, a.rounds = 4, 2000, 1
    a.replicas = [int(n) for n in a.replicas.split(",")]
    if not 1 <= a.shards <= 256 or a.users < 100 or a.rounds < 1 or \
            not all(1 <= n <= a.shards for n in a.replicas) or not 0 < a.stale < 1:
        p.error("need 1..256 shards, at least 100 users, a round, 1..shards replicas "
                "and a stale fraction between 0 and 1")
    return a


def measure(args):
    cluster = data = None
    machine = machine_lines(args, None)
    try:
        cluster = Cluster(extra=("--cluster-node-timeout", str(NODE_TIMEOUT_MS)))
        data = Data(args, cluster)
        for s in data.shards:
            if keyslot(s.name) != s.slot:
                raise BenchError(f"shard {s.name}: slot {s.slot}, computed {keyslot(s.name)}")
        load_s = data.load()
        conf = os.path.join(str(cluster.dir), "reaper.conf")
        write_conf(conf, cluster, args.shards)
        results = {n: run_replicas(args, data, conf, n) for n in args.replicas}
        report(args, data, machine, load_s, results)
    finally:
        if data is not None:
            data.close()
        if cluster is not None:
            cluster.close()


def main(argv):
    args = parse_args(argv)
    for prog in (args.redis_server, "redis-cli"):
        if subprocess.run(["sh", "-c", f"command -v {prog}"],
                          stdout=subprocess.DEVNULL).returncode != 0:
            log(f"shards: {prog} not found")
            return 77
    for signo in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signo, _on_signal)
    try:
        measure(args)
    except (BenchError, AssertionError, redis.RedisError) as e:
        log(f"shards: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

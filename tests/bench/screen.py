#!/usr/bin/python3
"""What it costs Redis to learn, in one pass, which socket sets are gone and when
each of the others expires.

The expiry calendar (reaper.track_expiry) needs every socket set's TTL
at every pass, where today's pass only asks whether each set exists. This
measures, on one throwaway redis-server pinned to its own CPU (bench.py's), the
Redis CPU of full screening passes over the same users, each strategy in turn,
--repeat times, for each --sizes:

  reaper --dry-run  the real binary, --once --dry-run: SSCAN, multi-key EXISTS
                    in groups, PTTL for the members of a group that came back
                    short (today's screening; no script, nothing removed)
  reaper, track_expiry  the real binary in the loop with reaper.track_expiry,
                    as a dry run, until its first pass ends: the scan script
                    (SSCAN and every PTTL inside Redis, the near ones
                    returned), what the calendar's pass costs
  EXISTS groups     the same from this driver: SSCAN, then EXISTS over groups
                    of --group keys, pipelined (how far the driver differs
                    from the reaper)
  PTTL each         SSCAN, then one PTTL per member, pipelined: every TTL
  scan script       one EVALSHA per batch: a Lua script runs SSCAN and PTTL for
                    each member inside Redis and returns only the members
                    whose TTL is under a horizon: every TTL, and neither the
                    members nor their keys cross the socket

Every strategy must see every member; the socket sets live a day, so none
expires during a run. For each: Redis CPU (INFO cpu, used_cpu_sys +
used_cpu_user, before and after), the time inside commands (INFO
commandstats), commands sent, and the longest command (SLOWLOG). Prints
Markdown on stdout, progress on stderr.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import bench
from bench import BenchError, log

SCAN_SCRIPT = b"""#!lua flags=no-writes
local res = redis.call('SSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local horizon = tonumber(ARGV[3])
local out = {res[1], #res[2]}
for _, id in ipairs(res[2]) do
  local ttl = redis.call('PTTL', ARGV[4] .. id .. ARGV[5])
  if ttl < horizon then
    out[#out + 1] = id
    out[#out + 1] = ttl
  end
end
return out
"""
HORIZON_MS = 32000


def sscan_batches(cli, count):
    cursor = 0
    while True:
        cursor, members = cli.sscan(bench.ONLINE, cursor, count=count)
        yield members
        if cursor == 0:
            return


def by_exists(b, args):
    cli, seen = b.srv.cli, 0
    for members in sscan_batches(cli, args.batch):
        keys = [bench.PREFIX + m + bench.SUFFIX for m in members]
        pipe = cli.pipeline(transaction=False)
        for at in range(0, len(keys), args.group):
            pipe.execute_command("EXISTS", *keys[at:at + args.group])
        pipe.execute()
        seen += len(members)
    return seen


def by_pttl(b, args):
    cli, seen = b.srv.cli, 0
    for members in sscan_batches(cli, args.batch):
        pipe = cli.pipeline(transaction=False)
        for m in members:
            pipe.execute_command("PTTL", bench.PREFIX + m + bench.SUFFIX)
        pipe.execute()
        seen += len(members)
    return seen


def by_script(b, args):
    cli, seen, cursor = b.srv.cli, 0, b"0"
    sha = cli.script_load(SCAN_SCRIPT)
    while True:
        res = cli.evalsha(sha, 1, bench.ONLINE, cursor, args.batch, HORIZON_MS,
                          bench.PREFIX, bench.SUFFIX)
        cursor, seen = res[0], seen + res[1]
        if cursor == b"0":
            return seen


def by_reaper(b, args):
    b.write_conf(batch_size=args.batch)
    bench.run([args.reaper, "--once", "--dry-run", "-c", b.conf], "presence-reaper --dry-run")
    return b.users


def by_tracking(b, args):
    """The loop's first pass with reaper.track_expiry, as a dry run: the scan script."""
    with open(b.conf, "w") as f:
        f.write(f'redis = {{ url = "unix://{b.srv.sock}"; }};\n'
                f"reaper = {{ batch_size = {args.batch}; track_expiry = true; "
                f"interval = 3600.0; }};\n")
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen([args.reaper, "--dry-run", "-c", b.conf], stdout=subprocess.DEVNULL,
                             stderr=err)
        try:
            deadline = time.monotonic() + 600
            while True:
                err.seek(0)
                text = err.read().decode(errors="replace")
                if "dry-run: scanned" in text:
                    break
                if p.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"presence-reaper (track_expiry) did not pass:\n{text[-2000:]}")
                time.sleep(0.02)
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(10)
    return b.users


# Each strategy with the commands it sends itself (those its scripts call are
# counted by INFO commandstats too, and would be counted twice).
REAPER_CMDS = ("sscan", "exists", "pttl", "evalsha", "srandmember", "scard")
STRATEGIES = (("reaper --dry-run", by_reaper, REAPER_CMDS),
              ("reaper, track_expiry", by_tracking, ("evalsha", "srandmember", "scard")),
              ("EXISTS groups", by_exists, ("sscan", "exists")),
              ("PTTL each", by_pttl, ("sscan", "pttl")),
              ("scan script", by_script, ("evalsha",)))


def command_stats(cli):
    """{command: (calls, usec)} from INFO commandstats, our own probes included."""
    out = {}
    for name, v in cli.info("commandstats").items():
        out[name.replace("cmdstat_", "")] = (v["calls"], v["usec"])
    return out


def one(b, fn, cmds, args):
    srv = b.srv
    srv.cli.config_resetstat()
    srv.cli.slowlog_reset()
    cpu0 = srv.cpu_seconds()
    t0 = time.perf_counter()
    seen = fn(b, args)
    wall = time.perf_counter() - t0
    cpu = srv.cpu_seconds() - cpu0
    stats = command_stats(srv.cli)
    slow_us, slow_cmd, over = srv.slowest()
    if seen < b.users:
        raise BenchError(f"{fn.__name__} saw {seen} of {b.users} members")
    work = {k: v for k, v in stats.items() if k in cmds}
    return {"cpu": cpu, "wall": wall, "inside": sum(u for _, u in work.values()) / 1e6,
            "calls": sum(c for c, _ in work.values()), "slow_us": slow_us,
            "slow_cmd": slow_cmd, "over": over}


def section(b, args, n):
    b.generate(n)
    rows = {name: [] for name, _, _ in STRATEGIES}
    for rep in range(args.repeat):
        for name, fn, cmds in STRATEGIES:
            log(f"  {n} users, {name}, pass {rep + 1}/{args.repeat}")
            rows[name].append(one(b, fn, cmds, args))
    base = statistics.median(r["cpu"] for r in rows["reaper --dry-run"])
    print(f"\n### {n} users, SSCAN COUNT {args.batch}, {args.repeat} passes each "
          f"(medians; min - max)\n")
    print("| strategy | Redis CPU s | vs reaper --dry-run | wall s | inside the commands sent, s | "
          "commands | µs Redis CPU a user | longest command µs | commands over 2 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, _, _ in STRATEGIES:
        r = rows[name]
        cpu = [x["cpu"] for x in r]
        med = statistics.median(cpu)
        print(f"| {name} | {med:.3f} ({min(cpu):.3f} - {max(cpu):.3f}) | "
              f"{med / base:.2f} | {statistics.median(x['wall'] for x in r):.2f} | "
              f"{statistics.median(x['inside'] for x in r):.3f} | "
              f"{int(statistics.median(x['calls'] for x in r))} | {med / n * 1e6:.2f} | "
              f"{max(x['slow_us'] for x in r)} ({r[0]['slow_cmd'] or '-'}) | "
              f"{max(x['over'] for x in r)} |")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--batch", type=int, default=500, help="SSCAN COUNT (default 500)")
    p.add_argument("--group", type=int, default=10,
                   help="keys per EXISTS for the driver's EXISTS strategy (default 10, "
                   "what the reaper's rule gives at 1 %% stale)")
    p.add_argument("--stale", type=float, default=0.01)
    p.add_argument("--no-pin", action="store_true")
    p.add_argument("--build")
    p.add_argument("--reaper")
    p.add_argument("--gen")
    p.add_argument("--redis-server", default="redis-server")
    a = p.parse_args(argv)
    bench.fill_programs(p, a, {"reaper": "reaper/presence-reaper",
                               "gen": "tests/tools/presence-gen"})
    a.sizes = [int(s) for s in a.sizes.split(",")]
    a.odd = False
    return a


def main(argv):
    args = parse_args(argv)

    def body(b, pinned):
        srv = b.srv
        print("## Screening strategies: Redis CPU of one full pass\n")
        print(f"- machine: {os.cpu_count()} CPUs; redis-server "
              f"{'pinned to CPU %d, this driver and the reaper to CPU %d' % pinned if pinned else 'not pinned'}; "
              f"load average at start {', '.join('%.2f' % x for x in os.getloadavg())}")
        print(f"- Redis {srv.cli.info('server')['redis_version']}; socket sets live "
              f"{bench.SOCKET_TTL} s; {args.stale:g} of the users stale")
        for n in args.sizes:
            section(b, args, n)
        print(f"\nload average at the end {', '.join('%.2f' % x for x in os.getloadavg())}")
    return bench.with_server(args, body, "screen")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""A pass over a link with a long round trip: presence-reaper --once direct
on loopback TCP, and through the fault proxy with a round trip of --rtt ms
added (half each way), for each reaper.scan_ranges in --ranges.

On one throwaway redis-server (loopback TCP, no persistence, stopped on exit
and on SIGINT/SIGTERM/SIGHUP), presence-gen makes N users (--stale of them
stale). The runs are interleaved, --repeat times each; every pass starts
from the full set and must leave exactly the live users. Prints Markdown:
median seconds of the --once run (connection, lock, guard and the pass),
its ratio to the direct run at scan_ranges 1, the round trips it is worth,
and the reaper's peak RSS.

    /usr/bin/python3 tests/bench/rtt.py --build build [-n 100000] [--rtt 100]
                                        [--ranges 1,8,32,64] [--repeat 3]
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import bench  # noqa: E402
from faultproxy import fault_proxy  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-n", type=int, default=100000, help="users (default %(default)s)")
    p.add_argument("--stale", type=float, default=0.01, help="stale fraction (default 0.01)")
    p.add_argument("--rtt", type=float, default=100, help="added round trip, ms (default 100)")
    p.add_argument("--ranges", default="1,8,32,64",
                   help="reaper.scan_ranges values, comma-separated (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=500,
                   help="reaper.batch_size (default %(default)s)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each (default 3)")
    p.add_argument("--build", help="meson build folder holding the programs")
    p.add_argument("--reaper", help="presence-reaper binary")
    p.add_argument("--gen", help="presence-gen binary")
    p.add_argument("--runstat", help="runstat binary")
    p.add_argument("--redis-server", default="redis-server")
    a = p.parse_args(argv)
    bench.fill_programs(p, a, {"reaper": "reaper/presence-reaper",
                               "gen": "tests/tools/presence-gen",
                               "runstat": "tests/bench/runstat"})
    a.ranges = [int(x) for x in a.ranges.split(",")]
    a.odd = False
    a.no_pin = True     # the fault proxy runs in this driver, beside the reaper
    if a.repeat < 1 or a.rtt < 0:
        p.error("--repeat must be at least 1 and --rtt not negative")
    return a


def one(b, port, ranges):
    """One --once run on the full set through port: (pass seconds, run seconds,
    RSS KiB, members scanned)."""
    b.restore()
    with open(b.conf, "w") as f:
        f.write(f'redis = {{ url = "redis://127.0.0.1:{port}"; }};\n'
                f"reaper = {{ scan_ranges = {ranges}; batch_size = {b.a.batch_size}; }};\n")
    seconds, rss, _, err = bench.run([b.a.reaper, "--once", "-c", b.conf],
                                     "presence-reaper --once", measure=b.a.runstat)
    b.verify(f"--once with scan_ranges {ranges}")
    m = re.search(r"cycle done: scanned=(\d+) .* duration=([\d.]+)s", err)
    if not m:
        raise bench.BenchError(f"no 'cycle done' line in:\n{err[-2000:]}")
    return float(m.group(2)), seconds, rss, int(m.group(1))


def measure(b, args):
    """{(link, ranges): [(seconds, rss)]}, the links and ranges interleaved."""
    got = {}
    with fault_proxy(b.srv.port) as px:
        px.latency(args.rtt / 2000.0, "both")
        for i in range(args.repeat):
            for ranges in args.ranges:
                for link, port in (("loopback", b.srv.port), ("slow", px.port)):
                    got.setdefault((link, ranges), []).append(one(b, port, ranges))
                    bench.log(f"  run {i + 1}: {link}, scan_ranges {ranges}: pass "
                              f"{got[(link, ranges)][-1][0]:.3f} s")
    return got


def report(args, got):
    base = statistics.median(x[0] for x in got[("loopback", 1)])
    print(f"## A pass over a {args.rtt:g} ms round trip\n")
    print(f"{args.n} users, {args.stale:g} stale, batch_size {args.batch_size}; median "
          f"of {args.repeat} runs of `presence-reaper --once` each: the pass (its `cycle "
          "done` duration: the guard's sample and the pass), and the whole run "
          "(connection, lock, checks, pass, release); the members the SSCANs returned "
          "over the set's size (a member returned twice counts twice).\n")
    print("| link | scan_ranges | pass s | x loopback pass at 1 | round trips | "
          "run s | returned / members | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for (link, ranges), runs in got.items():
        p = statistics.median(x[0] for x in runs)
        s = statistics.median(x[1] for x in runs)
        dup = max(x[3] for x in runs) / args.n
        trips = f"{p * 1000 / args.rtt:.1f}" if link == "slow" and args.rtt else ""
        name = "loopback" if link == "loopback" else f"+{args.rtt:g} ms RTT"
        print(f"| {name} | {ranges} | {p:.3f} | {p / base:.1f} | {trips} | {s:.3f} | "
              f"{dup:.3f} | {max(x[2] for x in runs) / 1024:.1f} |")


def main(argv):
    args = parse_args(argv)
    if shutil.which(args.redis_server) is None:
        bench.log(f"rtt: {args.redis_server} not found")
        return 77
    for signo in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signo, bench._on_signal)

    def body(b, _pinned):
        b.generate(args.n)
        report(args, measure(b, args))
    return bench.with_server(args, body, "rtt", tcp=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""bench-smoke: the whole benchmark at a tiny size, checked.

Usage: smoke.py BENCH_PY SHARDS_PY [bench.py options naming the programs]

Runs the main table at 2000 users (1 pass), the batch curve at 2000 users,
two 3-second idle runs (empty set, 2000 users) and the TLS comparison at
2000 users, has plots.py draw the figures (PNG, gnuplot; the crash-to-offline
one from a few latencies given), then checks that each
table has its rows, every cell that should hold a number does, and that the
benchmark saw the old loop and presence-reaper leave exactly the live users
online. bench.py itself
stops with an error when either method leaves anything else.

Then shards.py --smoke: 4 shards x 2000 users on a local Cluster, one round
by 1 replica and one by 3, and checks its tables and the projection;
shards.py itself stops with an error when a round removes anything but the
stale users.

Then rtt.py (next to bench.py) at 2000 users over a 20 ms round trip, with
reaper.scan_ranges 1 and 4, and checks its table; rtt.py itself stops with
an error when a pass leaves anything but the live users.
"""
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plots  # noqa: E402  (tests/bench/plots.py: the same Markdown tables)

LIMIT_S = 30            # each of the two runs
USERS = 2000 + 14       # presence-gen -n 2000 --odd
LIVE = 1980 + 7         # 1% of the 2000 stale, 7 of the 14 odd IDs stale
METHODS = ("ceiling", "presence-reaper", "old loop")
NUMBER = r"-?[\d,]+(\.\d+)?"


def rows(out, header_start):
    """Cells of the Markdown table whose header starts with header_start."""
    body = plots.table(out, header_start)
    if body is None:
        raise AssertionError(f"no table starting with '{header_start}' in:\n{out}")
    return body


def numeric(cells, what):
    for c in cells:
        if not re.fullmatch(NUMBER, c):
            raise AssertionError(f"{what}: '{c}' is not a number")


def longest(cell, what):
    """Two figures: the median pass's and the worst pass's longest command."""
    one = r"(< )?\d+\.\d+ ms( [A-Z]+)?"
    if not re.fullmatch(f"{one} / {one}", cell):
        raise AssertionError(f"{what}: longest command '{cell}'")


def pair(cell, what):
    """Two numbers: median pass / worst pass."""
    if not re.fullmatch(f"{NUMBER} / {NUMBER}", cell):
        raise AssertionError(f"{what}: '{cell}' is not 'median / worst'")


def check(out):
    table = rows(out, "users | method")
    by_method = {r[1]: r for r in table if r[0] == str(USERS)}
    for m in METHODS:
        r = by_method.get(m)
        if r is None:
            raise AssertionError(f"no row for {m} at {USERS} users:\n{out}")
        numeric(r[2:7] + r[8:9] + r[10:12], m)
        longest(r[7], m)
        pair(r[9], m)
    if f"the online set was exactly the {LIVE} live users" not in out:
        raise AssertionError(f"no correctness line for {LIVE} live users:\n{out}")
    curve = rows(out, "reaper.batch_size")
    if [r[0] for r in curve] != ["50", "500"]:
        raise AssertionError(f"batch curve rows: {curve}")
    for r in curve:
        numeric(r[1:3] + r[4:5] + r[6:8], f"batch_size {r[0]}")
        longest(r[3], f"batch_size {r[0]}")
        pair(r[5], f"batch_size {r[0]}")
    idle = rows(out, "users | commands sent")
    if [r[0] for r in idle] != ["0", "2000"]:
        raise AssertionError(f"idle table: {idle}")
    for r in idle:
        numeric(r[0:4] + r[5:6], f"idle {r[0]} users")
    if "SCARD" not in idle[0][4]:
        raise AssertionError(f"idle run over an empty set sent no SCARD: {idle[0][4]}")
    if "SSCAN" not in idle[1][4] or "EXISTS" not in idle[1][4]:
        raise AssertionError(f"idle run sent no pass commands: {idle[1][4]}")
    tls = rows(out, "transport")
    if [r[0] for r in tls] != ["plain TCP", "TLS"]:
        raise AssertionError(f"TLS table rows: {tls}")
    for r in tls:
        numeric(r[1:7], f"over {r[0]}")
    if not re.search(r"TLS / plain TCP: [\d.]+ .*peak RSS over TLS [\d.]+ MiB", out):
        raise AssertionError(f"no TLS summary line:\n{out}")
    if f"over each transport the online set was exactly the {LIVE} live users" not in out:
        raise AssertionError(f"no TLS correctness line:\n{out}")

SHARD_REMOVED = "80"    # 4 shards x 1% of 2000


def check_shards(out):
    table = rows(out, "reaper replicas")
    if [r[0] for r in table] != ["1", "3"]:
        raise AssertionError(f"shard table rows: {table}")
    for r in table:
        numeric(r[2:3] + r[4:], f"{r[0]} replicas")
        if not re.fullmatch(f"{NUMBER} - {NUMBER}", r[3]):
            raise AssertionError(f"{r[0]} replicas: round range '{r[3]}'")
        if sum(int(n) for n in r[1].split("/")) != 4 or r[6] != SHARD_REMOVED:
            raise AssertionError(f"{r[0]} replicas: shards {r[1]}, removed {r[6]}")
    primaries = rows(out, "primary | shards")
    if len(primaries) != 3 or sum(int(r[1].split()[0]) for r in primaries) != 4:
        raise AssertionError(f"primary table: {primaries}")
    if "each of the 4 shards passed once, the passes removed 80 users" not in out:
        raise AssertionError(f"no correctness line for the shards:\n{out}")
    projected = {r[0]: r[1] for r in rows(out, "| projected")}
    if not re.fullmatch(r"[\d.]+ s", projected.get("Redis CPU per primary per round", "")):
        raise AssertionError(f"projection: {projected}")


def check_plots(bench, out):
    """plots.py draws bench.py's tables: two PNGs and the data they show."""
    plots = os.path.join(os.path.dirname(bench), "plots.py")
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "bench.md"), "w") as f:
            f.write(out)
        p = subprocess.run([sys.executable, plots, "bench", os.path.join(d, "bench.md"), d],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError(f"plots.py: {p.stdout}{p.stderr}")
        for name in ("pass-time", "batch-size"):
            with open(os.path.join(d, name + ".png"), "rb") as f:
                if f.read(8) != b"\x89PNG\r\n\x1a\n":
                    raise AssertionError(f"{name}.png is not a PNG")
        with open(os.path.join(d, "pass-time.dat")) as f:
            rows = [line.split() for line in f if not line.startswith("#")]
        if [r[0] for r in rows] != [str(USERS)] or "NaN" in rows[0]:
            raise AssertionError(f"pass-time.dat: {rows}")
        check_churn_plot(plots, d)


def check_churn_plot(plots, d):
    """plots.py churn: the share offline by each latency, a block per mode."""
    data = os.path.join(d, "lat.json")
    with open(data, "w") as f:
        f.write('{"users": 10, "churn": 1, "modes": {"sweep only": [30000, 1000], '
                '"track_expiry": [60, 5]}}')
    p = subprocess.run([sys.executable, plots, "churn", data, d], capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"plots.py churn: {p.stdout}{p.stderr}")
    with open(os.path.join(d, "crash-offline.png"), "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            raise AssertionError("crash-offline.png is not a PNG")
    with open(os.path.join(d, "crash-offline.dat")) as f:
        blocks = [[line.split() for line in b.splitlines() if line and not line.startswith("#")]
                  for b in f.read().split("\n\n\n") if b.strip()]
    if blocks != [[["1.0", "0.5"], ["30.0", "1.0"]], [["0.005", "0.5"], ["0.06", "1.0"]]]:
        raise AssertionError(f"crash-offline.dat: {blocks}")


def check_rtt(out):
    table = rows(out, "link | scan_ranges")
    if [(r[0], r[1]) for r in table] != [("loopback", "1"), ("+20 ms RTT", "1"),
                                         ("loopback", "4"), ("+20 ms RTT", "4")]:
        raise AssertionError(f"rtt table rows: {table}")
    for r in table:
        numeric(r[2:4] + r[5:8], f"{r[0]}, scan_ranges {r[1]}")


def program(opts, name):
    return opts[opts.index(name):opts.index(name) + 2]


def smoke(argv, check_fn, what):
    """Run argv, check its output; 0, 1 or 77 (skipped)."""
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=2 * LIMIT_S)
    took = time.monotonic() - t0
    print(p.stdout)
    print(p.stderr, file=sys.stderr)
    if p.returncode == 77:
        return 77
    if p.returncode != 0:
        print(f"{what} exited with {p.returncode}", file=sys.stderr)
        return 1
    check_fn(p.stdout)
    if took >= LIMIT_S:
        print(f"{what} took {took:.1f} s (limit {LIMIT_S} s)", file=sys.stderr)
        return 1
    print(f"{what} ok in {took:.1f} s")
    return 0


def main(argv):
    bench, shards, opts = argv[0], argv[1], argv[2:]
    rc = smoke([sys.executable, bench, "--sizes", "2000", "--repeat", "1", "--odd", "--all",
                "--curve-size", "2000", "--curve-batches", "50,500", "--idle-users", "0,2000",
                "--idle-seconds", "3", "--tls-size", "2000"] + opts,
               lambda out: (check(out), check_plots(bench, out)), "bench.py")
    if rc != 0:
        return rc
    rc = smoke([sys.executable, shards, "--smoke"] + program(opts, "--reaper") +
               program(opts, "--gen"), check_shards, "shards.py --smoke")
    if rc != 0:
        return rc
    rtt = os.path.join(os.path.dirname(bench), "rtt.py")
    return smoke([sys.executable, rtt, "-n", "2000", "--rtt", "20", "--ranges", "1,4",
                  "--repeat", "1"] + program(opts, "--reaper") + program(opts, "--gen") +
                 program(opts, "--runstat"), check_rtt, "rtt.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

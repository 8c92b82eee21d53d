#!/usr/bin/python3
"""Draw the benchmarks' figures as PNG with gnuplot.

    plots.py bench MARKDOWN OUTDIR   the tables bench.py printed (run.sh keeps
                                     them): pass-time.png, pass time against
                                     users, log-log, for the ceiling, the
                                     reaper and the old loop; batch-size.png,
                                     the batch-size curve (those of the two
                                     tables that are there)
    plots.py churn JSON OUTDIR       churn.py --plots's latencies:
                                     crash-offline.png, the share of crashed
                                     users offline by each time after their
                                     set's TTL ran out, per mode

Each PNG comes with the data file gnuplot read (.dat) beside it. Exits 1
when a table or the data it needs is missing.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

COLORS = {"ceiling": "#1b9e77", "presence-reaper": "#d95f02", "old loop": "#7570b3"}
TERM = "set terminal pngcairo size 900,560 font 'DejaVu Sans,11' noenhanced"


def table(text, header_start):
    """Rows (lists of cells) of the Markdown table whose header starts so."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| " + header_start):
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip("|").split("|")])
            return rows
    return None


def num(cell):
    return float(cell.replace(",", ""))


def gnuplot(script, cwd):
    p = subprocess.run(["gnuplot"], input=script, text=True, cwd=cwd, capture_output=True)
    if p.returncode != 0:
        raise SystemExit(f"plots: gnuplot: {p.stderr}")


def pass_time(text, out):
    """users, then the median seconds of each method, one line per size."""
    rows = table(text, "users | method")
    if not rows:
        return None
    sizes = sorted({int(num(r[0])) for r in rows})
    median = {(int(num(r[0])), r[1]): num(r[3]) for r in rows}
    with open(out / "pass-time.dat", "w") as f:
        f.write("# users " + " ".join(m.replace(" ", "_") for m in COLORS) + "  (median s)\n")
        for n in sizes:
            f.write(f"{n} " + " ".join(str(median.get((n, m), "NaN")) for m in COLORS) + "\n")
    plots = ", ".join(f"'pass-time.dat' using 1:{i + 2} with linespoints lw 2 pt 7 "
                      f"lc rgb '{c}' title '{m}'" for i, (m, c) in enumerate(COLORS.items()))
    gnuplot(f"""{TERM}
set output 'pass-time.png'
set title 'A full pass, 1 % stale: seconds against users (median of the runs)'
set logscale xy
set xlabel 'users in the online set'
set ylabel 'seconds'
set grid
set key top left
set format x '%.0e'
plot {plots}
""", out)
    return "pass-time.png"


def batch_size(text, out):
    rows = table(text, "reaper.batch_size")
    if not rows:
        return None
    with open(out / "batch-size.dat", "w") as f:
        f.write("# batch_size median_s longest_command_ms(median pass)\n")
        for r in rows:
            longest = re.match(r"([\d.]+) ms", r[3])
            f.write(f"{int(num(r[0]))} {num(r[2])} {longest.group(1) if longest else 'NaN'}\n")
    gnuplot(f"""{TERM}
set output 'batch-size.png'
set title 'presence-reaper --once: the pass and its longest Redis command against batch_size'
set logscale x
set xlabel 'reaper.batch_size'
set ylabel 'pass, seconds (median)'
set y2label 'longest command, ms (median pass)'
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set grid
set key bottom right
plot 'batch-size.dat' using 1:2 axes x1y1 with linespoints lw 2 pt 7 lc rgb '#d95f02' title 'pass', \\
     'batch-size.dat' using 1:3 axes x1y2 with linespoints lw 2 pt 5 lc rgb '#1b9e77' title 'longest command'
""", out)
    return "batch-size.png"


def crash_offline(data, out):
    """One block per mode: seconds after the TTL ran out, share of crashed users offline."""
    d = json.loads(Path(data).read_text())
    blocks = []
    with open(out / "crash-offline.dat", "w") as f:
        for mode, lat in d["modes"].items():
            if not lat:
                raise SystemExit(f"plots: no latencies for {mode}")
            lat = sorted(lat)
            f.write(f"# {mode}: seconds after the TTL ran out, share offline\n")
            for i, ms in enumerate(lat):
                f.write(f"{max(ms, 1) / 1000.0} {(i + 1) / len(lat)}\n")
            f.write("\n\n")
            blocks.append(mode)
    colors = ["#7570b3", "#1b9e77", "#d95f02"]
    plots = ", ".join(f"'crash-offline.dat' index {i} using 1:2 with steps lw 2 "
                      f"lc rgb '{colors[i % 3]}' title '{m}'" for i, m in enumerate(blocks))
    gnuplot(f"""{TERM}
set output 'crash-offline.png'
set title "Crashed users offline, by the time after their socket set's TTL ran out\\n{d['users']} users, {d['churn']:g} % crashing a minute, default interval (30 s)"
set logscale x
set xrange [0.001:100]
set yrange [0:1.02]
set xlabel 'seconds after the TTL ran out'
set ylabel 'share of crashed users offline'
set grid
set key bottom right
plot {plots}
""", out)


def main(argv):
    if len(argv) != 3 or argv[0] not in ("bench", "churn"):
        print(__doc__, file=sys.stderr)
        return 64
    out = Path(argv[2])
    out.mkdir(parents=True, exist_ok=True)
    if argv[0] == "bench":
        text = Path(argv[1]).read_text()
        made = [m for m in (pass_time(text, out), batch_size(text, out)) if m]
        if not made:
            print("plots: nothing to draw: neither the main table nor the batch curve is there")
    else:
        crash_offline(argv[1], out)
        made = ["crash-offline.png"]
    for name in made:
        if (out / name).read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
            raise SystemExit(f"plots: {name} is not a PNG")
        print(f"plots: {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

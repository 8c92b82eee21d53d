#!/usr/bin/python3
"""The Grafana dashboard (packaging/grafana/presence-reaper.json) and the
Prometheus rules (packaging/prometheus/presence-reaper.rules.yml):

- the dashboard is dashboard JSON: a title, a uid, a schemaVersion, the
  datasource and job variables, panels with unique ids inside the 24-column
  grid, each non-row panel with targets that have a refId and an expr;
- every metric a dashboard query or a rule names is one the reaper exports
  (the families its source renders, and process_*) or a recording rule's;
- every dashboard query is valid PromQL: promtool checks them, each as a
  recording rule of a file of its own, $job standing for a regex;
- the views the dashboard must have are there: leader and replicas, online
  users, removals by the pass and on events, pass duration against the
  interval, guard trips, ghosts, Redis errors, and shards.

Usage: check_dashboard.py PROMTOOL SOURCE_ROOT
"""
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

NAME = re.compile(r"\b((?:presence_reaper_|process_|job:|job_shard:)[A-Za-z0-9_:]*)")
MUST = ["presence_reaper_is_leader", "presence_reaper_online_users",
        "job:presence_reaper_users_removed:rate5m", "job:presence_reaper_event_removals:rate5m",
        "presence_reaper_cycle_duration_seconds", "job:presence_reaper_interval_seconds:max",
        "presence_reaper_guard_tripped_total", "presence_reaper_ghosts_total",
        "presence_reaper_redis_errors_total", "presence_reaper_shard_online_users",
        "presence_reaper_shard_users_removed_total", "presence_reaper_shards_held"]


def exported(root):
    """Metric names the reaper renders: in its source, every presence_reaper_*
    name the text format is written with, and the quoted process_* ones."""
    names = set()
    for src in (root / "reaper").glob("*.c"):
        text = src.read_text()
        names |= set(re.findall(r"\b(presence_reaper_[a-z_]+[a-z])", text))
        names |= set(re.findall(r'"(process_[a-z_]+)', text))
    return names


def queries(dash):
    """(panel title, expr) of every target."""
    for p in dash["panels"]:
        for t in p.get("targets", []):
            yield p["title"], t["expr"]


def check_shape(dash):
    errors = []
    for key in ("title", "uid", "schemaVersion", "panels", "templating"):
        if key not in dash:
            errors.append(f"no {key}")
    names = [v["name"] for v in dash.get("templating", {}).get("list", [])]
    if names[:2] != ["datasource", "job"]:
        errors.append(f"variables {names}: want datasource and job")
    ids = [p["id"] for p in dash["panels"]]
    if len(ids) != len(set(ids)):
        errors.append(f"panel ids repeat: {ids}")
    for p in dash["panels"]:
        g = p["gridPos"]
        if g["x"] < 0 or g["w"] < 1 or g["x"] + g["w"] > 24 or g["h"] < 1:
            errors.append(f"{p['title']}: outside the grid {g}")
        if p["type"] != "row" and not all(t.get("refId") and t.get("expr")
                                          for t in p.get("targets") or [{}]):
            errors.append(f"{p['title']}: a target without refId or expr")
    return errors


def check_names(dash, rules, known):
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    errors = []
    exprs = [(f"panel {t}", e) for t, e in queries(dash)]
    exprs += [(f"rule {r.get('alert') or r.get('record')}", r["expr"])
              for g in rules["groups"] for r in g["rules"]]
    for where, expr in exprs:
        for name in NAME.findall(expr):
            if name not in known and name not in recorded:
                errors.append(f"{where}: {name} is neither exported nor recorded")
    used = " ".join(e for _, e in queries(dash))
    errors += [f"the dashboard shows no {m}" for m in MUST if m not in used]
    return errors


def check_promql(promtool, dash):
    groups = [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": e.replace("$job", ".*")}
        for i, (_, e) in enumerate(queries(dash))]}]
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        yaml.safe_dump({"groups": groups}, f)
        f.flush()
        p = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
    return [] if p.returncode == 0 else [f"promtool: {p.stdout}{p.stderr}"]


def main(argv):
    promtool, root = argv[0], Path(argv[1])
    dash = json.loads((root / "packaging" / "grafana" / "presence-reaper.json").read_text())
    rules = yaml.safe_load((root / "packaging" / "prometheus" /
                            "presence-reaper.rules.yml").read_text())
    known = exported(root)
    errors = check_shape(dash) + check_names(dash, rules, known) + check_promql(promtool, dash)
    for e in errors:
        print(e)
    if not errors:
        print(f"dashboard: {len(dash['panels'])} panels, {len(list(queries(dash)))} queries, "
              f"each valid PromQL naming only the {len(known)} exported metrics and the "
              "recording rules")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

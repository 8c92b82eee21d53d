#!/usr/bin/python3
"""The Prometheus rules (packaging/prometheus): promtool check rules, promtool
test rules, and every alert has a test in which it fires and one in which it
stays silent.

Usage: check_rules.py PROMTOOL RULES_DIR
"""
import subprocess
import sys
from pathlib import Path

import yaml


def coverage(rules, tests):
    """{alert: [fires, silent]} from the test file's alert_rule_tests."""
    alerts = {r["alert"]: [False, False] for g in rules["groups"] for r in g["rules"]
              if "alert" in r}
    for t in tests["tests"]:
        for case in t.get("alert_rule_test", []):
            name = case["alertname"]
            if name not in alerts:
                raise SystemExit(f"a test names {name}, which no rule defines")
            alerts[name][0 if case.get("exp_alerts") else 1] = True
    return alerts


def main(argv):
    promtool, folder = argv[0], Path(argv[1])
    rules = folder / "presence-reaper.rules.yml"
    tests = folder / "presence-reaper.rules.test.yml"
    for args in (["check", "rules", rules.name], ["test", "rules", tests.name]):
        p = subprocess.run([promtool] + args, cwd=folder, capture_output=True, text=True)
        print(p.stdout + p.stderr)
        if p.returncode != 0:
            print(f"promtool {' '.join(args)}: exit {p.returncode}")
            return 1
    alerts = coverage(yaml.safe_load(rules.read_text()), yaml.safe_load(tests.read_text()))
    missing = [f"{a}: no test where it {'fires' if not f else 'stays silent'}"
               for a, (f, s) in alerts.items() if not (f and s)]
    for m in missing:
        print(m)
    print(f"{len(alerts)} alerts, each fired and kept silent by a test" if not missing else "")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

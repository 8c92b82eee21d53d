"""A real Prometheus (Debian's package) scrapes two real reapers, a leader and
a standby, every second, with the rules of packaging/prometheus. The guard
trips and PresenceReaperGuardTripped fires, as Prometheus's HTTP API says;
the leader stops, the standby takes over, and PresenceReaperNoLeader never
fires."""

import json
import shutil
import signal
import subprocess
import time
import urllib.request
from urllib.parse import quote

import pytest

from harness import REPO, free_port, hold_for, wait_until

RULES = REPO / "packaging" / "prometheus" / "presence-reaper.rules.yml"
DASHBOARD = REPO / "packaging" / "grafana" / "presence-reaper.json"
FAST = {"reaper.interval": 0.5, "leader.lease": 2.0, "leader.renew": 0.5}
LIVE = [b"live-%03d" % i for i in range(150)]


class Prometheus:
    def __init__(self, folder, targets):
        self.port = free_port()
        conf = folder / "prometheus.yml"
        shutil.copy(RULES, folder / "rules.yml")
        conf.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: [rules.yml]\n"
            "scrape_configs:\n"
            "  - job_name: reaper\n"
            f"    static_configs: [{{targets: {json.dumps(targets)}}}]\n")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={conf}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(folder / "prometheus.log", "wb"))
        wait_until(self.ready, 30, interval=0.2, what="Prometheus to be ready")

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
            return json.loads(r.read())

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2):
                return True
        except OSError:
            return False

    def alerts(self, name):
        """The states of alert `name` now: ["firing"], ["pending"], or []."""
        return [a["state"] for a in self.get("/api/v1/alerts")["data"]["alerts"]
                if a["labels"]["alertname"] == name]

    def value(self, query):
        res = self.get("/api/v1/query?query=" + quote(query))["data"]["result"]
        return {r["metric"].get("instance"): float(r["value"][1]) for r in res}

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def prom_pair(h, tmp_path):
    """A leader (a) and a standby (b) with metrics listeners, and Prometheus scraping both."""
    ports = {"a": free_port(), "b": free_port()}
    h.rt.connect_many(LIVE)
    daemons = {}
    for name in "ab":
        conf = h.config(dict(FAST, **{"metrics.listen": f"127.0.0.1:{ports[name]}"}))
        daemons[name] = h.start(["-c", conf], env={"POD_NAME": f"prom-{name}"}, name=name)
        if name == "a":
            wait_until(lambda: h.holder([daemons["a"]]) is daemons["a"], 10, what="a to lead")
    daemons["b"].wait_log(r"standby: lock held by prom-a", 10)
    prom = Prometheus(tmp_path, [f"127.0.0.1:{ports[n]}" for n in "ab"])
    try:
        yield prom, daemons, ports
    finally:
        prom.stop()


def test_prometheus_fires_the_guard_alert_and_no_leader_alert_stays_silent(h, prom_pair):
    prom, d, ports = prom_pair
    a, b = f"127.0.0.1:{ports['a']}", f"127.0.0.1:{ports['b']}"
    wait_until(lambda: prom.value("presence_reaper_is_leader") == {a: 1.0, b: 0.0}, 20,
               interval=0.5, what="Prometheus to see a leading and b standing by")
    rules = prom.get("/api/v1/rules")["data"]["groups"]
    assert sum(len(g["rules"]) for g in rules) == 16, rules
    assert prom.alerts("PresenceReaperGuardTripped") == []

    h.rt.crash_many(LIVE[:140])
    d["a"].wait_log(r"stale-ratio guard", 10)
    wait_until(lambda: prom.alerts("PresenceReaperGuardTripped") == ["firing"], 20,
               interval=0.5, what="PresenceReaperGuardTripped to fire")
    assert h.members() == set(LIVE)

    d["a"].signal(signal.SIGKILL)
    t0 = time.monotonic()
    wait_until(lambda: prom.value("presence_reaper_is_leader").get(b) == 1.0, 20,
               interval=0.5, what="Prometheus to see b take over")
    took = time.monotonic() - t0
    hold_for(5, lambda: prom.alerts("PresenceReaperNoLeader") in ([], ["pending"]),
             interval=0.5, what="PresenceReaperNoLeader not to fire")
    wait_until(lambda: prom.alerts("PresenceReaperNoLeader") == [], 10, interval=0.5,
               what="PresenceReaperNoLeader to be inactive with b leading")
    assert "firing" not in prom.alerts("PresenceReaperNoSuccessfulPass")
    print(f"b seen leading by Prometheus {took:.1f} s after a was killed")


def test_every_dashboard_query_runs_and_the_group_views_have_data(h, prom_pair):
    """Each query of the Grafana dashboard, $job set to the scrape job, as
    Grafana sends it: Prometheus runs it; those of the group's views (not the
    shards', nor those over an hour's failovers) return data."""
    prom, _, _ = prom_pair
    dash = json.loads(DASHBOARD.read_text())
    # The rates need two scrapes, the recorded rates two of those.
    wait_until(lambda: prom.value('job:presence_reaper_users_removed:rate5m') != {}, 30,
               interval=0.5, what="the recorded rates to have data")
    empty = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            q = t["expr"].replace("$job", "reaper")
            got = prom.get("/api/v1/query?query=" + quote(q))
            assert got["status"] == "success", (p["title"], q, got)
            if not got["data"]["result"]:
                empty.append(p["title"])
    assert all("shard" in t.lower() for t in empty), f"no data in: {sorted(set(empty))}"

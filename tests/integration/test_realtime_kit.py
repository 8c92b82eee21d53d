"""The realtime servers' kit (packaging/realtime): presence.ts, compiled with
tsc and run by Node with node-redis and with ioredis (from the npm registry,
pinned in packaging/realtime/package-lock.json, installed by tests/setup.sh),
against a real redis-server and a real presence-reaper. A user connects, its
server stops heartbeating as a crashed one would, the reaper removes it, and
the offline event reaches the subscriber: by PUBLISH, and from the stream
through a consumer group."""

import shutil
import subprocess
from pathlib import Path

import pytest

from harness import REPO, wait_until

KIT = REPO / "packaging" / "realtime"
DRIVER = Path(__file__).parent / "realtime" / "kit_check.ts"
TSCONFIG = """{"compilerOptions": {"target": "ES2020", "module": "commonjs", "strict": true,
  "esModuleInterop": true, "skipLibCheck": true, "types": ["node"], "outDir": "."},
 "files": ["presence.ts", "shard.ts", "kit_check.ts"]}
"""


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """The kit and the driver compiled in a folder of their own; the kit's node_modules."""
    assert (KIT / "node_modules" / "ioredis").is_dir() and (KIT / "node_modules" / "redis").is_dir(), \
        "packaging/realtime/node_modules is missing: tests/setup.sh runs npm ci there"
    out = tmp_path_factory.mktemp("kit")
    for f in list(KIT.glob("*.ts")) + list(KIT.glob("*.lua")) + [DRIVER]:
        shutil.copy(f, out)
    (out / "node_modules").symlink_to(KIT / "node_modules")
    (out / "tsconfig.json").write_text(TSCONFIG)
    p = subprocess.run(["tsc", "-p", "tsconfig.json"], cwd=out, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    return out


@pytest.mark.parametrize("mode", ["publish", "stream"])
@pytest.mark.parametrize("client", ["node-redis", "ioredis"])
def test_a_crashed_users_offline_event_reaches_the_realtime_server(h, kit, client, mode):
    d = h.start(["-c", h.config({"reaper.interval": 0.3, "events.mode": mode,
                                 "events.stream_maxlen": 0}, url=h.redis.tcp_url)],
                env={"POD_NAME": "kit"}, name="kit")
    d.wait_log(r"became leader", 10)
    user = f"kit-{client}-{mode}"
    p = subprocess.Popen(["node", "kit_check.js", client, mode, str(h.redis.port), user],
                         cwd=kit, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=40)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, out
    lines = out.splitlines()
    assert "ready" in lines and f"ok offline event for {user}" in lines, out
    assert sum(line.startswith("ok ") for line in lines) == 7 + (mode == "stream"), out
    assert user.encode() not in h.members()
    assert b"leaves" not in h.members()
    wait_until(lambda: d.count(r"cycle done") >= 1, 5, what="a pass", alive=[d])

"""Redis goes away and comes back: the daemon survives, does not spin, resumes."""

import signal
import threading
import time

import redis

from harness import hold_for, wait_until

# Backoff caps at 5 s; allow a full cap, a cycle and some slack.
RESUME = 12


def leader(h, settings=None, pod="pod-a", url=None):
    d = h.start(["-c", h.config(settings, url=url)], env={"POD_NAME": pod}, name=pod)
    wait_until(lambda: h.holder([d]) is d, 10, what=f"{pod} to lead")
    d.wait_cycles(1, 10)
    return d


def reaps_again(h, d, tag):
    live, stale = b"live-" + tag, b"stale-" + tag
    h.rt.connect_many([live, stale])
    h.rt.crash_many([stale])
    # Earlier rounds leave their live users behind: look at this round's pair.
    wait_until(lambda: live in h.members() and stale not in h.members(), RESUME,
               what="reaping to resume")
    assert d.alive()


def test_redis_restart_unix_socket(h):
    d = leader(h)
    h.redis.stop()
    cpu0 = d.cpu_seconds()
    hold_for(3, d.alive, what="the daemon to survive the outage")
    used = d.cpu_seconds() - cpu0
    assert used < 0.5, f"the daemon used {used:.2f}s of CPU during a 3s outage (spinning?)"

    h.redis_back()
    wait_until(lambda: h.holder([d]) is d, RESUME, what="the lock to be taken again", alive=[d])
    reaps_again(h, d, b"after")


def test_redis_restart_tcp(h):
    d = leader(h, url=h.redis.tcp_url)
    h.redis.stop()
    cpu0 = d.cpu_seconds()
    hold_for(3, d.alive, what="the daemon to survive the outage")
    used = d.cpu_seconds() - cpu0
    assert used < 0.5, f"the daemon used {used:.2f}s of CPU during a 3s outage (spinning?)"

    h.redis_back()
    reaps_again(h, d, b"after")


def test_client_kill_reconnects(h):
    d = leader(h)
    for _ in range(3):
        killed = h.r.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        assert killed >= 1
        reaps_again(h, d, b"k%d" % _)


def test_debug_sleep_longer_than_command_timeout(h):
    d = leader(h, {"redis.command_timeout": 0.5})

    def sleeper():
        c = h.redis.client(socket_timeout=10)
        c.execute_command("DEBUG", "SLEEP", "2")
        c.close()
    t = threading.Thread(target=sleeper)
    t.start()
    t.join(15)
    assert not t.is_alive()
    assert d.alive()
    reaps_again(h, d, b"after-sleep")


def test_client_pause_writes(h):
    d = leader(h, {"redis.command_timeout": 0.5})
    h.rt.connect_many([b"stale-during-pause"])
    h.rt.crash_many([b"stale-during-pause"])
    h.r.execute_command("CLIENT", "PAUSE", "2000", "WRITE")
    hold_for(1, d.alive, what="the daemon to survive a write pause")
    wait_until(lambda: b"stale-during-pause" not in h.members(), RESUME,
               what="the stale user to be reaped after the pause", alive=[d])
    reaps_again(h, d, b"after-pause")


def test_sigterm_while_redis_is_down(h):
    d = leader(h)
    h.redis.stop()
    d.wait_log(r"(?i)(error|warn)", 5)
    d.signal(signal.SIGTERM)
    assert d.wait_exit(2) == 0, d.stderr()

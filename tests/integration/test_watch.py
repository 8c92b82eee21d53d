"""reaper.watch_expiry: reaping on key-expiry events, with the pass as safety net."""

import time

from harness import wait_until

WATCH = {"reaper.watch_expiry": True, "reaper.interval": 30}


def notify(h, flags="Ex"):
    h.r.config_set("notify-keyspace-events", flags)


def numsub(h):
    return dict(h.r.pubsub_numsub("__keyevent@0__:expired")).get(b"__keyevent@0__:expired", 0)


def leader(h, settings, pod="w-1"):
    d = h.start(["-c", h.config(settings)], env={"POD_NAME": pod}, name=pod)
    d.wait_log(r"watching key expiry", 10)
    wait_until(lambda: len(d.cycles()) >= 1, 10, what=f"{pod}'s first pass")
    return d


def test_crashed_user_reaped_within_a_second_of_expiry(h):
    notify(h)
    h.rt.connect_many([b"live"])
    d = leader(h, WATCH)
    worst = 0.0
    for i in range(5):
        user = b"crash-%d" % i
        h.rt.connect(user)
        h.r.pexpire(h.rt.key(user), 200)    # the server died; the set runs out
        wait_until(lambda: h.r.exists(h.rt.key(user)) == 0, 5, what="the socket set to expire")
        t0 = time.monotonic()
        wait_until(lambda: not h.r.sismember(h.rt.online, user), 1.0,
                   what=f"{user!r} reaped within 1 s of expiry (interval is 30 s)")
        worst = max(worst, time.monotonic() - t0)
    assert h.members() == {b"live"}
    assert len(d.cycles()) == 1, "the periodic pass must not be what reaped them"
    print(f"worst expiry-to-offline latency: {worst * 1000:.0f} ms")


def test_reconnect_racing_the_expiry_event_is_never_lost(h):
    notify(h)
    d = leader(h, WATCH)
    users = [b"racer-%d" % i for i in range(200)]
    h.rt.connect_many(users)
    # Each set expires and its user reconnects at once, before the event is handled.
    pipe = h.r.pipeline(transaction=False)
    for u in users:
        pipe.pexpire(h.rt.key(u), 1)
    pipe.execute()
    wait_until(lambda: all(h.r.exists(h.rt.key(u)) == 0 for u in users), 5,
               what="every socket set to expire")
    h.rt.connect_many(users)
    # Events for all 200 were published; give the leader time to handle them.
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert h.members() >= set(users), "a reconnected user was removed"
        time.sleep(0.05)
    assert h.members() == set(users)
    assert d.alive()


def test_pass_still_reaps_when_the_subscriber_is_killed(h):
    notify(h)
    d = leader(h, dict(WATCH, **{"reaper.interval": 1}))
    h.r.client_kill_filter(_type="pubsub")
    d.wait_log(r"key-expiry subscription lost", 5)
    # While unsubscribed, a user goes stale: the pass reaps it anyway.
    h.rt.connect(b"missed")
    h.rt.crash(b"missed")
    wait_until(lambda: b"missed" not in h.members(), 5, what="the pass to reap")
    wait_until(lambda: numsub(h) == 1, 10, what="the subscription to come back")


def test_without_server_notifications_it_says_so_and_changes_nothing(h):
    notify(h, "")
    d = h.start(["-c", h.config(WATCH)], env={"POD_NAME": "w-quiet"}, name="w-quiet")
    d.wait_log(r"notify-keyspace-events is \"\", without E and x", 10)
    assert h.r.config_get("notify-keyspace-events")["notify-keyspace-events"] == ""
    rc, out, err = h.run(["-c", h.config(WATCH), "-t"])
    assert rc == 0, err
    assert b"missing E and x; only the periodic pass will reap" in out, out


def test_enable_notifications_sets_them(h):
    notify(h, "g")
    d = leader(h, dict(WATCH, **{"reaper.enable_notifications": True}))
    flags = h.r.config_get("notify-keyspace-events")["notify-keyspace-events"]
    assert "E" in flags and ("x" in flags or "A" in flags), flags
    assert "g" in flags, "the flags already set must be kept"
    h.rt.connect(b"soon")
    h.r.pexpire(h.rt.key(b"soon"), 100)
    wait_until(lambda: b"soon" not in h.members(), 3, what="event-driven reaping")
    assert d.alive()


def test_only_the_leader_subscribes_and_a_deposed_leader_unsubscribes(h):
    notify(h)
    settings = dict(WATCH, **{"leader.lease": 2, "leader.renew": 0.5})
    a = leader(h, settings, pod="w-a")
    b = h.start(["-c", h.config(settings)], env={"POD_NAME": "w-b"}, name="w-b")
    b.wait_log(r"standby", 10)
    assert numsub(h) == 1
    assert "watching key expiry" not in b.stderr()
    h.r.set(b"presence:reaper:leader", b"intruder:1:0123456789abcdef", px=60000)
    wait_until(lambda: numsub(h) == 0, 5, what="the deposed leader to unsubscribe")
    a.wait_log(r"stopped watching key expiry", 5)


def test_event_removals_show_in_metrics_and_log(h):
    from harness import free_port
    import http.client
    notify(h)
    port = free_port()
    d = leader(h, dict(WATCH, **{"metrics.listen": f"127.0.0.1:{port}", "reaper.interval": 2}))
    for i in range(3):
        h.rt.connect(b"ev-%d" % i)
        h.r.pexpire(h.rt.key(b"ev-%d" % i), 100)
    wait_until(lambda: not any(h.r.sismember(h.rt.online, b"ev-%d" % i) for i in range(3)), 3,
               what="event-driven reaping")
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    assert "presence_reaper_event_removals_total 3" in body, body
    d.wait_log(r"since the last pass: \d+ removed by the pass, 3 on key-expiry events", 5)

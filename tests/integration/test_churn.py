"""Realtime servers connect, heartbeat, disconnect and crash while two reapers run.

The invariant that matters to users: a user with a live socket set is in the
online set, at every instant.  The realtime scripts keep it atomically; a
reaper that checks and removes in two steps breaks it when a user reconnects in
between.  A sampler checks it atomically (one Lua script over every key) all
through the run; at the end the online set must be exactly the users whose
socket set exists.
"""

import random
import threading
import time

from harness import LIVE_ONLINE_CHECK, ONLINE, Realtime, wait_until

N_SERVERS = 4
USERS_PER_SERVER = 100
N_STABLE = 20
CHURN_SECONDS = 8

class Server(threading.Thread):
    """One realtime server owning a slice of the users; it may crash and come back."""

    def __init__(self, h, index, users, stop):
        super().__init__(name=f"server-{index}", daemon=True)
        self.r = h.redis.client()
        self.rt = Realtime(self.r)
        self.index = index
        self.users = users
        self.stop = stop
        self.rng = random.Random(1000 + index)
        self.sockets = {}          # user -> socket ids open on this incarnation
        self.incarnation = 0
        self.next_sock = 0
        self.stats = {"connect": 0, "disconnect": 0, "heartbeat": 0, "crash_user": 0, "crash_server": 0}
        self.error = None

    def connected(self):
        return {u for u, s in self.sockets.items() if s}

    def _new_socket(self):
        self.next_sock += 1
        return b"srv%d.%d:%d" % (self.index, self.incarnation, self.next_sock)

    def _abandon(self, user):
        # No disconnect handler runs: the set is left to expire soon.
        self.r.pexpire(self.rt.key(user), self.rng.randint(1000, 2000))
        self.sockets.pop(user, None)

    def step(self):
        op = self.rng.random()
        live = [u for u, s in self.sockets.items() if s]
        if op < 0.45 or not live:
            user = self.rng.choice(self.users)
            sock = self._new_socket()
            self.rt.connect(user, sock, ttl=60)
            self.sockets.setdefault(user, set()).add(sock)
            self.stats["connect"] += 1
        elif op < 0.70:
            user = self.rng.choice(live)
            sock = self.rng.choice(sorted(self.sockets[user]))
            self.rt.disconnect(user, sock)
            self.sockets[user].discard(sock)
            self.stats["disconnect"] += 1
        elif op < 0.85:
            pipe = self.r.pipeline(transaction=False)
            for user in live:
                for _ in self.sockets[user]:
                    self.rt.heartbeat(user, ttl=60, client=pipe)
            pipe.execute()
            self.stats["heartbeat"] += 1
        elif op < 0.997:
            self._abandon(self.rng.choice(live))
            self.stats["crash_user"] += 1
        else:
            for user in live:
                self._abandon(user)
            self.incarnation += 1
            self.stats["crash_server"] += 1

    # Redis refusals a subclass rides out as the real servers do: the
    # operation failed, the state is as before, go on (counted in refused).
    tolerated = ()

    def run(self):
        self.refused = 0
        try:
            while not self.stop.is_set():
                try:
                    self.step()
                except self.tolerated:
                    self.refused += 1
                # Pacing between client events, not a wait for a condition.
                self.stop.wait(self.rng.uniform(0.001, 0.01))
        except Exception as e:  # reported by the test
            self.error = e


class Sampler(threading.Thread):
    def __init__(self, h, users, stop):
        super().__init__(name="sampler", daemon=True)
        self.r = h.redis.client()
        self.check = self.r.register_script(LIVE_ONLINE_CHECK)
        self.keys = [ONLINE] + [h.rt.key(u) for u in users]
        self.users = list(users)
        self.stop = stop
        self.violations = []
        self.samples = 0
        self.error = None

    tolerated = ()      # refusals that only skip a sample

    def run(self):
        try:
            while not self.stop.is_set():
                try:
                    bad = self.check(keys=self.keys, args=self.users)
                except self.tolerated:
                    bad = None
                self.samples += 1
                if bad:
                    self.violations.append((time.monotonic(), bad))
                self.stop.wait(0.01)
        except Exception as e:
            self.error = e


def wait_settled(h, users):
    """Let the short TTLs of crashed users run out: every socket set either
    gone or a live one (TTL refreshed to 60 s)."""
    def settled():
        pipe = h.r.pipeline(transaction=False)
        for u in users:
            pipe.pttl(h.rt.key(u))
        return all(t == -2 or t > 10000 for t in pipe.execute())
    wait_until(settled, 5, interval=0.05, what="crashed users' socket sets to expire")


def test_churn_with_two_reapers(h):
    conf = h.config({"reaper.interval": 0.3, "reaper.batch_size": 50})
    daemons = [h.start(["-c", conf], env={"POD_NAME": f"pod-{n}"}, name=f"pod-{n}") for n in "ab"]
    wait_until(lambda: h.holder(daemons) is not None, 10, what="a leader")

    stable = [b"stable-%d" % i for i in range(N_STABLE)]
    h.rt.connect_many(stable)
    pools = [[b"s%d-u%d" % (i, j) for j in range(USERS_PER_SERVER)] for i in range(N_SERVERS)]
    everyone = stable + [u for pool in pools for u in pool]

    stop_servers, stop_sampler = threading.Event(), threading.Event()
    servers = [Server(h, i, pools[i], stop_servers) for i in range(N_SERVERS)]
    sampler = Sampler(h, everyone, stop_sampler)
    sampler.start()
    for s in servers:
        s.start()
    churn_end = time.monotonic() + CHURN_SECONDS
    wait_until(lambda: time.monotonic() >= churn_end or any(s.error for s in servers)
               or sampler.error or not all(d.alive() for d in daemons),
               CHURN_SECONDS + 5, interval=0.1, what="the churn period")
    stop_servers.set()
    for s in servers:
        s.join(10)
        assert not s.is_alive(), s.name
    for s in servers:
        assert s.error is None, f"{s.name}: {s.error!r}"
    assert all(d.alive() for d in daemons), "a reaper died during the churn"

    wait_settled(h, everyone)

    leader = wait_until(lambda: h.holder(daemons), 10, what="a leader after the churn")
    leader.wait_cycles(2, 10)
    stop_sampler.set()
    sampler.join(10)
    assert sampler.error is None, repr(sampler.error)

    online = h.members()
    pipe = h.r.pipeline(transaction=False)
    for u in everyone:
        pipe.exists(h.rt.key(u))
    existing = {u for u, e in zip(everyone, pipe.execute()) if e}
    believed = set(stable).union(*[s.connected() for s in servers])

    totals = {k: sum(s.stats[k] for s in servers) for k in servers[0].stats}
    removed = sum(int(c["removed"]) for d in daemons for c in d.cycles())
    summary = f"ops={totals} removed_by_reaper={removed} samples={sampler.samples}"

    assert not sampler.violations, (
        f"{len(sampler.violations)} samples saw users with a live socket set missing from "
        f"the online set, first: {sampler.violations[0][1][:10]} ({summary})")
    assert believed <= online, f"connected users missing: {sorted(believed - online)[:10]} ({summary})"
    assert online - existing == set(), f"stale users left: {sorted(online - existing)[:10]} ({summary})"
    assert existing - online == set(), f"live socket sets without presence: {sorted(existing - online)[:10]}"
    assert online == existing
    assert sampler.samples >= 50, summary
    assert totals["crash_user"] >= 50 and totals["crash_server"] >= 1, summary
    assert removed >= 50, f"the churn should have made the reapers remove users ({summary})"
    assert all(d.alive() for d in daemons)

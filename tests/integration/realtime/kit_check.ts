/*
 * Drives packaging/realtime/presence.ts as a realtime server would, against
 * a real redis-server and a real presence-reaper (test_realtime_kit.py):
 *
 *   node kit_check.js CLIENT MODE PORT USER
 *
 * CLIENT is node-redis or ioredis, MODE publish or stream. It connects USER
 * with two sockets and a 1 s TTL, closes one, heartbeats once, listens for
 * offline events, prints "ready", then stops heartbeating, as a crashed
 * server would: the reaper removes USER once the set runs out, and the
 * event must arrive. Prints one line a step; exits 0 when all held.
 */
import Redis from "ioredis";
import { createClient } from "redis";

import {
  OfflineEvent, OfflineStream, Presence, RedisCommands, RedisSubscriber, fromIoredis,
  fromNodeRedis, onOffline, subscriberFromIoredis, subscriberFromNodeRedis,
} from "./presence";

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`failed: ${what}`);
  console.log(`ok ${what}`);
}

async function clients(kind: string, port: number):
  Promise<{ cmds: RedisCommands; sub: RedisSubscriber; close: () => Promise<void> }> {
  if (kind === "ioredis") {
    const a = new Redis(port, "127.0.0.1"), b = new Redis(port, "127.0.0.1");
    return { cmds: fromIoredis(a), sub: subscriberFromIoredis(b),
      close: async () => { a.disconnect(); b.disconnect(); } };
  }
  const a = createClient({ url: `redis://127.0.0.1:${port}` });
  await a.connect();
  const b = a.duplicate();
  await b.connect();
  return { cmds: fromNodeRedis(a), sub: subscriberFromNodeRedis(b),
    close: async () => { await a.quit(); await b.quit(); } };
}

/** The first offline event for user, by mode. */
async function listen(mode: string, cmds: RedisCommands, sub: RedisSubscriber, user: string):
  Promise<() => Promise<OfflineEvent>> {
  if (mode === "publish") {
    let got: (e: OfflineEvent) => void = () => undefined;
    const first = new Promise<OfflineEvent>((resolve) => { got = resolve; });
    await onOffline(sub, (e) => { if (e.userId === user) got(e); });
    return () => first;
  }
  const stream = new OfflineStream(cmds, { group: "chat-servers", consumer: "server-1", blockMs: 1000 });
  await stream.ensureGroup();
  await stream.ensureGroup();      // a second server starting: the group is kept
  return async () => {
    for (;;) {
      const batch = await stream.read();
      await stream.ack(batch.map((b) => b.id));
      const mine = batch.find((b) => b.event.userId === user);
      if (mine) {
        check((await stream.read(true)).length === 0, "nothing left pending after XACK");
        return mine.event;
      }
    }
  };
}

async function main(): Promise<void> {
  const [kind, mode, port, user] = process.argv.slice(2) as [string, string, string, string];
  const { cmds, sub, close } = await clients(kind, Number(port));
  const presence = new Presence(cmds, { socketTtlSeconds: 1 });
  check(await presence.connect(user, "s1"), "the first socket brings the user online");
  check(!(await presence.connect(user, "s2")), "a second socket does not");
  check(!(await presence.disconnect(user, "s2")), "closing one of two sockets keeps the user online");
  check(await presence.heartbeat(user), "a heartbeat refreshes the live set");
  check(await presence.connect("leaves", "s1") && await presence.disconnect("leaves", "s1"),
    "a clean close of the last socket takes the user offline");
  const next = await listen(mode, cmds, sub, user);
  console.log("ready");
  const e = await next();
  check(e.status === "offline" && e.reason === "stale" && e.ts > 0, `offline event for ${e.userId}`);
  check(!(await presence.heartbeat(user)), "a heartbeat never brings a reaped set back");
  await close();
}

const deadline = setTimeout(() => { console.log("timed out"); process.exit(2); }, 30000);
main().then(() => { clearTimeout(deadline); }, (err) => { console.log(String(err)); process.exit(1); });

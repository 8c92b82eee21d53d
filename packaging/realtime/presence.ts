/*
 * The realtime servers' side of presence-reaper's contract, for node-redis
 * (v4) and ioredis (v5): connect, heartbeat and disconnect run the Lua
 * scripts next to this file (the ones presence-reaper's tests run), and the
 * offline events the reaper sends arrive by PUBLISH or from a stream read
 * with a consumer group.
 *
 *   const presence = new Presence(fromIoredis(redis));
 *   await presence.connect(userId, socketId);        // on a WebSocket open
 *   setInterval(() => presence.heartbeat(userId), 20_000);
 *   await presence.disconnect(userId, socketId);     // on a clean close
 *
 * The key names default to presence-reaper's; with keys.shards, give the
 * shards (a count or the names) and the templates with <shard>.
 */
import { createHash } from "crypto";
import { readFileSync } from "fs";
import { join } from "path";

import { shardKey, shardName } from "./shard";

/** Raw commands, the one thing the module needs of a client. */
export interface RedisCommands {
  send(args: string[]): Promise<unknown>;
}

/** node-redis v4: client.sendCommand. */
export function fromNodeRedis(client: { sendCommand(args: string[]): Promise<unknown> }): RedisCommands {
  return { send: (args) => client.sendCommand(args) };
}

/** ioredis v5: client.call. */
export function fromIoredis(client: { call(cmd: string, ...args: string[]): Promise<unknown> }): RedisCommands {
  return { send: ([cmd, ...args]) => client.call(cmd as string, ...args) };
}

export interface PresenceOptions {
  onlineSet?: string;          // keys.online_set
  socketPrefix?: string;       // keys.socket_prefix
  socketSuffix?: string;       // keys.socket_suffix
  socketTtlSeconds?: number;   // the socket set's TTL, refreshed by heartbeat()
  shards?: number | readonly string[];  // keys.shards; the templates then name <shard>
}

const DEFAULTS = {
  onlineSet: "presence:online-users",
  socketPrefix: "presence:user:",
  socketSuffix: ":sockets",
  socketTtlSeconds: 60,
};

/** A Lua script next to this file, run by EVALSHA and loaded by EVAL on NOSCRIPT. */
class Script {
  readonly source: string;
  readonly sha: string;

  constructor(name: string) {
    this.source = readFileSync(join(__dirname, name), "utf8");
    this.sha = createHash("sha1").update(this.source).digest("hex");
  }

  async run(redis: RedisCommands, keys: string[], args: string[]): Promise<unknown> {
    const rest = [String(keys.length), ...keys, ...args];
    try {
      return await redis.send(["EVALSHA", this.sha, ...rest]);
    } catch (e) {
      if (!String((e as Error).message ?? e).startsWith("NOSCRIPT")) throw e;
      return redis.send(["EVAL", this.source, ...rest]);
    }
  }
}

const scripts = {
  connect: new Script("connect.lua"),
  heartbeat: new Script("heartbeat.lua"),
  disconnect: new Script("disconnect.lua"),
};

export class Presence {
  private readonly o: Required<Omit<PresenceOptions, "shards">> & Pick<PresenceOptions, "shards">;

  constructor(private readonly redis: RedisCommands, options: PresenceOptions = {}) {
    this.o = { ...DEFAULTS, ...options };
    const named = [this.o.onlineSet, this.o.socketPrefix].some((t) => t.includes("<shard>"));
    if ((this.o.shards !== undefined) !== named)
      throw new Error("with shards, onlineSet and socketPrefix name <shard>; without, neither may");
  }

  /** The user's online set and socket set. */
  keys(userId: string): [string, string] {
    const shard = this.o.shards === undefined ? "" : shardName(userId, this.o.shards);
    const at = (t: string) => (this.o.shards === undefined ? t : shardKey(t, shard));
    return [at(this.o.onlineSet), at(this.o.socketPrefix) + userId + at(this.o.socketSuffix)];
  }

  /** A socket opened. True when it is the user's first: the user came online. */
  async connect(userId: string, socketId: string): Promise<boolean> {
    const [online, sockets] = this.keys(userId);
    return (await scripts.connect.run(this.redis, [online, sockets],
      [userId, socketId, String(this.o.socketTtlSeconds)])) === 1;
  }

  /** Keep the user's sockets alive; false when the set is gone (the user was reaped). */
  async heartbeat(userId: string): Promise<boolean> {
    const [, sockets] = this.keys(userId);
    return (await scripts.heartbeat.run(this.redis, [sockets],
      [String(this.o.socketTtlSeconds)])) === 1;
  }

  /** A socket closed cleanly. True when it was the user's last: the user went offline. */
  async disconnect(userId: string, socketId: string): Promise<boolean> {
    const [online, sockets] = this.keys(userId);
    return (await scripts.disconnect.run(this.redis, [online, sockets], [userId, socketId])) === 1;
  }
}

/** An offline event as presence-reaper sends it (events.mode publish or stream). */
export interface OfflineEvent {
  userId: string;            // as JSON can carry it; see userIdBase64
  userIdBase64?: string;     // the exact bytes, when the ID is not valid UTF-8
  status: "offline";
  reason: string;            // "stale": its socket set was gone
  ts: number;                // ms, Redis's clock
}

export function parseOfflineEvent(payload: string): OfflineEvent {
  const e = JSON.parse(payload) as Record<string, unknown>;
  if (typeof e.user_id !== "string" || e.status !== "offline" || typeof e.ts !== "number")
    throw new Error(`not an offline event: ${payload}`);
  const out: OfflineEvent = { userId: e.user_id, status: "offline", reason: String(e.reason), ts: e.ts };
  if (typeof e.user_id_base64 === "string") out.userIdBase64 = e.user_id_base64;
  return out;
}

/** A connection in subscriber mode, for events.mode "publish". */
export interface RedisSubscriber {
  subscribe(channel: string, onMessage: (message: string) => void): Promise<void>;
}

/** node-redis v4: a client from client.duplicate(), connected. */
export function subscriberFromNodeRedis(client: {
  subscribe(channel: string, listener: (message: string) => void): Promise<void>;
}): RedisSubscriber {
  return { subscribe: (channel, onMessage) => client.subscribe(channel, onMessage) };
}

/** ioredis v5: a connection of its own (it goes into subscriber mode). */
export function subscriberFromIoredis(client: {
  subscribe(channel: string): Promise<unknown>;
  on(event: "message", listener: (channel: string, message: string) => void): unknown;
}): RedisSubscriber {
  return {
    async subscribe(channel, onMessage) {
      client.on("message", (ch, message) => { if (ch === channel) onMessage(message); });
      await client.subscribe(channel);
    },
  };
}

/** events.mode "publish": call handler for each offline event on channel (events.channel). */
export async function onOffline(sub: RedisSubscriber, handler: (e: OfflineEvent) => void,
  channel = "presence:events"): Promise<void> {
  await sub.subscribe(channel, (m) => handler(parseOfflineEvent(m)));
}

export interface StreamOptions {
  group: string;        // one per consumer service: each event reaches each group once
  consumer: string;     // this server's name within the group
  stream?: string;      // events.stream
  count?: number;
  blockMs?: number;
}

/**
 * events.mode "stream" with a consumer group: events survive a server that
 * was down when they were sent, and each group sees each once. read()
 * returns the next events; ack() them once handled (unacked ones are
 * read again by read(true), after a restart).
 */
export class OfflineStream {
  private readonly stream: string;

  constructor(private readonly redis: RedisCommands, private readonly o: StreamOptions) {
    this.stream = o.stream ?? "presence:events";
  }

  /** Create the group (at the stream's end) unless it exists. */
  async ensureGroup(): Promise<void> {
    try {
      await this.redis.send(["XGROUP", "CREATE", this.stream, this.o.group, "$", "MKSTREAM"]);
    } catch (e) {
      if (!String((e as Error).message ?? e).startsWith("BUSYGROUP")) throw e;
    }
  }

  /** The next events for this consumer; pending ones (delivered, not acked) with pending. */
  async read(pending = false): Promise<{ id: string; event: OfflineEvent }[]> {
    const reply = await this.redis.send(["XREADGROUP", "GROUP", this.o.group, this.o.consumer,
      "COUNT", String(this.o.count ?? 100), "BLOCK", String(this.o.blockMs ?? 5000),
      "STREAMS", this.stream, pending ? "0" : ">"]);
    const out: { id: string; event: OfflineEvent }[] = [];
    for (const [, entries] of (reply ?? []) as [string, [string, string[]][]][])
      for (const [id, fields] of entries) {
        if (!fields) continue;     // an entry trimmed away while pending
        const at = fields.indexOf("event");
        if (at >= 0 && fields[at + 1] !== undefined)
          out.push({ id, event: parseOfflineEvent(fields[at + 1] as string) });
      }
    return out;
  }

  async ack(ids: string[]): Promise<void> {
    if (ids.length) await this.redis.send(["XACK", this.stream, this.o.group, ...ids]);
  }
}

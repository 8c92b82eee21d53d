// Which shard of presence-reaper's sharded presence a user is in.
//
// The rule, which the reaper's configuration (keys.shards) relies on:
//   index = CRC-32 (ISO-HDLC, as zlib and PNG: reflected polynomial 0xEDB88320,
//           initial value and final xor 0xFFFFFFFF) of the user ID's bytes (a
//           string: its UTF-8 bytes; a Uint8Array or Buffer: as is), as an
//           unsigned 32-bit integer, modulo the number of shards;
//   name  = for `shards = N`, the decimal text of index ("0".."N-1");
//           for `shards = [ ... ]`, the list's element at index (order as listed).
// Python's zlib.crc32(id_bytes) % n is the same rule. A lone UTF-16 surrogate
// in a string counts as U+FFFD, the bytes Buffer.from() and node-redis send.
// `<shard>` in a key template stands for the shard's name.
// No dependencies; ES2020, Node 18 or later.

const CRC_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

function crcByte(crc: number, byte: number): number {
  return CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
}

// Feeds the string's UTF-8 bytes to the CRC without building them.
function crcString(crc: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    let cp = s.charCodeAt(i);
    if (cp >= 0xd800 && cp <= 0xdfff) {
      const lo = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (cp <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        i++;
      } else {
        cp = 0xfffd;
      }
    }
    if (cp < 0x80) {
      crc = crcByte(crc, cp);
    } else if (cp < 0x800) {
      crc = crcByte(crcByte(crc, 0xc0 | (cp >> 6)), 0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      crc = crcByte(crc, 0xe0 | (cp >> 12));
      crc = crcByte(crcByte(crc, 0x80 | ((cp >> 6) & 0x3f)), 0x80 | (cp & 0x3f));
    } else {
      crc = crcByte(crcByte(crc, 0xf0 | (cp >> 18)), 0x80 | ((cp >> 12) & 0x3f));
      crc = crcByte(crcByte(crc, 0x80 | ((cp >> 6) & 0x3f)), 0x80 | (cp & 0x3f));
    }
  }
  return crc;
}

function crc32(userId: string | Uint8Array): number {
  let crc = 0xffffffff;
  if (typeof userId === "string") {
    crc = crcString(crc, userId);
  } else if (userId instanceof Uint8Array) {
    for (let i = 0; i < userId.length; i++) crc = crcByte(crc, userId[i]!);
  } else {
    throw new Error(`shard: user ID must be a string or a Uint8Array, got ${typeof userId}`);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

export function shardIndex(userId: string | Uint8Array, count: number): number {
  if (typeof count !== "number" || !Number.isSafeInteger(count) || count < 1) {
    throw new Error(`shard: the number of shards must be a positive integer, got ${String(count)}`);
  }
  return crc32(userId) % count;
}

export function shardName(userId: string | Uint8Array, shards: number | readonly string[]): string {
  if (typeof shards === "number") return String(shardIndex(userId, shards));
  if (!Array.isArray(shards) || shards.length === 0 ||
      !shards.every((name) => typeof name === "string")) {
    throw new Error("shard: shards must be a positive integer or a non-empty list of names");
  }
  return shards[shardIndex(userId, shards.length)];
}

export function shardKey(template: string, name: string): string {
  if (typeof template !== "string" || typeof name !== "string") {
    throw new Error("shard: a key template and a shard name must be strings");
  }
  return template.split("<shard>").join(name);
}

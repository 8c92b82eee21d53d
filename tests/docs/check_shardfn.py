#!/usr/bin/env python3
"""The realtime servers' shard function: documented, compiled, and the rule.

packaging/realtime/shard.ts must be what the README shows (the first ```ts
block under its heading), compile with tsc (ES2020, commonjs, strict, no DOM
or Node typings) and, run by node, put every user where zlib.crc32(id) % n
does: ASCII, digits, UUIDs, the empty ID, UTF-8 from accents to astral-plane
emoji, lone surrogates (as U+FFFD, the bytes node sends), arbitrary bytes as
Uint8Array, Buffer and an offset view. Bad arguments must throw, and
shardKey must replace every <shard>. Exits 1 naming each difference; a
missing tsc or node is a failure, not a skip.
"""
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
import zlib
from pathlib import Path

HEADING = "## Which shard a user is in (for the realtime servers)"
COUNTS = [1, 3, 16, 1000, 4294967295, 4294967296]
NAMES = ["eu", "us", "ap"]

# Reads [kind, value] cases on stdin; prints one row of results per case.
RUNNER = r"""
const s = require("./shard.js");
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
const counts = JSON.parse(process.argv[2]), names = JSON.parse(process.argv[3]);
function input([kind, v]) {
  if (kind === "str") return v;
  const buf = Buffer.from(v, "hex");
  if (kind === "buf") return buf;
  if (kind === "u8") return new Uint8Array(buf);
  const big = new Uint8Array(buf.length + 7);   // "view": a subarray at offset 3
  big.fill(0xa5);
  big.set(buf, 3);
  return big.subarray(3, 3 + buf.length);
}
const rows = cases.map((c) => {
  const id = input(c);
  const row = counts.map((n) => s.shardIndex(id, n));
  row.push(s.shardName(id, names), s.shardName(id, 16));
  if (c[0] === "str") row.push(s.shardIndex(Buffer.from(id, "utf8"), 4294967296));
  return row;
});
function thrown(f) {
  try { return "returned " + JSON.stringify(f()); } catch (e) {
    return e instanceof Error ? "Error: " + e.message : "threw a non-Error";
  }
}
const bad = {
  "count 0": () => s.shardIndex("u", 0),
  "count -1": () => s.shardIndex("u", -1),
  "count 1.5": () => s.shardIndex("u", 1.5),
  "count NaN": () => s.shardIndex("u", NaN),
  "count Infinity": () => s.shardIndex("u", Infinity),
  "count '16'": () => s.shardIndex("u", "16"),
  "shards 0": () => s.shardName("u", 0),
  "shards -1": () => s.shardName("u", -1),
  "shards 1.5": () => s.shardName("u", 1.5),
  "shards NaN": () => s.shardName("u", NaN),
  "shards []": () => s.shardName("u", []),
  "shards [1]": () => s.shardName("u", [1]),
  "shards undefined": () => s.shardName("u"),
  "user ID 42": () => s.shardIndex(42, 16),
  "user ID null": () => s.shardName(null, ["eu"]),
  "template undefined": () => s.shardKey(undefined, "eu"),
  "shard name 3": () => s.shardKey("k:<shard>", 3),
};
const errors = {};
for (const [what, f] of Object.entries(bad)) errors[what] = thrown(f);
const keys = [
  s.shardKey("presence:{<shard>}:user:<shard>:<shard>", "eu"),
  s.shardKey("presence:online-users", "eu"),
  s.shardKey("<shard>", "$&$1$$"),
  s.shardKey("", "eu"),
];
process.stdout.write(JSON.stringify({ rows, errors, keys }));
"""

EXPECTED_KEYS = ["presence:{eu}:user:eu:eu", "presence:online-users", "$&$1$$", ""]
# What each bad call's Error must say (the calls are in RUNNER).
COUNT_ERR, LIST_ERR = "number of shards must be a positive integer", "non-empty list of names"
ERRORS = {"count 0": COUNT_ERR, "count -1": COUNT_ERR, "count 1.5": COUNT_ERR,
          "count NaN": COUNT_ERR, "count Infinity": COUNT_ERR, "count '16'": COUNT_ERR,
          "shards 0": COUNT_ERR, "shards -1": COUNT_ERR, "shards 1.5": COUNT_ERR,
          "shards NaN": COUNT_ERR, "shards []": LIST_ERR, "shards [1]": LIST_ERR,
          "shards undefined": LIST_ERR, "user ID 42": "user ID must be a string",
          "user ID null": "user ID must be a string", "template undefined": "must be strings",
          "shard name 3": "must be strings"}


# Strict, and without the DOM's or Node's typings: shard.ts needs neither.
TSCONFIG = {
    "compilerOptions": {
        "target": "ES2020", "module": "commonjs", "strict": True, "lib": ["es2020"],
        "types": [], "noUncheckedIndexedAccess": True, "noUnusedLocals": True,
        "noUnusedParameters": True, "noImplicitReturns": True, "outDir": ".",
    },
    "files": ["shard.ts", "usage.ts"],
}

# The README's usage example, type-checked against shard.ts with what it
# takes from the realtime server declared.
USAGE_PRELUDE = """declare const redis: any;
declare const userId: string;
declare const socketId: string;
declare const connectSha: string;
async function usage(): Promise<void> {
"""


def readme_blocks(root):
    """The ```ts blocks under HEADING (the module, then its usage)."""
    readme = (root / "README.md").read_text()
    m = re.search(r"^%s\n(.*?)(?=^## |\Z)" % re.escape(HEADING), readme, re.M | re.S)
    return re.findall(r"^```ts\n(.*?)^```$", m.group(1), re.M | re.S) if m else []


def usage_source(block):
    """The usage block as a module: imports first, the rest in an async function."""
    lines = block.splitlines(keepends=True)
    imports = [line for line in lines if line.startswith("import ")]
    body = [line for line in lines if not line.startswith("import ")]
    return "".join(imports) + USAGE_PRELUDE + "".join(body) + "}\nvoid usage;\n"


def cases():
    """(kind, value) as node gets them, and the bytes Python hashes."""
    rng = random.Random(20240611)
    out = [("str", s, s.encode()) for s in
           ["", "123456789", "a", " ", "{", "*", "user 1", "\u00e9", "\u4e2d\u6587",
            "\U0001f600", "\U0010ffff", "\x00", "\x7f\x80", "\u07ff\u0800\uffff"]]
    # A lone surrogate is U+FFFD's bytes, as Buffer.from() and node-redis send it.
    for s, sent in [("\ud800", "\ufffd"), ("a\udc00b", "a\ufffdb"),
                    ("\ud83d\ud83d\ude00", "\ufffd\U0001f600"), ("x\ud83d", "x\ufffd")]:
        out.append(("str", s, sent.encode()))
    ascii_chars = "".join(chr(c) for c in range(32, 127))
    pools = ["0123456789", ascii_chars, "\u00e9\u00e8\u00fc\u00f1\u00c5\u00df\u0153",
             "\u4e2d\u6587\u65e5\u672c\u8a9e\ud55c\uad6d\uc5b4",
             "\U0001f600\U0001f680\U0001f44d\U0001f3fd\u2764\ufe0f\U00020000"]
    for i in range(1200):
        pool = pools[i % len(pools)] + ("ab" if i % 3 == 0 else "")
        s = "".join(rng.choice(pool) for _ in range(rng.randrange(0, 41)))
        out.append(("str", s, s.encode()))
    for _ in range(300):
        s = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        out.append(("str", s, s.encode()))
    for i in range(500):
        b = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 65)))
        b = [b, b"\x00" + b, b + b"\xff", b"\xff\x00" * (i % 5) + b][i % 4]
        out.append((["u8", "buf", "view"][i % 3], b.hex(), b))
    big = bytes(rng.randrange(256) for _ in range(100000))
    out.append(("u8", big.hex(), big))
    out.append(("str", "\u00e9" * 50000, ("\u00e9" * 50000).encode()))
    return out


def expected(data):
    crc = zlib.crc32(data)
    row = [crc % n for n in COUNTS]
    return row + [NAMES[crc % len(NAMES)], str(crc % 16)]


def run_node(tsc, node, root, inputs, usage):
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(root / "packaging/realtime/shard.ts", tmp)
        (Path(tmp) / "run.js").write_text(RUNNER)
        (Path(tmp) / "usage.ts").write_text(usage)
        (Path(tmp) / "tsconfig.json").write_text(json.dumps(TSCONFIG))
        build = subprocess.run([tsc, "-p", tmp], capture_output=True, text=True)
        if build.returncode != 0:
            sys.exit("shard.ts: tsc failed:\n" + build.stdout + build.stderr)
        run = subprocess.run([node, "run.js", json.dumps(COUNTS), json.dumps(NAMES)],
                             input=json.dumps(inputs), capture_output=True, text=True,
                             cwd=tmp)
        if run.returncode != 0:
            sys.exit("shard.ts: node failed:\n" + run.stderr)
        return json.loads(run.stdout)


def compare(all_cases, result):
    bad = []
    for (kind, value, data), row in zip(all_cases, result["rows"]):
        want = expected(data)
        if kind == "str":
            want.append(zlib.crc32(data))   # Buffer.from(id): the bytes node sends
        if row != want:
            bad.append(f"{kind} {value[:40]!r}: shard.ts {row}, zlib.crc32 {want}")
    if len(result["rows"]) != len(all_cases):
        bad.append(f"node answered {len(result['rows'])} of {len(all_cases)} IDs")
    if set(result["errors"]) != set(ERRORS):
        bad.append(f"bad calls: node ran {sorted(result['errors'])}, expected {sorted(ERRORS)}")
    for what, outcome in result["errors"].items():
        if not outcome.startswith("Error: ") or ERRORS.get(what, "?") not in outcome:
            bad.append(f"{what}: expected an Error saying {ERRORS.get(what)!r}, {outcome}")
    if result["keys"] != EXPECTED_KEYS:
        bad.append(f"shardKey: {result['keys']}, expected {EXPECTED_KEYS}")
    return bad


def main():
    root = Path(sys.argv[1])
    source = (root / "packaging/realtime/shard.ts").read_text()
    bad = []
    blocks = readme_blocks(root)
    if len(blocks) != 2:
        bad.append(f"README.md: {len(blocks)} ```ts blocks under '{HEADING}', expected "
                   "the module and its usage")
    elif blocks[0] != source:
        bad.append("README.md: the first ```ts block differs from packaging/realtime/shard.ts")
    tsc, node = shutil.which("tsc"), shutil.which("node")
    if not tsc or not node:
        bad.append("shard.ts: tsc and node are needed (Debian: node-typescript, nodejs; "
                   "bash tests/setup.sh installs them)")
        sys.exit("\n".join(bad))
    all_cases = cases()
    usage = usage_source(blocks[1] if len(blocks) == 2 else "")
    result = run_node(tsc, node, root, [[k, v] for k, v, _ in all_cases], usage)
    if result["rows"] and result["rows"][1][4] != 0xCBF43926:
        bad.append(f"CRC-32('123456789') = {result['rows'][1][4]:#x}, expected 0xcbf43926")
    bad += compare(all_cases, result)
    if bad:
        print("\n".join(bad[:40]))
        sys.exit(1)
    print(f"shard function: README matches, {len(all_cases)} IDs agree with zlib.crc32, "
          f"{len(result['errors'])} bad arguments refused")


main()

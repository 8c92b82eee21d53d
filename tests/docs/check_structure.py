#!/usr/bin/env python3
"""The size limits the code keeps: no source file in reaper/ or common/ over
600 lines, no function over 60 (from the line of its name to its closing
brace). Exits 1 naming each file or function over its limit.
"""
import re
import sys
from pathlib import Path

MAX_FILE, MAX_FUNC = 600, 60

root = Path(sys.argv[1])
bad = []
for path in sorted(list((root / "reaper").glob("*.[ch]")) + list((root / "common").glob("*.[ch]"))):
    lines = path.read_text().split("\n")
    if len(lines) - 1 > MAX_FILE:
        bad.append(f"{path.relative_to(root)}: {len(lines) - 1} lines (limit {MAX_FILE})")
    start = None
    for i, line in enumerate(lines):
        # A definition's name starts a line (the type is on the line before).
        m = re.match(r"^([A-Za-z_]\w*)\(", line)
        if m:
            start = (i, m.group(1))
        elif line == "}" and start:
            n = i - start[0] + 1
            if n > MAX_FUNC:
                bad.append(f"{path.relative_to(root)}:{start[0] + 1}: {start[1]}() is {n} lines "
                           f"(limit {MAX_FUNC})")
            start = None
if bad:
    print("\n".join(bad))
    sys.exit(1)
print("structure: every file and function within its limit")

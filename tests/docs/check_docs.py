#!/usr/bin/env python3
"""Every option and setting is documented everywhere at once.

Reads the settings table (reaper/settings.c) and the long options
(reaper/cli.c) from the source, then checks each one appears in --help,
the man pages, the example config and the README, and that each
setting's reload behaviour (the table's last column) is the one
presence-reaper.conf(5) gives in RELOADING. Exits 1 naming what is
missing, so a new setting cannot land undocumented.
"""
import re
import subprocess
import sys
from pathlib import Path

root = Path(sys.argv[1])
binary = sys.argv[2]

settings_c = (root / "reaper/settings.c").read_text()
cli_c = (root / "reaper/cli.c").read_text()
rows = re.findall(r'^\s*[SINBL]\("(\w+)", "(\w+)",.*\b(LIVE|RECONNECT|RESTART)\),$',
                  settings_c, re.M)
settings = [(group, name) for group, name, _ in rows]
options = re.findall(r'^\s*\{ "([\w-]+)",', cli_c, re.M)
assert len(settings) >= 20, f"settings table not found ({len(settings)})"
assert len(options) >= 10, f"option table not found ({len(options)})"

helptext = subprocess.run([binary, "--help"], capture_output=True, text=True,
                          check=True).stdout
# roff escapes hyphens as "\-"; compare the text a reader sees.
man8 = (root / "man/presence-reaper.8").read_text().replace("\\-", "-")
man5 = (root / "man/presence-reaper.conf.5").read_text().replace("\\-", "-")
readme = (root / "README.md").read_text()
example = (root / "packaging/presence-reaper.conf").read_text()

missing = []


def need(where, text, token):
    if token not in text:
        missing.append(f"{where}: {token}")


def example_has(group, name):
    """name = ...; inside group = { ... }; (a commented-out line counts for secrets)."""
    m = re.search(r"^\s*%s\s*[=:]\s*\{(.*?)^\s*\};" % group, example, re.M | re.S)
    return bool(m) and re.search(r"^\s*#?\s*%s\s*[=:]" % name, m.group(1), re.M)


for opt in options:
    need("--help", helptext, "--" + opt)
    need("presence-reaper.8", man8, "Fl -" + opt)
    need("README.md", readme, "--" + opt)

for group, name in settings:
    full = f"{group}.{name}"
    need("--help", helptext, full)
    need("README.md", readme, full)
    if full not in man5 and not re.search(r"\b%s\b" % re.escape(name), man5):
        missing.append(f"presence-reaper.conf.5: {full}")
    if not example_has(group, name):
        missing.append(f"packaging/presence-reaper.conf: {full}")

# RELOADING lists the settings under one ".It" item per reload class.
reloading = re.search(r"^\.Sh RELOADING$(.*?)^\.Sh ", man5, re.M | re.S)
classes = {}
if reloading:
    for m in re.finditer(r"^\.It Sy (\w+)$(.*?)(?=^\.It |^\.El)", reloading.group(1),
                         re.M | re.S):
        classes[m.group(1).upper()] = set(re.findall(r"^\.Ic (\w+\.\w+)", m.group(2), re.M))
for group, name, how in rows:
    full = f"{group}.{name}"
    if full not in classes.get(how, set()):
        missing.append(f"presence-reaper.conf.5 RELOADING: {full} under {how.lower()}")
    for other, names in classes.items():
        if other != how and full in names:
            missing.append(f"presence-reaper.conf.5 RELOADING: {full} also under "
                           f"{other.lower()}")

for env in ("PRESENCE_REAPER_REDIS_URL", "REDIS_URL", "PRESENCE_REAPER_REDIS_PASSWORD",
            "PRESENCE_REAPER_SENTINEL_PASSWORD",
            "POD_NAME"):
    need("--help", helptext, env)
    need("presence-reaper.8", man8, env)
    need("README.md", readme, env)

for code in ("64", "65", "69", "70", "75", "78"):
    need("presence-reaper.8 EXIT STATUS", man8, code)
    need("README.md", readme, code)

# The example config must be valid and hold the built-in defaults.
example_dump = subprocess.run(
    [binary, "-t", "-c", str(root / "packaging/presence-reaper.conf"),
     "--redis-url", "redis://127.0.0.1:1/0"], capture_output=True, text=True,
    env={"PATH": "/usr/bin:/bin"})
default_dump = subprocess.run(
    [binary, "-t", "-c", "/dev/null", "--redis-url", "redis://127.0.0.1:1/0"],
    capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
if example_dump.returncode != 0:
    missing.append(f"packaging/presence-reaper.conf is not valid: {example_dump.stderr}")
elif example_dump.stdout.splitlines()[1:] != default_dump.stdout.splitlines()[1:]:
    missing.append("packaging/presence-reaper.conf differs from the built-in defaults")

# Every integration test file runs in the test command (tests/integration/meson.build).
registered = set(re.findall(r"'(test_[a-z_]+)'",
                            (root / "tests/integration/meson.build").read_text()))
for f in sorted((root / "tests/integration").glob("test_*.py")):
    if f.stem not in registered:
        missing.append(f"tests/integration/meson.build: {f.stem} does not run")

if missing:
    print("undocumented:\n  " + "\n  ".join(missing))
    sys.exit(1)
print(f"{len(options)} options and {len(settings)} settings documented everywhere")

#!/usr/bin/python3
"""Check the container image build without a container engine.

usage: check_container_build.py SOURCE_ROOT

Reads packaging/container/Containerfile, rebuilds the builder stage's source
tree from its COPY lines alone, runs packaging/container/build.sh on it into
a temporary DESTDIR (what the builder stage does), and checks the result:
the binary runs, the man pages and the config files are there, the file the
image's CMD names passes -t, and every library the binary loads comes from
the runtime stage's packages (build.sh check-libs).  It also checks the
Containerfile itself: base images, the runtime package list against
build.sh's, the non-root user, ENTRYPOINT and CMD.  Finally it makes sure
check-libs fails when a needed package is left out.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(sys.argv[1]).resolve()
CONTAINERFILE = ROOT / "packaging/container/Containerfile"
BUILD_SH = ROOT / "packaging/container/build.sh"
ENTRYPOINT = ["/usr/sbin/presence-reaper"]
CMD = ["-c", "/etc/presence-reaper/presence-reaper.conf"]
UID = "65532"

errors = []


def err(msg):
    errors.append(msg)


def parse(path):
    """[(stage_image, stage_name, [(INSTRUCTION, args)])], continuations joined."""
    lines, cur = [], ""
    for raw in path.read_text().splitlines():
        s = raw.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):  # a comment inside a continued instruction
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        lines.append(cur + s)
        cur = ""
    stages = []
    for ln in lines:
        word, _, rest = ln.partition(" ")
        word = word.upper()
        if word == "FROM":
            m = re.match(r"^(\S+)(?:\s+AS\s+(\S+))?$", rest.strip(), re.I)
            if not m:
                err(f"Containerfile: cannot read FROM {rest}")
                continue
            stages.append((m.group(1), m.group(2), []))
        elif not stages:
            err(f"Containerfile: {word} before the first FROM")
        else:
            stages[-1][2].append((word, rest.strip()))
    return stages


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def installed(pkg):
    p = run(["dpkg-query", "-W", "-f=${Status}", pkg])
    return p.returncode == 0 and p.stdout.endswith(" ok installed")


def build_sh_list(which):
    p = run(["bash", str(BUILD_SH), "packages", which])
    if p.returncode != 0:
        err(f"build.sh packages {which} failed: {p.stderr}")
        return []
    return p.stdout.split()


def check_containerfile():
    stages = parse(CONTAINERFILE)
    if len(stages) != 2:
        err(f"Containerfile: expected 2 stages (builder, runtime), found {len(stages)}")
        return None
    (b_img, b_name, b_ins), (r_img, _, r_ins) = stages
    if b_img != "debian:12" or b_name != "builder":
        err(f"Containerfile: builder stage should be 'FROM debian:12 AS builder', got {b_img} {b_name}")
    if r_img != "debian:12-slim":
        err(f"Containerfile: runtime stage should be FROM debian:12-slim, got {r_img}")

    # builder: build.sh copied in and run for deps, build and check-libs
    copies = [a for w, a in b_ins if w == "COPY"]
    script = next((shlex.split(a)[-1] for a in copies
                   if shlex.split(a)[0] == "packaging/container/build.sh"), None)
    if script is None:
        err("Containerfile: the builder stage does not COPY packaging/container/build.sh")
    runs = " && ".join(a for w, a in b_ins if w == "RUN")
    for step in ("deps", "build /src /out", "check-libs /out"):
        if not re.search(r"%s %s\b" % (re.escape(Path(script or "build.sh").name), re.escape(step)),
                         runs):
            err(f"Containerfile: the builder stage does not run '{script} {step}'")

    # runtime: the package list, the user, the files, how it starts
    r_runs = [a for w, a in r_ins if w == "RUN"]
    installs = [re.search(r"apt-get install ([^&;]*)", a) for a in r_runs]
    pkgs = [t for m in installs if m for t in m.group(1).split() if not t.startswith("-")]
    want = build_sh_list("runtime")
    if sorted(pkgs) != sorted(want):
        err(f"Containerfile: runtime packages {pkgs} differ from build.sh's {want}")
    if not any(re.search(r"useradd .*--uid %s\b" % UID, a) for a in r_runs):
        err(f"Containerfile: no useradd --uid {UID}")
    users = [a for w, a in r_ins if w == "USER"]
    if not users or not re.fullmatch(r"%s(:%s)?" % (UID, UID), users[-1]):
        err(f"Containerfile: USER should be {UID}:{UID} (numeric), got {users}")
    if not any(w == "COPY" and a.split()[0] == "--from=builder" for w, a in r_ins):
        err("Containerfile: the runtime stage does not COPY --from=builder")
    for word, want_v in (("ENTRYPOINT", ENTRYPOINT), ("CMD", CMD)):
        got = [a for w, a in r_ins if w == word]
        try:
            v = json.loads(got[-1]) if got else None
        except json.JSONDecodeError:
            v = got[-1]
        if v != want_v:
            err(f"Containerfile: {word} should be {json.dumps(want_v)}, got {v!r}")
    return [a for w, a in b_ins if w == "COPY"]


def stage_source(copies, dest):
    """Recreate /src as the builder's COPY lines make it (context = ROOT)."""
    for args in copies:
        parts = shlex.split(args)
        if parts[0].startswith("--"):
            err(f"Containerfile: unexpected COPY option in the builder: {args}")
            continue
        srcs, target = parts[:-1], parts[-1]
        if not target.startswith("/src"):
            continue
        tdir = dest / target[len("/src"):].lstrip("/")
        for s in srcs:
            sp = ROOT / s
            if sp.is_dir():  # COPY copies a folder's contents
                shutil.copytree(sp, tdir, dirs_exist_ok=True, symlinks=True)
            elif sp.is_file():
                if target.endswith("/") or len(srcs) > 1:
                    tdir.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(sp, tdir / sp.name)
                else:
                    tdir.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(sp, tdir)
            else:
                err(f"Containerfile: COPY {s}: no such file in the source tree")


def project_version():
    m = re.search(r"version\s*:\s*'([^']+)'", (ROOT / "meson.build").read_text())
    return m.group(1) if m else None


def check_build(tmp, copies):
    src, out, bld = tmp / "src", tmp / "out", tmp / "build"
    stage_source(copies, src)
    if errors:
        return
    env = dict(os.environ, BUILDDIR=str(bld))
    p = run(["bash", str(BUILD_SH), "build", str(src), str(out)], env=env, timeout=900)
    if p.returncode != 0:
        err(f"build.sh build failed (exit {p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}")
        return

    binary = out / "usr/sbin/presence-reaper"
    if not os.access(binary, os.X_OK):
        err("DESTDIR has no executable usr/sbin/presence-reaper")
        return
    p = run([str(binary), "--version"], timeout=30)
    if p.returncode != 0 or p.stdout.strip() != f"presence-reaper {project_version()}":
        err(f"presence-reaper --version: exit {p.returncode}, {p.stdout!r} {p.stderr!r}")

    for rel in ("usr/share/man/man8/presence-reaper.8",
                "usr/share/man/man5/presence-reaper.conf.5",
                "etc/presence-reaper.conf",
                CMD[1].lstrip("/")):
        if not (out / rel).is_file():
            err(f"DESTDIR has no {rel}")
    for f in out.rglob("*"):
        rel = f.relative_to(out).as_posix()
        if f.is_file() and not rel.startswith(("usr/", "etc/")) or rel.startswith("usr/local"):
            err(f"DESTDIR: unexpected {rel}")
        if f.is_file() and (rel.endswith((".a", ".h")) or rel.startswith("usr/include")):
            err(f"DESTDIR: build-only file {rel}")

    # The config the image's CMD names is valid as shipped.
    cmd_conf = out / CMD[1].lstrip("/")
    if cmd_conf.is_file():
        envc = {k: v for k, v in os.environ.items()
                if not k.startswith("PRESENCE_REAPER_") and k != "REDIS_URL"}
        p = run([str(binary), "-t", "-c", str(cmd_conf), "--redis-url",
                 "redis://127.0.0.1:1/0"], env=envc, timeout=30)
        if p.returncode != 0:
            err(f"presence-reaper -t -c {CMD[1]} (the image's CMD): exit {p.returncode}\n{p.stderr}")

    # Every library from the runtime packages ...
    p = run(["bash", str(BUILD_SH), "check-libs", str(out)], timeout=120)
    print(p.stdout, end="")
    if p.returncode != 0:
        err(f"build.sh check-libs failed:\n{p.stdout}{p.stderr}")
    # ... and check-libs notices when one is not.
    for pkg in ("libhiredis0.14", "libconfig9"):
        rest = " ".join(x for x in build_sh_list("runtime") if x != pkg)
        p = run(["bash", str(BUILD_SH), "check-libs", str(out)],
                env=dict(os.environ, RUNTIME_PACKAGES=rest), timeout=120)
        if p.returncode == 0 or f"from {pkg}" not in p.stdout:
            err(f"self-test: check-libs passed without {pkg} in the runtime packages")


def main():
    copies = check_containerfile()
    for which in ("build", "runtime"):
        for pkg in build_sh_list(which):
            if not installed(pkg):
                err(f"{which} package {pkg} is not installed here (misspelt, "
                    "or not a Debian 12 package?)")
    p = run(["bash", "-n", str(BUILD_SH)])
    if p.returncode != 0:
        err(f"build.sh: {p.stderr}")
    if copies is not None and not errors:
        with tempfile.TemporaryDirectory(prefix="container-check.") as tmp:
            check_build(Path(tmp), copies)
    if errors:
        print("FAIL\n  " + "\n  ".join(errors))
        sys.exit(1)
    print("container build steps OK")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Build the presence-reaper Debian package from this source tree.
#
#   bash packaging/debian/build-deb.sh OUTDIR
#
# dpkg-buildpackage wants debian/ at the source root, so this copies the
# source tree (the files git knows about, or everything but build folders
# outside git) to a temporary folder, puts packaging/debian there as debian/
# and runs dpkg-buildpackage -us -uc -b.  The .deb, .changes and .buildinfo
# land in OUTDIR.  DEB_BUILD_OPTIONS defaults to "nocheck" (the test suites
# run from the normal build); set it, even empty, to run the unit suite.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR" >&2; exit 64; }
[ $# -eq 1 ] || usage

src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)

for tool in dpkg-buildpackage dpkg-parsechangelog dh; do
  command -v "$tool" >/dev/null ||
    { echo "build-deb: $tool not found (apt-get install dpkg-dev debhelper)" >&2; exit 69; }
done

version=$(dpkg-parsechangelog -l "$src/packaging/debian/changelog" -S Version)
work=$(mktemp -d "${TMPDIR:-/tmp}/presence-reaper-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree=$work/presence-reaper-$version
mkdir "$tree"

# Copy the source tree.
if git -C "$src" rev-parse --show-toplevel >/dev/null 2>&1 &&
   [ "$(git -C "$src" rev-parse --show-toplevel)" = "$src" ]; then
  # Tracked and untracked-but-not-ignored files, as they are in the work
  # tree (files deleted there but not yet from the index are skipped).
  git -C "$src" ls-files -z --cached --others --exclude-standard |
    (cd "$src" && while IFS= read -r -d '' f; do
       [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"
     done) |
    tar -C "$src" --null -T - -cf - | tar -C "$tree" -xf -
else
  tar -C "$src" --exclude=./.git --exclude='./build*' --exclude='./obj-*' \
      --exclude=./debian -cf - . | tar -C "$tree" -xf -
fi
rm -rf "$tree/debian"
cp -a "$src/packaging/debian" "$tree/debian"
rm -f "$tree/debian/build-deb.sh"

export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS-nocheck}
profiles=()
case " $DEB_BUILD_OPTIONS " in
  *" nocheck "*) profiles=(-Pnocheck) ;;
esac

echo "build-deb: building presence-reaper $version in $tree" \
     "(DEB_BUILD_OPTIONS=$DEB_BUILD_OPTIONS)"
(cd "$tree" && dpkg-buildpackage -us -uc -b -J "${profiles[@]}")

shopt -s nullglob
files=("$work"/presence-reaper*_"$version"_*.deb "$work"/presence-reaper_"$version"_*.changes
       "$work"/presence-reaper_"$version"_*.buildinfo)
[ ${#files[@]} -gt 0 ] || { echo "build-deb: no package was produced" >&2; exit 70; }
cp "${files[@]}" "$out/"
for f in "${files[@]}"; do echo "build-deb: $out/${f##*/}"; done

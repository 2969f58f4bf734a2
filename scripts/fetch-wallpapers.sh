#!/usr/bin/env bash
# Unpack Debian's plasma-workspace-wallpapers (the camera photographs of `genprint zoo external`) into a
# cache folder, without installing the package: apt-get download + dpkg-deb -x. Idempotent.
set -euo pipefail
cache=${XDG_CACHE_HOME:-$HOME/.cache}/genprint/plasma-workspace-wallpapers
marker="$cache/usr/share/wallpapers/BytheWater/contents/images/2560x1600.jpg"
[ -f "$marker" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
  echo "genprint: apt-get/dpkg-deb missing; cannot fetch plasma-workspace-wallpapers (zoo external will use fewer photographs)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "genprint: fetching plasma-workspace-wallpapers for the external corpus's camera photographs ..." >&2
(cd "$work" && { apt-get download plasma-workspace-wallpapers >/dev/null 2>&1 \
  || { apt-get update -qq && apt-get download plasma-workspace-wallpapers >/dev/null; }; })
mkdir -p "$cache.partial"
dpkg-deb -x "$work"/plasma-workspace-wallpapers_*.deb "$cache.partial"
rm -rf "$cache"
mv "$cache.partial" "$cache"

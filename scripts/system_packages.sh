#!/usr/bin/env bash
# Debian/Ubuntu packages napari needs, installed only where missing (needs root or sudo):
#   system_packages.sh            headless: a virtual X server (xvfb, xauth), chromium (the
#                                 report test renders a page in it) plus the libraries
#                                 below (the test command);
#   system_packages.sh desktop    a napari window on a real display: Mesa GL and the xcb/Qt
#                                 libraries Qt's "xcb" platform plugin loads (the run command).
# Says what it checks and what it installs; on other systems it says so and installs nothing.
set -euo pipefail
MODE="${1:-headless}"
DESKTOP_PKGS="libgl1 libegl1 libglx-mesa0 libgl1-mesa-dri libxkbcommon-x11-0 libxcb-icccm4 \
libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 \
libxcb-shape0 libxcb-cursor0 libxcb-xkb1 libfontconfig1 libdbus-1-3"
case "$MODE" in
  desktop) PKGS="$DESKTOP_PKGS" ;;
  headless) PKGS="xvfb xauth chromium $DESKTOP_PKGS" ;;
  *) echo "system_packages: unknown mode '$MODE' (use 'desktop' or 'headless')" >&2; exit 2 ;;
esac
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "system_packages: not a Debian/Ubuntu system (no dpkg-query/apt-get): install the" \
       "Qt xcb and OpenGL libraries for a $MODE napari with your package manager" >&2
  exit 0
fi
echo "system_packages: checking the Debian packages a $MODE napari needs" >&2
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "system_packages: all $(echo $PKGS | wc -w) are installed" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "system_packages: missing$missing, and not root and no sudo to install them" >&2
    exit 1
  fi
  SUDO="sudo"
fi
echo "system_packages: installing$missing (apt-get${SUDO:+ via sudo})" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "system_packages: installed$missing" >&2

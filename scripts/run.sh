#!/usr/bin/env bash
# Set up and run the main job (the README's run command):
# - with a display: the Debian/Ubuntu libraries a napari window needs are installed where missing
#   (scripts/system_packages.sh desktop), then napari opens with the plugin's widgets docked and
#   the sample SEM data loaded;
# - without one: the same scoring from the command line, results written to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p out
if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
  # a napari window needs Qt's xcb plugin libraries (libxcb-icccm4, -keysyms1, -xinerama0...),
  # which a stock Debian/Ubuntu lacks: install what is missing, saying so
  echo "run: display found; checking the system libraries a desktop napari needs" >&2
  bash scripts/system_packages.sh desktop || echo "run: could not install them; napari may" \
    "fail with 'Could not load the Qt platform plugin xcb' (see above)" >&2
  echo "run: opening napari with the plugin's widgets and the sample data" >&2
  exec .venv/bin/python scripts/demo.py
fi
echo "run: no display; scoring the sample data from the command line" >&2
SAMPLES=sample_data
.venv/bin/semfocus score $SAMPLES/focus_series.tif $SAMPLES/sem_image.tif \
  $SAMPLES/half_focused.tif --output out/scores.csv
.venv/bin/semfocus map $SAMPLES/half_focused.tif --output out/focus-map.tif \
  --csv out/focus-map.csv --png out/focus-map.png
echo "run: wrote out/scores.csv, out/focus-map.tif, out/focus-map.csv and out/focus-map.png" >&2
cat out/scores.csv

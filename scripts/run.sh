#!/usr/bin/env bash
# Set up and run the main job (the README's run command):
# - with a display: napari opens with the plugin's widgets docked and the sample SEM data loaded;
# - without one: the same scoring from the command line, results written to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p out
if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
  exec .venv/bin/python scripts/demo.py
fi
echo "run: no display; scoring the sample data from the command line" >&2
SAMPLES=src/napari_semfocus/sample_data
.venv/bin/semfocus score $SAMPLES/focus_series.tif $SAMPLES/sem_image.tif \
  $SAMPLES/half_focused.tif --output out/scores.csv
.venv/bin/semfocus map $SAMPLES/half_focused.tif --output out/focus-map.tif \
  --csv out/focus-map.csv --png out/focus-map.png
echo "run: wrote out/scores.csv, out/focus-map.tif, out/focus-map.csv and out/focus-map.png" >&2
cat out/scores.csv

#!/usr/bin/env bash
# Create .venv (if needed) and install napari-semfocus with its testing extra (napari[pyqt6]) at
# the versions the test suite passed with (constraints.txt, updated on purpose by
# scripts/update_constraints.sh), so a new release on the registry cannot break a fresh install.
# Idempotent: a second run installs nothing new, and repairs a .venv whose versions drifted.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
if ! .venv/bin/python -c "import napari_semfocus, torch, torchvision, napari, pytest, xdist, PyQt6, distributed" 2>/dev/null; then
  echo "setup: installing napari-semfocus and its dependencies into .venv (pinned by" \
       "constraints.txt; torch is large, this takes a while)" >&2
fi
.venv/bin/python -m pip install -q -c constraints.txt -e ".[testing]"

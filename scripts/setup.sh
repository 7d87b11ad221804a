#!/usr/bin/env bash
# Create .venv (if needed) and install napari-semfocus with its testing extra (napari[pyqt6]).
# Idempotent: a second run only re-installs the package itself.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
if ! .venv/bin/python -c "import napari_semfocus, torch, torchvision, napari, pytest, PyQt6, distributed" 2>/dev/null; then
  echo "setup: installing napari-semfocus and its dependencies into .venv (torch is large; this takes a while)" >&2
  .venv/bin/python -m pip install -q -e ".[testing]"
else
  .venv/bin/python -m pip install -q --no-deps -e .
fi

#!/usr/bin/env bash
# Set up everything and run the test suite under a virtual X server (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system_packages.sh
bash scripts/setup.sh
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/npe2 validate src/napari_semfocus/napari.yaml >/dev/null
exec xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Set up everything and run the test suite under a virtual X server (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system_packages.sh
bash scripts/setup.sh
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/npe2 validate src/napari_semfocus/napari.yaml >/dev/null
# Two processes (pytest-xdist; a test file stays in one, with its fixtures): the suite waits on
# subprocesses, Qt and files as much as on arithmetic, and ran 10-12 min in one process on a
# 2-core CPU. SEMFOCUS_TEST_WORKERS=0 runs it in this process (for -x, --pdb).
exec xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python -m pytest \
  -n "${SEMFOCUS_TEST_WORKERS:-2}" --dist loadfile "$@"

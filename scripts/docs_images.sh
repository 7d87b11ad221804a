#!/usr/bin/env bash
# Regenerate the documentation's screenshots on purpose (docs/images/run-napari.png,
# score-widget*.png, focus-map*.png, focus-map-stack.png, gate-widget.png, gate-worst-region.png,
# finetune-widget.png, through-focus.png, live-qc.png; live-report.png, the acquisition report in headless Chromium):
# the GUI tests take them, and keep them
# in docs/images/ only when SEMFOCUS_SCREENSHOTS names that folder (otherwise each test writes
# into its temporary folder, so a test run never changes tracked files).
# The pictures made from the shared pool (pool-contact-sheet.png) come from
# scripts/pool_contact_sheet.py; gate-pr-curve.png from `semfocus gate calibrate --plot`.
# Arguments go to pytest (both runs; one that selects no test is not a failure): e.g.
# `-k first_view` makes run-napari.png only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SEMFOCUS_SCREENSHOTS="$PWD/docs/images"
xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python -m pytest -q -m gui \
  tests/widgets/test_first_view.py tests/widgets/test_score_widget.py tests/widgets/test_map_widget.py \
  tests/widgets/test_gate_widget.py tests/widgets/test_finetune_widget.py \
  tests/widgets/test_through_focus_widget.py tests/widgets/test_live_widget.py "$@" || [ $? -eq 5 ]
.venv/bin/python -m pytest -q tests/cli/test_report.py "$@" || [ $? -eq 5 ]

#!/usr/bin/env bash
# Re-pin constraints.txt on purpose: install the newest releases the dependency ranges in
# pyproject.toml allow into a fresh virtual environment, run the test suite there, and only if it
# passes write that environment's versions to constraints.txt (review and commit the diff).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TMP=$(mktemp -d)
"$PY" -m venv "$TMP/venv"
"$TMP/venv/bin/python" -m pip install -q --upgrade pip
"$TMP/venv/bin/python" -m pip install -q -e ".[testing]"
xvfb-run -a -s "-screen 0 1600x1200x24" "$TMP/venv/bin/python" -m pytest -q
{
  echo "# The versions the test suite passed with (scripts/update_constraints.sh, $(date -u +%F),"
  echo "# Python $("$TMP/venv/bin/python" -c 'import platform; print(platform.python_version())')"
  echo "# on $(uname -m)); scripts/setup.sh installs with them. Update on purpose, not by accident."
  "$TMP/venv/bin/python" -m pip freeze --exclude-editable | sort -f
} > constraints.txt
rm -rf "$TMP"
echo "update_constraints: wrote constraints.txt; review the diff and commit it" >&2

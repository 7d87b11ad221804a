"""scripts/system_packages.sh and scripts/run.sh (issue 14, item 4: the run command could not
open napari on a stock Debian with a display). system_packages.sh runs against stub dpkg-query,
apt-get and id commands that record what would be installed; nothing is installed."""

from __future__ import annotations

import os
import re
import subprocess

from .helpers import REPO

XCB = ("libxcb-icccm4", "libxcb-keysyms1", "libxcb-xinerama0")


def _stubs(tmp_path, installed: set[str], uid: int = 0):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    stubs = {
        "dpkg-query": 'for a; do p="$a"; done\n'
                      f'case " {" ".join(sorted(installed))} " in *" $p "*) '
                      'printf "install ok installed";; *) exit 1;; esac',
        "apt-get": f'echo "$*" >> "{log}"',
        "id": f"echo {uid}",
    }
    for name, body in stubs.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    return env, log


def _run(args, env):
    return subprocess.run(["bash", str(REPO / "scripts" / "system_packages.sh"), *args],
                          env=env, capture_output=True, text=True, timeout=60)


def test_desktop_mode_installs_the_missing_xcb_libraries_and_says_so(tmp_path):
    env, log = _stubs(tmp_path, installed={"libgl1", "libegl1"})
    run = _run(["desktop"], env)
    assert run.returncode == 0, run.stderr
    installs = [line for line in log.read_text().splitlines() if line.startswith("install")]
    assert len(installs) == 1
    pkgs = set(installs[0].split()) - {"install", "-y", "-qq", "--no-install-recommends"}
    assert set(XCB) <= pkgs
    assert not {"libgl1", "libegl1", "xvfb", "xauth"} & pkgs  # installed / not for a desktop
    assert "checking the Debian packages a desktop napari needs" in run.stderr
    assert re.search(r"installing .*libxcb-icccm4", run.stderr)


def test_headless_mode_adds_xvfb_and_nothing_missing_is_said(tmp_path):
    (tmp_path / "a").mkdir()
    env, log = _stubs(tmp_path / "a", installed={"xauth"})
    run = _run([], env)
    assert run.returncode == 0, run.stderr
    assert {"xvfb", *XCB} <= set(log.read_text().split()) and "xauth" not in log.read_text()
    everything = set(re.findall(r"\b(?:lib[\w.-]+|xvfb|xauth)\b",
                                (REPO / "scripts" / "system_packages.sh").read_text()))
    (tmp_path / "b").mkdir()
    env, log = _stubs(tmp_path / "b", installed=everything)
    run = _run(["desktop"], env)
    assert run.returncode == 0 and "are installed" in run.stderr
    assert not log.exists()


def test_run_sh_installs_desktop_packages_only_with_a_display():
    text = (REPO / "scripts" / "run.sh").read_text()
    branch = text[text.index('if [ -n "${DISPLAY:-}" ]'):text.index("\nfi\n")]
    assert "scripts/system_packages.sh desktop" in branch
    assert branch.index("system_packages.sh desktop") < branch.index("scripts/demo.py")
    assert "system_packages" not in text[text.index("\nfi\n"):]  # not for the headless path

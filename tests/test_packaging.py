"""What a user installs: the dependency set resolves to dask and distributed of one release (a
plain ``distributed`` let pip backtrack to 2021.4.1, which cannot import beside dask 2026), the
constraints the tests passed with keep them so, and a built wheel carries the samples (the
repository's top-level ``sample_data/``) so that napari's File > Open Sample works from an
installed package, not only from this checkout."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
import tomllib

from .helpers import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def pins() -> dict[str, str]:
    out = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def test_the_package_list_is_every_source_folder_and_the_samples():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    src = REPO / "src"
    folders = {".".join(p.parent.relative_to(src).parts) for p in src.rglob("__init__.py")}
    assert listed == folders | {"napari_semfocus.sample_data"}
    assert PYPROJECT["tool"]["setuptools"]["package-dir"]["napari_semfocus.sample_data"] == \
        "sample_data"


def test_constraints_pin_every_dependency_and_dask_with_its_own_distributed():
    pinned = pins()
    assert pinned["dask"] == pinned["distributed"]
    for requirement in PYPROJECT["project"]["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0).lower().replace("_", "-")
        assert name in pinned, f"{name} is not pinned in constraints.txt"
    assert "constraints.txt" in (REPO / "scripts" / "setup.sh").read_text()


@pytest.mark.slow
def test_a_fresh_resolution_keeps_dask_and_distributed_on_one_release(tmp_path):
    """What pip would install into an empty environment from the registry today (a dry run:
    nothing is installed), without our constraints: the dependency ranges alone must give one
    dask release for both."""
    report = tmp_path / "report.json"
    run = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--report", str(report), f"{REPO}[testing]"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PIP_CONSTRAINT": "", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    chosen = {i["metadata"]["name"].lower(): i["metadata"]["version"]
              for i in json.loads(report.read_text())["install"]}
    assert chosen["dask"] == chosen["distributed"], chosen


OPEN_SAMPLES = textwrap.dedent("""
    import json, sys
    import napari, napari_semfocus
    from napari_semfocus import _sample_data
    viewer = napari.Viewer(show=False)
    for key in ("focus_series", "sem_image", "half_focused"):
        viewer.open_sample("napari-semfocus", key)
    print(json.dumps({"package": napari_semfocus.__file__,
                      "samples": str(_sample_data.sample_dir()),
                      "layers": [layer.name for layer in viewer.layers]}))
    viewer.close()
""")


@pytest.mark.slow
@pytest.mark.gui
def test_an_installed_wheel_opens_the_samples_in_napari(tmp_path):
    """Build the wheel, install it (without dependencies: they are this environment's) into a
    folder of its own, and open every sample through napari's sample menu from there."""
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "-w", str(wheels), str(REPO)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("napari_semfocus-*.whl")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
         str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    shipped = target / "napari_semfocus" / "sample_data"
    assert {p.name for p in shipped.iterdir()} >= {"focus_series.tif", "sem_image.tif",
                                                  "half_focused.tif", "ATTRIBUTION.md"}
    run = subprocess.run([sys.executable, "-c", OPEN_SAMPLES], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(target)})
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["package"].startswith(str(target))  # the installed copy, not this checkout
    assert out["samples"] == str(shipped)
    assert {"SEM focus series", "SEM image", "Half-focused frame"} <= set(out["layers"])

"""Every runtime dependency declared in pyproject.toml is imported by the package (issue 14,
item 10: magicgui and npe2 were declared but never imported); npe2, which validates the napari
manifest, is a testing dependency."""

from __future__ import annotations

import ast
import re

import pytest

from .helpers import REPO

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

IMPORT_NAMES = {"opencv-python-headless": "cv2", "scikit-learn": "sklearn"}
# used through another package, not imported: tifffile's codecs (LZW, JPEG... TIFFs)
INDIRECT = {"imagecodecs": "tifffile decodes compressed TIFFs with it"}


def _imported_top_names() -> set[str]:
    names = set()
    for path in (REPO / "src" / "napari_semfocus").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_every_runtime_dependency_is_imported():
    imported = _imported_top_names()
    unused = []
    for req in _project()["dependencies"]:
        dist = re.match(r"[A-Za-z0-9_.-]+", req).group(0)
        if dist in INDIRECT:
            continue
        if IMPORT_NAMES.get(dist, dist.replace("-", "_")) not in imported:
            unused.append(dist)
    assert not unused, f"declared but never imported: {unused}"


def test_npe2_is_a_testing_dependency():
    testing = [re.match(r"[A-Za-z0-9_.-]+", r).group(0) for r in
               _project()["optional-dependencies"]["testing"]]
    assert "npe2" in testing

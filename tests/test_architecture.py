"""The shape of the package, checked on its source: the import graph has no cycle and its
layers depend one way (io -> scoring -> gate -> training -> jobs -> cli / widgets), modules stay
at a few hundred lines, nothing imports another module's private names, imports sit at the top
of a module (torch, which is imported lazily so that napari's plugin menu and the widgets open
fast, excepted), and every top-level function and class is used somewhere."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

from .helpers import REPO

PACKAGE = "napari_semfocus"
SRC = REPO / "src" / PACKAGE
MAX_LINES = 400
# what may be imported inside a function: torch and what loads it (see each module's docstring),
# and dask / distributed (a scale-out run needs them; napari's plugin menu and the CLI do not)
LAZY_OK = ("torch", "torchvision", "safetensors.torch", f"{PACKAGE}.scoring.model", "dask",
           "distributed", "onnx", "onnxruntime")
# the layers, bottom up: a module may import its own layer and the ones below
LAYERS = {
    "errors": 0, "scale": 0, "progress": 0, "runtime": 0, "io": 1, "scoring": 2, "gate": 3, "training": 4,
    "jobs": 5, "cli": 6, "_widgets": 6, "_reader": 6, "_sample_data": 6,
}
NAPARI_FACE = {"_widgets", "_reader", "_sample_data"}  # ... and the command line: neither uses the other
# what lives outside the package and names our functions: the napari manifest, entry points
EXTERNAL_NAMES = (SRC / "napari.yaml", REPO / "pyproject.toml")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names."""
    if not node.level:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str):
    """(imported module, the import node, inside a function) for every import of ``module``."""
    out = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                out.extend((a.name, child, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = resolve(module, child)
                for a in child.names:
                    full = f"{base}.{a.name}"
                    out.append((full if full in MODULES else base, child, in_function))
            visit(child, inner)

    visit(TREES[module], False)
    return out


def graph() -> dict[str, set[str]]:
    return {m: {t for t, _, _ in imports(m) if t in MODULES and t != m} for m in MODULES}


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_the_import_graph_has_no_cycle():
    edges, state, stack = graph(), {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == "open":
                cycle = stack[stack.index(t):] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert len(edges) > 40  # the whole package was read


def test_layers_depend_one_way():
    wrong = []
    for m, targets in graph().items():
        if m == PACKAGE:  # the package's lazy public API (FocusScorer) may reach anywhere
            continue
        for t in targets:
            lm, lt = layer(m), layer(t)
            if lt is None or lm is None:
                continue
            tops = {m.split(".")[1], t.split(".")[1]}
            if lt > lm or ("cli" in tops and tops & NAPARI_FACE):
                wrong.append(f"{m} -> {t}")
    assert not wrong, wrong


def test_modules_stay_small():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_imports_at_the_top_except_torch_which_says_why():
    bad = []
    for m in MODULES:
        if m == PACKAGE:  # its lazy public API keeps ``import napari_semfocus`` cheap
            continue
        lines = MODULES[m].read_text().splitlines()
        for target, node, in_function in imports(m):
            if not in_function:
                continue
            if not target.startswith(LAZY_OK):
                bad.append(f"{m}:{node.lineno} imports {target} inside a function")
            elif "lazily" not in lines[node.lineno - 1] + lines[node.lineno - 2]:
                bad.append(f"{m}:{node.lineno} lazy import of {target} without a comment saying why")
    assert not bad, bad


def test_no_private_names_across_modules():
    bad = []
    for m, tree in TREES.items():
        modules_here = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = resolve(m, node)
                for a in node.names:
                    if f"{base}.{a.name}" in MODULES:
                        modules_here.add(a.asname or a.name)
                    elif a.name.startswith("_") and not a.name.startswith("__"):
                        bad.append(f"{m}:{node.lineno} imports {base}.{a.name}")
            elif isinstance(node, ast.Import):
                modules_here.update((a.asname or a.name).split(".")[0] for a in node.names
                                    if a.name.startswith(PACKAGE))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in modules_here and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                bad.append(f"{m}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not bad, bad


def test_tests_share_helpers_without_private_names():
    bad = []
    for path in (REPO / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("tests")):
                names = [a.name for a in node.names]
                if node.module and node.module.split(".")[-1].startswith("test_"):
                    bad.append(f"{path.name} imports from the test module {node.module}")
                bad += [f"{path.name} imports {n}" for n in names if n.startswith("_")]
    assert not bad, bad


def used_names() -> dict[str, int]:
    """How often each identifier is used (not defined) in the package, the tests, the scripts and
    the benchmarks, and named in the napari manifest and pyproject."""
    counts: dict[str, int] = {}
    files = [*SRC.rglob("*.py"), *(REPO / "tests").rglob("*.py"),
             *(REPO / "scripts").rglob("*.py"), *(REPO / "benchmarks").rglob("*.py")]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            name = None
            if isinstance(node, ast.Name):
                name = node.id
            elif isinstance(node, ast.Attribute):
                name = node.attr
            elif isinstance(node, ast.alias):
                name = node.name.split(".")[-1]
            if name:
                counts[name] = counts.get(name, 0) + 1
    for path in EXTERNAL_NAMES:
        for name in re.findall(r"[:.]([A-Za-z_][A-Za-z0-9_]*)\"?\s*$", path.read_text(), re.M):
            counts[name] = counts.get(name, 0) + 1
    return counts


def test_every_top_level_function_and_class_is_used():
    counts = used_names()
    dead = [f"{m}.{node.name}" for m, tree in TREES.items() for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("__")
            and counts.get(node.name, 0) == 0]
    assert not dead, dead


@pytest.mark.parametrize("path", sorted([*(REPO / "scripts").glob("*.py"),
                                         *(REPO / "benchmarks").glob("*.py")]),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_scripts_and_benchmarks_import(path):
    """What they import from the package exists (they run their work only as __main__)."""
    spec = importlib.util.spec_from_file_location(f"_check_{path.stem}", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))

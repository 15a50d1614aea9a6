"""The package's layers (README, "Architecture"): which part of d2lcnn may import which, and
the size limits that keep each file readable.

Every ``import`` of a d2lcnn module anywhere in a file counts, also inside a function: a
layer that reaches up through a local import is still coupled to what it imports. (That the
torch backend uses nothing of the NumPy backend, and private names stay in their package, is
tested in ``tests/test_layout.py``.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "d2lcnn"

# Each part of the package and the other parts it may import. The README's architecture table
# is this table in prose; change both together.
FOUNDATION = {"d2lcnn.geometry", "d2lcnn.checks"}
ALLOWED = {
    "d2lcnn.geometry": set(),
    "d2lcnn.checks": set(),
    "d2lcnn.gradcheck": set(),
    "d2lcnn.metrics": set(),
    "d2lcnn.ensemble": set(),
    "d2lcnn.schedules": FOUNDATION,
    "d2lcnn.numpy": FOUNDATION | {"d2lcnn.gradcheck"},
    "d2lcnn.torch": FOUNDATION | {"d2lcnn.schedules"},
    "d2lcnn.torch.models": FOUNDATION | {"d2lcnn.torch"},
    "d2lcnn.summary": FOUNDATION,
    "d2lcnn.data": FOUNDATION,
    "d2lcnn.plots": FOUNDATION,
    # drawings of the models: the shapes they show are read off the models (via summary),
    # never typed in; nothing in the package imports the diagrams
    "d2lcnn.diagrams": FOUNDATION | {"d2lcnn.summary", "d2lcnn.torch.models"},
    "d2lcnn.train": FOUNDATION | {"d2lcnn.numpy", "d2lcnn.torch", "d2lcnn.plots"},
    "d2lcnn.hparam": FOUNDATION | {"d2lcnn.train"},
    "d2lcnn.diagnostics": FOUNDATION | {"d2lcnn.numpy", "d2lcnn.torch", "d2lcnn.train"},
    "d2lcnn.viz": FOUNDATION | {"d2lcnn.torch"},
    "d2lcnn.book": set(),
    "d2lcnn.grading": FOUNDATION | {"d2lcnn"},  # the root only to find the package's folder
    "d2lcnn": set(),
}

# Files allowed past the limits, with the reason (the README's architecture note says why).
LONG_MODULES: dict[str, str] = {}
LONG_FUNCTIONS = {
    "d2lcnn/train/loop.py::fit": "two thirds of it is the docstring, the user's manual of "
    "every option; the code is about 50 lines",
}
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 120


def _part(module: str) -> str:
    """The part of the package a module belongs to: the longest key of ALLOWED it is in."""
    candidates = [p for p in ALLOWED if module == p or module.startswith(p + ".")]
    assert candidates, f"{module} belongs to no part of the package; add it to ALLOWED"
    return max(candidates, key=len)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every d2lcnn module ``path`` imports (``from d2lcnn import x`` counts as d2lcnn.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "d2lcnn"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "d2lcnn":
                found |= {f"d2lcnn.{a.name}" for a in node.names}
            elif node.module.startswith("d2lcnn."):
                found.add(node.module)
    return found


FILES = sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_each_part_imports_only_the_layers_below_it(path):
    part = _part(_module_name(path))
    bad = sorted(
        m for m in _imports(path) if (other := _part(m)) != part and other not in ALLOWED[part]
    )
    assert not bad, f"{part} may import {sorted(ALLOWED[part]) or 'nothing'}; got {bad}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_modules_and_functions_stay_short(path):
    name = str(path.relative_to(ROOT.parent))
    source = path.read_text()
    lines = source.count("\n")
    if name not in LONG_MODULES:
        assert lines <= MAX_MODULE_LINES, f"{name}: {lines} lines (limit {MAX_MODULE_LINES})"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            key = f"{name}::{node.name}"
            if key not in LONG_FUNCTIONS:
                assert length <= MAX_FUNCTION_LINES, (
                    f"{key}: {length} lines (limit {MAX_FUNCTION_LINES})"
                )


def test_the_exceptions_are_still_needed():
    for name in LONG_MODULES:
        assert (ROOT.parent / name).read_text().count("\n") > MAX_MODULE_LINES, name
    for key in LONG_FUNCTIONS:
        name, function = key.split("::")
        lengths = [
            node.end_lineno - node.lineno + 1
            for node in ast.walk(ast.parse((ROOT.parent / name).read_text()))
            if isinstance(node, ast.FunctionDef) and node.name == function
        ]
        assert lengths and max(lengths) > MAX_FUNCTION_LINES, key

"""Who imports what, read from the source with :mod:`ast` (every import counts, also one
inside a function):

- the torch backend imports nothing of the NumPy backend: what both need lives in a neutral
  module, :mod:`d2lcnn.checks` for plain numbers and :mod:`d2lcnn.geometry` for sizes;
- :mod:`d2lcnn.checks` imports the standard library only, never numpy or torch, so either
  backend (and anything else) can use it;
- a private name (``_x``) is imported only inside its own package (``d2lcnn.numpy`` from
  ``d2lcnn.numpy``), never across packages.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "d2lcnn"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(path: Path) -> str:
    """The package a file belongs to: ``d2lcnn.numpy`` for d2lcnn/numpy/conv.py and for
    d2lcnn/numpy/__init__.py."""
    return _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]


def _imports(source: str, package: str) -> list[tuple[str, str | None, int]]:
    """``(module, name, line)`` for every import in ``source``: ``import a.b`` gives
    ``("a.b", None)``, ``from a import b`` gives ``("a", "b")``; relative imports are
    resolved against ``package``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - (node.level - 1)]
                module = ".".join([*base, module] if module else base)
            found += [(module, alias.name, node.lineno) for alias in node.names]
    return found


def _file_imports(path: Path) -> list[tuple[str, str | None, int]]:
    return _imports(path.read_text(), _package(path))


def _targets(module: str, name: str | None) -> list[str]:
    """The modules an import may bring in: ``from d2lcnn import numpy`` is d2lcnn.numpy."""
    return [module] if name is None else [module, f"{module}.{name}"]


TORCH_FILES = sorted((PACKAGE / "torch").rglob("*.py"))
ALL_FILES = sorted(PACKAGE.rglob("*.py"))


def _rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def _numpy_imports(imports) -> list[str]:
    return [
        f"line {line}: {module}" + (f" import {name}" if name else "")
        for module, name, line in imports
        if any(t == "d2lcnn.numpy" or t.startswith("d2lcnn.numpy.") for t in _targets(module, name))
    ]


def test_the_import_reader_sees_every_form():
    source = (
        "import d2lcnn.numpy\n"
        "from d2lcnn import numpy as nd\n"
        "def f():\n"
        "    from ..numpy.conv import conv2d_forward\n"
        "from d2lcnn.geometry import pair\n"
    )
    assert len(_numpy_imports(_imports(source, "d2lcnn.torch"))) == 3


@pytest.mark.parametrize("path", TORCH_FILES, ids=_rel)
def test_the_torch_backend_imports_nothing_of_the_numpy_backend(path):
    bad = _numpy_imports(_file_imports(path))
    assert not bad, (
        f"{_rel(path)} imports the NumPy backend ({bad}); move what both backends need to "
        f"d2lcnn/checks.py (plain numbers) or d2lcnn/geometry.py (sizes)"
    )


def test_the_neutral_module_imports_only_the_standard_library():
    path = PACKAGE / "checks.py"
    bad = [
        f"line {line}: {module}"
        for module, _, line in _file_imports(path)
        if module.split(".")[0] not in sys.stdlib_module_names and module != "__future__"
    ]
    assert not bad, f"d2lcnn/checks.py must import only the standard library, got {bad}"


def _private_owner(module: str, name: str | None) -> str | None:
    """The package a private import belongs to, or None if nothing private is imported:
    ``d2lcnn.numpy`` for ``from d2lcnn.numpy._checks import check_array``,
    ``from d2lcnn.numpy.pool import _helper`` and ``from d2lcnn.numpy import _im2col``."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_"):
            return ".".join(parts[:i])
    if name is None or not name.startswith("_"):
        return None
    is_package = (PACKAGE.parent / Path(*parts)).is_dir()
    return module if is_package else module.rpartition(".")[0]


@pytest.mark.parametrize("path", ALL_FILES, ids=_rel)
def test_private_names_stay_inside_their_package(path):
    own = _package(path)
    bad = []
    for module, name, line in _file_imports(path):
        owner = _private_owner(module, name) if module.startswith("d2lcnn") else None
        if owner is not None and not (own == owner or own.startswith(owner + ".")):
            bad.append(f"line {line}: {module}" + (f" import {name}" if name else ""))
    assert not bad, f"{_rel(path)} imports private names of another package: {bad}"

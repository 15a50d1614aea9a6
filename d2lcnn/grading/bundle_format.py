"""The autograder bundle on disk: what ``assign`` writes and ``grade`` reads.

A bundle is a folder (``autograder/``) of three files:

``bundle.json``
    ``format`` (:data:`BUNDLE_FORMAT`), ``assignment``, ``source_sha256``, ``settings``
    (:data:`DEFAULT_SETTINGS` with the source's ``settings(...)``), ``questions``
    (question -> points), ``cases`` (key, question, name, points, hidden, hint, seed,
    timeout, checker name, inputs function name; sorted by question), the sources of the
    ``tests`` and ``autograder`` cells, the ``template`` of the student notebook (see
    :func:`d2lcnn.grading.cells.template`), the ``stubs`` the sandbox defines as no-ops, and
    the ``secret`` that seeds grader-made inputs.
``expected.npz``
    case key -> the solution's probe output (:func:`d2lcnn.grading.payload.pack`).
``solution.ipynb``
    The solution notebook.

Both sides also share how the tests and autograder cells are executed in the grader
process (:func:`load_cases`), the error a malformed assignment raises, and
:func:`write_atomic`. Nothing here starts a sandbox; the loaded bundle that does is
:class:`d2lcnn.grading.bundle.Bundle`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from d2lcnn.grading import checks
from d2lcnn.grading.api import Registry
from d2lcnn.grading.payload import pack, unpack

__all__ = ["AssignError", "BUNDLE_FORMAT", "DEFAULT_SETTINGS", "STUBS", "write_atomic",
           "bundle_hash", "read_bundle", "write_bundle", "load_cases"]

BUNDLE_FORMAT = 1
META, EXPECTED, SOLUTION = "bundle.json", "expected.npz", "solution.ipynb"
DEFAULT_SETTINGS = {
    "forbid": [],  # module prefixes a submission may not import
    "case_timeout": 10.0,  # wall-clock seconds per test case
    "cell_timeout": 60.0,  # wall-clock seconds per notebook cell
    "memory_mb": 2048,  # address-space limit of the sandbox process
    "output_kb": 1024,  # cap on captured output and on any file the submission writes
    "cpu_seconds": None,  # RLIMIT_CPU per process; None: derived from the timeouts
    "preload": [],  # allowed modules imported before the sandbox starts (speed, not safety)
    "question_timeout": None,  # seconds for a whole question; None: derived from the above
    "submission_timeout": None,  # seconds for a whole submission; None: sum of questions'
    "scratch_mb": 64,  # bwrap isolation: size of a question's private /tmp
    "scratch_files": 1024,  # ... and how many files and folders it may hold
}
STUBS = ["check", "submit", "grader"]  # names the setup cell defines; no-ops in the sandbox


class AssignError(ValueError):
    """A malformed assignment source, a leak into the student version, or a failing solution."""


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide handed-out files from others
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def bundle_hash(bundle_dir: Path) -> str:
    """SHA-256 of ``bundle.json`` and ``expected.npz``: a result graded against another
    bundle is regraded."""
    h = hashlib.sha256()
    for name in (META, EXPECTED):
        h.update((Path(bundle_dir) / name).read_bytes())
    return h.hexdigest()


def write_bundle(bundle_dir: Path, meta: dict, expected: dict) -> None:
    """Write ``bundle.json`` and ``expected.npz`` (each atomically)."""
    bundle_dir = Path(bundle_dir)
    write_atomic(bundle_dir / META, json.dumps(meta, indent=1))
    write_atomic(bundle_dir / EXPECTED, pack(expected))


def read_bundle(bundle_dir: Path) -> tuple[dict, dict, str]:
    """``(meta, expected, sha256)`` of a bundle; ``ValueError`` if its format is not ours."""
    bundle_dir = Path(bundle_dir)
    meta = json.loads((bundle_dir / META).read_text())
    if meta.get("format") != BUNDLE_FORMAT:
        raise ValueError(f"{bundle_dir}: bundle format {meta.get('format')!r}, "
                         f"this grader reads {BUNDLE_FORMAT}")
    expected = unpack((bundle_dir / EXPECTED).read_bytes())
    return meta, expected, bundle_hash(bundle_dir)


def load_cases(tests: list[dict], autograder: list[str]) -> tuple[dict, dict, dict]:
    """Execute tests and autograder sources in THIS process: (cases, settings, namespace)."""
    registry = Registry()
    settings = dict(DEFAULT_SETTINGS)

    def set_settings(**kwargs):
        unknown = set(kwargs) - set(DEFAULT_SETTINGS)
        if unknown:
            raise AssignError(f"settings(): unknown option(s) {sorted(unknown)}; "
                              f"known: {sorted(DEFAULT_SETTINGS)}")
        settings.update(kwargs)

    scope = {"case": registry.case, "checks": checks, "np": np, "settings": set_settings,
             "__name__": "tests"}
    for i, t in enumerate(tests):
        registry.hidden = t["hidden"]
        exec(compile(t["source"], f"<tests cell {i}>", "exec"), scope)
    for i, src in enumerate(autograder):
        exec(compile(src, f"<autograder cell {i}>", "exec"), scope)
    for c in registry.cases.values():
        if isinstance(c.checker, str):
            if not callable(scope.get(c.checker)):
                raise AssignError(f"case {c.key}: checker {c.checker!r} is not a function "
                                  "defined in an autograder cell")
            if not c.hidden:
                raise AssignError(f"public case {c.key}: a named checker runs only in the "
                                  "grader; pass a function so check() can use it")
        if c.inputs is not None:
            if not c.hidden:
                raise AssignError(f"public case {c.key}: inputs= is for hidden cases (its "
                                  "function lives in an autograder cell)")
            if not isinstance(c.inputs, str) or not callable(scope.get(c.inputs)):
                raise AssignError(f"case {c.key}: inputs {c.inputs!r} is not a function "
                                  "defined in an autograder cell")
    return registry.cases, settings, scope

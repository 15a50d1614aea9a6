"""The student's side: ``check("q1")`` in the kernel, and ``submit()``.

The setup cell of every assignment creates them::

    from d2lcnn.grading import Checker
    grader = Checker("hw1-convolution", globals())
    check, submit = grader.check, grader.submit

``check`` runs the question's PUBLIC cases in the student's own kernel against the expected
values shipped in ``hw1-convolution.public.npz`` (next to the notebook). It is a self-check
only: the grade comes from the grader's sandbox, with hidden cases as well.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from d2lcnn.grading import checks
from d2lcnn.grading.api import Namespace, Registry
from d2lcnn.grading.payload import pack, unpack

__all__ = ["Checker"]


class Checker:
    """Self-check and submission helper for one assignment.

    Args:
        assignment: the assignment id, e.g. ``"hw1-convolution"``.
        namespace: the notebook's ``globals()``; probes read the student's functions there.
        directory: where the notebook and its ``.public.npz`` live. Default: the working
            directory (JupyterLab starts kernels in the notebook's folder).
    """

    def __init__(self, assignment: str, namespace: dict, directory: str | Path = "."):
        self.assignment = assignment
        self.namespace = namespace
        self.directory = Path(directory)
        self._public = None

    def _load(self):
        if self._public is None:
            path = self.directory / f"{self.assignment}.public.npz"
            if not path.exists():
                return None
            public = unpack(path.read_bytes())
            registry = Registry()
            for i, src in enumerate(public["tests"]):
                scope = {"case": registry.case, "checks": checks, "np": np,
                         "__name__": "tests"}
                exec(compile(src, f"<public tests {i}>", "exec"), scope)
            self._public = (public, registry.cases)
        return self._public

    def check(self, question: str) -> None:
        """Run the public cases of ``question`` and print one line per case."""
        loaded = self._load()
        if loaded is None:
            print(f"{question}: no public tests found ({self.assignment}.public.npz should be "
                  "next to this notebook)")
            return
        public, cases = loaded
        metas = [m for m in public["cases"] if m["question"] == question]
        if not metas:
            print(f"{question}: no public tests for this question")
            return
        ns = Namespace(self.namespace)
        lines, passed, attempted = [], 0, False
        for m in metas:
            case = cases[m["key"]]
            try:
                got = case.probe(ns, np.random.default_rng(m["seed"]))
            except NotImplementedError:
                lines.append(f"  - {m['name']}: not attempted")
                continue
            except Exception as e:  # noqa: BLE001 - report, never crash the notebook
                attempted = True
                lines.append(f"  ✗ {m['name']}: raised {type(e).__name__}: {e}")
                if m["hint"]:
                    lines.append(f"      hint: {m['hint']}")
                continue
            attempted = True
            try:
                got = unpack(pack(got))  # what the grader would see
                ok, msg = (case.checker or checks.close())(got, public["expected"][m["key"]])
            except Exception as e:  # noqa: BLE001
                ok, msg = False, f"the result cannot be graded ({type(e).__name__}: {e})"
            if ok:
                passed += 1
                lines.append(f"  ✓ {m['name']}")
            else:
                lines.append(f"  ✗ {m['name']}: {msg}")
                if m["hint"]:
                    lines.append(f"      hint: {m['hint']}")
        if not attempted:
            print(f"{question}: not attempted yet (replace `raise NotImplementedError` with "
                  "your code, run the cell, then run this check again)")
            return
        head = "all public tests passed" if passed == len(metas) else \
            f"{passed}/{len(metas)} public tests passed"
        print(f"{question}: {head}")
        print("\n".join(lines))
        if passed == len(metas):
            print("  (hidden tests run when your submission is graded)")

    def submit(self, notebook: str | Path | None = None) -> None:
        """Copy the SAVED notebook to ``<assignment>.submission.ipynb`` next to it.

        Prints one line: the file written, its size and hash; or why nothing was written.
        Returns None, so the notebook shows that line and nothing else.

        Args:
            notebook: the notebook to submit (relative to ``directory``). Default: the one
                this kernel runs, found by :meth:`find_notebook`.
        """
        import nbformat  # here: ~1 s to import, and every homework and sandbox imports this module

        try:
            src = self._resolve(notebook) if notebook else self.find_notebook()
        except LookupError as e:
            print(f"Nothing submitted: {e}")
            return
        nb = nbformat.read(src, as_version=4)
        meta = nb.metadata.setdefault("d2lcnn_grading", {})
        meta.update({"assignment": self.assignment,
                     "submitted_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                     "notebook_sha256": hashlib.sha256(src.read_bytes()).hexdigest()})
        meta.setdefault("source_sha256", None)
        out = src.parent / f"{self.assignment}.submission.ipynb"
        data = nbformat.writes(nb).encode()
        out.write_bytes(data)
        print(f"Submitted the saved {src.name}: wrote {out} ({len(data):,} bytes, sha256 "
              f"{hashlib.sha256(data).hexdigest()[:12]}); upload that file.")

    def find_notebook(self) -> Path:
        """The notebook this kernel runs, for :meth:`submit`.

        In order: VS Code's ``__vsc_ipynb_file__`` (in the notebook's globals), Jupyter's
        ``JPY_SESSION_NAME`` (set in the kernel's environment by jupyter_server >= 2), each
        used if the file exists; otherwise the one notebook in ``directory`` whose metadata
        names this assignment (submission files excluded). Raises ``LookupError`` with a
        message for the student when there is none, when there are several, or when another
        notebook of this assignment was saved after the one the kernel names (a "Save As"
        keeps the kernel, and its environment, of the original).
        """
        found = self._notebooks()
        for hint in (self.namespace.get("__vsc_ipynb_file__"), os.environ.get("JPY_SESSION_NAME")):
            if isinstance(hint, str) and hint.endswith(".ipynb") and Path(hint).is_file():
                path = Path(hint)
                newer = [p for p in found if not p.samefile(path)
                         and p.stat().st_mtime > path.stat().st_mtime]
                if newer:
                    raise LookupError(self._ambiguous([path, *newer]))
                return path
        if len(found) == 1:
            return found[0]
        if not found:
            raise LookupError(f"no notebook of {self.assignment} in {self.directory.resolve()}; "
                              'pass its name, e.g. submit("my-copy.ipynb")')
        raise LookupError(self._ambiguous(found))

    def _notebooks(self) -> list[Path]:
        """Notebooks in ``directory`` whose metadata names this assignment."""
        out = []
        for path in sorted(self.directory.glob("*.ipynb")):
            if path.name.endswith(".submission.ipynb"):
                continue
            try:
                meta = json.loads(path.read_text())["metadata"]["d2lcnn_grading"]
                if meta["assignment"] == self.assignment:
                    out.append(path)
            except (OSError, ValueError, LookupError, TypeError):
                continue  # not a notebook of this assignment
        return out

    def _ambiguous(self, paths: list[Path]) -> str:
        names = ", ".join(sorted(p.name for p in paths))
        return (f"cannot tell which notebook is yours ({names}); pass its name, e.g. "
                f'submit("{sorted(paths)[0].name}")')

    def _resolve(self, notebook: str | Path) -> Path:
        path = Path(notebook)
        path = path if path.is_absolute() else self.directory / path
        if not path.is_file():
            raise LookupError(f"there is no notebook {path}")
        return path

    export = submit  # otter's name for the same step

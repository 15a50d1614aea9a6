"""The student's side: ``check("q1")`` in the kernel, and ``submit()``.

The setup cell of every assignment creates them::

    from d2lcnn.grading import Checker
    grader = Checker("hw1-convolution", globals())
    check, submit = grader.check, grader.submit

A student working in a clone of the book should not answer in the committed copy under
``notebooks/homework/`` (git tracks it: ``git pull`` would conflict with the answers, and a
reset would lose them). :func:`start` copies an assignment's student files out of the
checkout (``python -m d2lcnn.grading start hw1``), and ``Checker`` says so, once, when it
finds itself running in the committed copy.

``check`` runs the question's PUBLIC cases in the student's own kernel against the expected
values shipped in ``hw1-convolution.public.npz`` (next to the notebook). It is a self-check
only: the grade comes from the grader's sandbox, with hidden cases as well.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from d2lcnn.grading import checks
from d2lcnn.grading.api import Namespace, Registry
from d2lcnn.grading.payload import pack, unpack

__all__ = ["Checker", "committed_copy", "start"]

#: Where :func:`start` puts an assignment by default: outside any checkout, per user.
DEFAULT_WORKSPACE = Path("~/d2lcnn-homework")


def _book_homework() -> Path:
    """The checkout's ``notebooks/homework`` folder (a wheel install has none)."""
    return Path(__file__).resolve().parents[2] / "notebooks" / "homework"


def committed_copy(directory: str | Path) -> Path | None:
    """The checkout holding ``directory`` if it is an assignment folder of the book's own,
    git-tracked ``notebooks/homework/`` (None otherwise)."""
    folder = Path(directory).resolve()
    root = folder.parents[2] if len(folder.parents) > 2 else None
    if (root is None or folder.parent.name != "homework" or folder.parents[1].name != "notebooks"
            or not (root / ".git").exists()):
        return None
    return root


def start(assignment: str, to: str | Path | None = None) -> Path:
    """Copy an assignment's student files from this checkout to a folder of your own.

    Args:
        assignment: its id or a unique prefix (``"hw1"`` for ``hw1-convolution``).
        to: the destination folder. Default: ``~/d2lcnn-homework/<assignment>``.

    Returns the copied notebook's path. Raises ``LookupError`` (no such assignment, or the
    package is not installed from a checkout) or ``FileExistsError`` (the destination already
    holds that notebook: your work is never overwritten).
    """
    book = _book_homework()
    if not book.is_dir():
        raise LookupError("start copies homework from a clone of the book, and this d2lcnn "
                          "is not installed from one: use the student folder your "
                          "instructor handed out")
    names = sorted(p.name for p in book.iterdir() if p.is_dir() and not p.name.startswith("."))
    matches = [n for n in names if n == assignment] or \
        [n for n in names if n.startswith(assignment)]
    if len(matches) != 1:
        raise LookupError(f"assignment must be one of {', '.join(names)} (or a unique prefix), "
                          f"got {assignment!r}")
    (name,) = matches
    dest = Path(to).expanduser() if to is not None else DEFAULT_WORKSPACE.expanduser() / name
    notebook = dest / f"{name}.ipynb"
    if notebook.exists():
        raise FileExistsError(f"{notebook} already exists: nothing copied, your work is "
                              "untouched (pass another folder to start a fresh copy)")
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted((book / name).iterdir()):
        if path.is_file() and not path.name.endswith(".submission.ipynb"):
            shutil.copy2(path, dest / path.name)
    return notebook


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
        root = committed_copy(self.directory)
        if root is not None:
            print(f"Note: this is the book's own copy of {assignment}, which git tracks in "
                  f"{root}: `git pull` would conflict with your answers. Work on a copy: "
                  f"`python -m d2lcnn.grading start {assignment}` (then open the notebook it "
                  "names).")

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
        written = public.get("written") or {}
        if question in written:
            print(f"{question}: a written answer, graded by hand ({written[question]:g} "
                  "points): no automatic tests. Save the notebook with your answer in its "
                  "cell before you submit.")
            return
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

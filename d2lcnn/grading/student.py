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

    def submit(self, notebook: str | Path | None = None) -> Path:
        """Write ``<assignment>.submission.ipynb`` (save the notebook first!) and return it."""
        import nbformat  # here: ~1 s to import, and every homework and sandbox imports this module

        src = Path(notebook) if notebook else self.directory / f"{self.assignment}.ipynb"
        nb = nbformat.read(src, as_version=4)
        meta = nb.metadata.setdefault("d2lcnn_grading", {})
        meta.update({"assignment": self.assignment,
                     "submitted_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                     "notebook_sha256": hashlib.sha256(src.read_bytes()).hexdigest()})
        meta.setdefault("source_sha256", None)
        out = self.directory / f"{self.assignment}.submission.ipynb"
        out.write_text(nbformat.writes(nb))
        print(f"Wrote {out} from the saved {src.name} (save the notebook before submitting). "
              f"Upload {out.name}.")
        return out

    export = submit  # otter's name for the same step

"""Grading submissions against an autograder bundle: one file, or a batch in parallel.

Every submission gets a result, whatever is wrong with it; a batch never stops on one
student. Results are written atomically, ``results.json`` last, and carry the hashes of the
submission and the bundle, so a re-run skips what is already graded (resume) and rebuilds
``grades.csv`` from the result files (idempotent).
"""

from __future__ import annotations

import ast
import contextlib
import csv
import errno
import hashlib
import io
import json
import math
import os
import re
import stat
import threading
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from d2lcnn.grading import checks
from d2lcnn.grading.api import case_seed
from d2lcnn.grading.authoring import BUNDLE_FORMAT, bundle_hash, load_cases, write_atomic
from d2lcnn.grading.isolation import BwrapView, bwrap_status
from d2lcnn.grading.payload import pack, unpack
from d2lcnn.grading.sandbox import CaseRun, ForkServer, Limits, question_budget, run_question

__all__ = ["Bundle", "grade_notebook", "grade_file", "grade_batch", "submission_name",
           "IsolationUnavailable", "resolve_isolation"]

MAX_SUBMISSION_BYTES = 50 * 2**20
ISOLATION_MODES = ("bwrap", "process")


class IsolationUnavailable(RuntimeError):
    """OS isolation was asked for (or is the default) and this machine cannot provide it."""


def resolve_isolation(isolation: str | None) -> str:
    """``"bwrap"`` (also for ``None``: the default) if it works here, or ``"process"``.

    Raises :class:`IsolationUnavailable`, saying how to install bubblewrap, when bwrap is
    asked for and missing; ``"process"`` must be asked for by name (trusted code only).
    """
    if isolation not in (None, *ISOLATION_MODES):
        raise ValueError(f"isolation must be one of {ISOLATION_MODES} or None, "
                         f"got {isolation!r}")
    if isolation == "process":
        return "process"
    ok, why = bwrap_status()
    if not ok:
        raise IsolationUnavailable(f"cannot grade with OS isolation: {why}")
    return "bwrap"


@dataclass
class Bundle:
    """A loaded autograder directory (``bundle.json``, ``expected.npz``)."""

    dir: Path
    meta: dict
    expected: dict
    sha256: str

    isolation: str = "bwrap"

    @classmethod
    def load(cls, directory, *, isolation: str | None = None) -> Bundle:
        """Read ``directory``; ``isolation`` is ``"bwrap"``, ``"process"`` or ``None``
        (bwrap, and :class:`IsolationUnavailable` if this machine cannot run it)."""
        directory = Path(directory)
        meta = json.loads((directory / "bundle.json").read_text())
        if meta.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"{directory}: bundle format {meta.get('format')!r}, "
                             f"this grader reads {BUNDLE_FORMAT}")
        expected = unpack((directory / "expected.npz").read_bytes())
        bundle = cls(directory, meta, expected, bundle_hash(directory))
        bundle.isolation = resolve_isolation(isolation)
        return bundle

    @property
    def name(self) -> str:
        return self.meta["assignment"]

    @property
    def limits(self) -> Limits:
        s = self.meta["settings"]
        return Limits(case_timeout=float(s["case_timeout"]),
                      cell_timeout=float(s["cell_timeout"]), memory_mb=int(s["memory_mb"]),
                      output_kb=int(s["output_kb"]), cpu_seconds=s.get("cpu_seconds"),
                      preload=tuple(s.get("preload") or ()),
                      question_timeout=s.get("question_timeout"),
                      scratch_mb=int(s.get("scratch_mb") or 64),
                      scratch_files=int(s.get("scratch_files") or 1024))

    def submission_budget(self) -> float:
        """Seconds one submission may take in all (``settings(submission_timeout=...)``,
        default: the sum of its questions' budgets)."""
        s = self.meta["settings"].get("submission_timeout")
        if s:
            return float(s)
        limits = self.limits
        return sum(question_budget(limits, [c for c in self.meta["cases"]
                                            if c["question"] == q])
                   for q in self.meta["questions"])

    def __post_init__(self):
        self._lock = threading.Lock()  # guards the servers, spares and view below
        self._local, self._servers, self._view = threading.local(), [], None
        self._spares: list[ForkServer] = []
        self.prestart = 1  # spare bwrap sandboxes kept warm (grade_batch: one per job)
        self._checkers = self._scope = None  # the tests, loaded on first use
        self._inputs, self._inputs_lock = {}, threading.Lock()  # grader-made inputs

    def _state(self):
        return self._lock

    def _take_server(self) -> ForkServer:
        """A fresh bwrap fork server for one submission, and a spare started for the next.

        Starting a server costs the interpreter's start-up and the preloads (about 1.5 s with
        torch); a spare does that in the background while this submission is graded. Each
        server still serves exactly one submission.
        """
        with self._state():
            server = None
            while self._spares and server is None:
                s = self._spares.pop()
                if s.proc.poll() is None and not s.dead:
                    server = s
                else:
                    s.close()
        server = server or self._new_server()
        with self._lock:
            missing = self.prestart - len(self._spares)
        fresh = [self._new_server() for _ in range(missing)]
        with self._lock:
            self._spares += fresh
        return server

    def _new_server(self) -> ForkServer:
        preload = self.meta["settings"].get("preload") or ()
        if self.isolation == "process":
            return ForkServer(preload, isolation="process")
        with self._state():
            if self._view is None:
                self._view = BwrapView(self.meta["settings"]["forbid"])
        limits = self.limits
        return ForkServer(preload, isolation="bwrap", view=self._view,
                          scratch=(limits.scratch_mb, limits.scratch_files))

    @contextlib.contextmanager
    def session(self):
        """The sandbox of one submission: a callable returning a live fork server.

        ``bwrap``: a fork server of its own, started for this submission and killed (with
        every process in its namespaces) when it ends; a new one if it dies midway.
        ``process``: this thread's fork server, shared by the submissions it grades.
        """
        lock = self._state()
        mine: list[ForkServer] = []

        def get() -> ForkServer:
            if self.isolation == "process":
                z = getattr(self._local, "server", None)
                if z is None or z.dead or z.proc.poll() is not None:
                    z = self._local.server = self._new_server()
                    with lock:
                        self._servers.append(z)
                return z
            if not mine or mine[-1].dead or mine[-1].proc.poll() is not None:
                if mine:
                    mine[-1].close()
                mine.append(self._take_server())
            return mine[-1]

        try:
            yield get
        finally:
            for server in mine:
                server.close()

    def close(self) -> None:
        """Stop the fork servers this bundle started and remove its sandbox view."""
        with self._state():
            for z in self._servers + self._spares:
                z.close()
            self._servers.clear()
            self._spares.clear()
            self._local = threading.local()
            if self._view is not None:
                self._view.close()
                self._view = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _load_tests(self) -> None:
        with self._lock:  # grading threads share one copy of the tests
            if self._checkers is None:
                cases, _, scope = load_cases(self.meta["tests"], self.meta["autograder"])
                out = {}
                for key, c in cases.items():
                    chk = c.checker
                    out[key] = scope[chk] if isinstance(chk, str) else chk or checks.close()
                self._scope, self._checkers = scope, out

    def checkers(self) -> dict:
        """case key -> checker callable (runs the bundle's test code in THIS process)."""
        self._load_tests()
        return self._checkers

    def inputs(self, case: dict) -> tuple[object, object] | None:
        """``(sent, kept)`` made in the grader for a case declared with ``inputs=``.

        Made once per bundle, by the autograder cell's function, from a generator seeded
        with the bundle's secret (so a sandbox cannot recompute them); ``sent`` goes into
        the sandbox, ``kept`` only to the checker.
        """
        name = case.get("inputs")
        if not name:
            return None
        self._load_tests()
        with self._inputs_lock:
            if case["key"] not in self._inputs:
                import numpy as np

                seed = case_seed(self.name, case["key"], self.meta.get("secret", ""))
                made = self._scope[name](np.random.default_rng(seed))
                if not (isinstance(made, tuple) and len(made) == 2):
                    raise ValueError(f"case {case['key']}: inputs function {name!r} must "
                                     "return a pair (sent, kept)")
                unpack(pack(made[0]))  # plain data, or a clear error here
                self._inputs[case["key"]] = made
            return self._inputs[case["key"]]

    def run_probes(self, nb, *, deny_read=()) -> dict[str, CaseRun]:
        """Run every case on ``nb`` (no matching, no notes): used by ``assign``."""
        cells, _, _ = select_cells(self, nb)
        runs: dict[str, CaseRun] = {}
        skip: dict[int, str] = {}
        with self.session() as server:
            for q in self.meta["questions"]:
                r = self._run(q, cells, skip, deny_read, server)
                bad = [f"{c.label}: {c.error}" for c in r.cells.values() if c.error]
                if bad:
                    raise ValueError(f"a cell of the solution failed in the sandbox ({bad[0]}); "
                                     "check the settings' forbid/preload and memory limits")
                runs.update(r.cases)
        return runs

    def _run(self, q, cells, skip, deny_read, server, deadline=None):
        cases = []
        for c in self.meta["cases"]:
            if c["question"] == q:
                made = self.inputs(c)
                cases.append({"key": c["key"], "seed": c["seed"], "timeout": c["timeout"],
                              **({"inputs": made[0]} if made is not None else {})})
        return run_question(cells, [t["source"] for t in self.meta["tests"]], cases,
                            limits=self.limits, forbid=self.meta["settings"]["forbid"],
                            deny_read=[str(self.dir), f"/proc/{os.getpid()}",
                                       *map(str, deny_read)],
                            stubs=self.meta["stubs"], skip_cells=skip,
                            launcher=server, deadline=deadline)


# --- reading a submission --------------------------------------------------------------


def _source(cell) -> str:
    s = cell.get("source", "")
    if isinstance(s, list):  # nbformat's list of lines; anything else in it is dropped
        return "".join(x for x in s if isinstance(x, str))
    return s if isinstance(s, str) else ""


def _tags(cell) -> list[str]:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _strip_magics(src: str) -> str:
    lines = src.split("\n")
    if lines and lines[0].lstrip().startswith("%%"):
        lines = lines[1:]
    return "\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass  # IPython magic removed", line)
                     for line in lines)


def select_cells(bundle: Bundle, nb) -> tuple[list[dict], list[str], dict[str, list[int]]]:
    """The cells the sandbox runs, notes about tagged cells, and question -> answer cells.

    Tagged cells are matched by tag, then by cell id; check and setup cells are never run
    (the sandbox defines ``check``/``submit``/``grader`` as no-ops instead), nor are cells
    tagged ``demo`` (the student's own experiments, e.g. training on a validation split).
    """
    notes: list[str] = []
    cells = [c for c in nb.get("cells", []) if isinstance(c, dict)]
    skip: set[int] = set()
    answers: dict[str, list[int]] = {}
    for t in bundle.meta["template"]:
        role, q = t["role"], t["question"]
        if role not in ("answer", "check", "setup"):
            continue
        what = {"answer": f"the answer cell of {q}", "check": f"the check cell of {q}",
                "setup": "the setup cell"}[role]
        found = [i for i, c in enumerate(cells)
                 if role in _tags(c) and (q is None or q in _tags(c))]
        if not found:
            found = [i for i, c in enumerate(cells) if c.get("id") == t["id"]]
            if found:
                notes.append(f"{what} was found by its id; its tags were edited")
        if not found:
            notes.append(f"{what} is missing" + (" (harmless)" if role == "check" else ""))
        elif len(found) > 1:
            notes.append(f"{what} appears {len(found)} times (cells "
                         f"{', '.join(str(i + 1) for i in found)}); all are run in order"
                         if role == "answer" else f"{what} appears {len(found)} times")
        if role == "answer":
            answers[q] = found
        else:
            skip.update(found)
            for i in found:
                src = _source(cells[i])
                if role == "check" and hashlib.sha256(src.encode()).hexdigest() != t["sha256"]:
                    notes.append(f"{what} (cell {i + 1}) was edited; check cells are not run "
                                 "by the grader, so code in it does not count")
    owner = {i: q for q, idx in answers.items() for i in idx}
    run = []
    for i, c in enumerate(cells):
        if c.get("cell_type") != "code" or i in skip or "demo" in _tags(c):
            continue
        label = f"cell {i + 1}" + (f" (answer {owner[i]})" if i in owner else "")
        run.append({"key": i, "label": label, "source": _strip_magics(_source(c))})
    return run, notes, answers


def forbidden_imports(cells: list[dict], forbid: list[str]) -> list[str]:
    """Static scan (a note only; the sandbox blocks them at run time)."""
    found = []
    for c in cells:
        try:
            tree = ast.parse(c["source"])
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Call) and node.args and isinstance(
                    node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                fn = node.func
                fname = fn.id if isinstance(fn, ast.Name) else getattr(fn, "attr", "")
                if fname in ("__import__", "import_module"):
                    names = [node.args[0].value]
            for n in names:
                hit = [f for f in forbid if n == f or n.startswith(f + ".")]
                if hit:  # the forbidden prefix, not the student's text (see brief_error)
                    found.append(f"{c['label']} imports {hit[0]}, which this assignment "
                                 "forbids")
                    break
    return list(dict.fromkeys(found))


# --- scoring ---------------------------------------------------------------------------


def _kind(run: CaseRun) -> str:
    if run.status == "not_attempted":
        return "not attempted"
    if run.status == "timeout":
        return "timed out"
    if run.status == "crash":
        return "the process crashed"
    if run.status == "error":  # run.error is brief_error's "Type (line N)"
        m = re.match(r"(\w+)", run.error or "")
        return f"raised {m.group(1)}" if m and m.group(1) != "an" else "raised an exception"
    return "wrong result"


def score_case(meta: dict, run: CaseRun, expected, checker,
               kept=None) -> tuple[float, str, str]:
    """(fraction of the points, detailed message, short kind) for one case.

    ``kept``: for a case with grader-made inputs, what the grader kept of them (e.g. the
    held-out labels); the checker gets it as a third argument."""
    if run.status != "ok":
        kind = _kind(run)
        detail = {"not attempted": "not attempted (the function still raises "
                  "NotImplementedError)"}.get(kind, run.error or kind)
        return 0.0, detail, kind
    try:
        ok, msg = (checker(run.value, expected) if not meta.get("inputs")
                   else checker(run.value, expected, kept))
        frac = float(ok)
        frac = min(max(frac, 0.0), 1.0) if math.isfinite(frac) else 0.0  # NaN: no credit
    except Exception as e:  # noqa: BLE001 - a result the checker cannot handle
        frac, msg = 0.0, f"the result could not be checked ({type(e).__name__}: {e})"[:300]
    return frac, (msg or ""), ("passed" if frac == 1.0 else "wrong result")


def _empty_result(bundle: Bundle, name: str, notes: list[str], **extra) -> dict:
    tests = [{"name": f"{c['question']}: {c['name']}", "score": 0.0,
              "max_score": c["points"], "output": "not graded",
              "visibility": "after_published" if c["hidden"] else "visible"}
             for c in bundle.meta["cases"]]
    return {"score": 0.0, "max_score": sum(c["points"] for c in bundle.meta["cases"]),
            "output": "; ".join(notes), "tests": tests,
            "extra_data": {"student": name, "assignment": bundle.name,
                           "bundle_sha256": bundle.sha256, "notes": notes,
                           "questions": {q: [0.0, p] for q, p in
                                         bundle.meta["questions"].items()}, **extra}}


def grade_notebook(bundle: Bundle, nb, *, name: str, deny_read=(), notes=None) -> dict:
    """Grade a parsed notebook (a dict); returns the Gradescope-style result."""
    t0 = time.perf_counter()
    notes = list(notes or [])
    meta = (nb.get("metadata") or {}).get("d2lcnn_grading") or {}
    if meta.get("assignment") not in (None, bundle.name):
        notes.append(f"wrong assignment: this notebook is {meta.get('assignment')!r}, "
                     f"expected {bundle.name!r}")
        return _empty_result(bundle, name, notes)
    if not meta:
        notes.append("no assignment metadata (not made from the student notebook?); graded "
                     "anyway")
    elif meta.get("source_sha256") != bundle.meta["source_sha256"]:
        notes.append("made from a different version of the assignment; graded anyway")
    cells, cell_notes, answers = select_cells(bundle, nb)
    notes += cell_notes
    notes += forbidden_imports(cells, bundle.meta["settings"]["forbid"])
    checkers = bundle.checkers()
    skip: dict[int, str] = {}
    tests, q_scores, cell_errors, violations = [], {}, {}, []
    compute = 0.0
    processes = 0
    deadline = time.monotonic() + bundle.submission_budget()
    with bundle.session() as server:  # scored question by question: one run in memory
        for q, q_max in bundle.meta["questions"].items():
            run = bundle._run(q, cells, skip, deny_read, server, deadline)
            processes += run.processes
            compute += run.compute
            for k, c in run.cells.items():
                if c.error and k not in cell_errors:
                    cell_errors[k] = f"{c.label}: {c.error}"
            violations += [v for v in run.violations if v not in violations]
            notes += [n for n in run.notes if n not in notes]
            got, kinds = 0.0, []
            for c in (c for c in bundle.meta["cases"] if c["question"] == q):
                r = run.cases.get(c["key"]) or CaseRun(c["key"], "crash", error="no result")
                made = bundle.inputs(c)
                frac, detail, kind = score_case(c, r, bundle.expected.get(c["key"]),
                                                checkers[c["key"]], made and made[1])
                got += frac * c["points"]
                kinds.append(kind)
                if c["hidden"]:
                    output = "passed" if kind == "passed" else f"failed: {kind}"
                else:
                    output = "passed" if kind == "passed" else f"failed: {detail}" + (
                        f"\nhint: {c['hint']}" if c["hint"] else "")
                tests.append({"name": f"{q}: {c['name']}", "score": round(frac * c["points"], 6),
                              "max_score": c["points"], "output": output,
                              "visibility": "after_published" if c["hidden"] else "visible"})
            q_scores[q] = [round(got, 6), q_max]
            if all(k == "not attempted" for k in kinds):
                notes.append(f"{q}: not attempted")
            elif got == 0:
                errs = [cell_errors[i] for i in answers.get(q, []) if i in cell_errors]
                if errs:
                    notes.append(f"{q}: 0 points; its answer cell failed ({errs[0]})")
                elif not answers.get(q):
                    notes.append(f"{q}: 0 points; its answer cell is missing")
                else:
                    notes.append(f"{q}: 0 points; all cases failed (first: {kinds[0]})")
            elif got < q_max:
                failed = sum(k != "passed" for k in kinds)
                notes.append(f"{q}: {got:g}/{q_max:g} ({failed} of {len(kinds)} cases failed)")
    notes += [e for e in cell_errors.values() if e not in " ".join(notes)]
    notes += [f"blocked: {v}" for v in violations]
    score = round(sum(s for s, _ in q_scores.values()), 6)
    total = sum(m for _, m in q_scores.values())
    return {"score": score, "max_score": total,
            "output": f"{score:g} / {total:g} points" + ("; " + "; ".join(notes) if notes
                                                         else ""),
            "tests": tests,
            "extra_data": {"student": name, "assignment": bundle.name,
                           "bundle_sha256": bundle.sha256, "notes": notes,
                           "questions": q_scores,
                           "timing": {"wall": time.perf_counter() - t0, "compute": compute,
                                      "processes": processes}}}


def grade_file(bundle: Bundle, path: Path, *, name: str, deny_read=(), root=None) -> dict:
    """Grade one submission file; any unreadable file gives a zero result with a reason.

    The file is read by :func:`read_submission`: a symbolic link (below ``root``, the folder
    it was found in, if given) or anything but a regular file is refused, not followed."""
    import nbformat

    path = Path(path)
    try:
        data = read_submission(path, root)
    except _Refused as e:
        return _empty_result(bundle, name, [str(e)], submission=str(path))
    except OSError as e:
        return _empty_result(bundle, name, [f"cannot read the file: {e}"], submission=str(path))
    sha = hashlib.sha256(data).hexdigest()
    extra = {"submission": str(path), "submission_sha256": sha}
    if len(data) > MAX_SUBMISSION_BYTES:
        return _empty_result(bundle, name, ["the file is larger than 50 MiB"], **extra)
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        why = "not a Jupyter notebook (invalid JSON" + (
            f" at line {e.lineno})" if isinstance(e, json.JSONDecodeError) else ", not UTF-8)")
        return _empty_result(bundle, name, [why], **extra)
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        return _empty_result(bundle, name, ["not a Jupyter notebook (no list of cells)"],
                             **extra)
    notes = []
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as e:  # noqa: BLE001 - grade what we can of a damaged notebook
        notes.append(f"the notebook does not validate ({type(e).__name__}); graded anyway")
        nb = raw
    result = grade_notebook(bundle, nb, name=name, deny_read=deny_read, notes=notes)
    result["extra_data"].update(extra)
    return result


# --- batches ---------------------------------------------------------------------------


class Submission(NamedTuple):
    """A submission file found by :func:`expand`."""

    path: Path  # root / rel, or the file as named on the command line
    rel: PurePosixPath  # its path relative to root (just its name if root is None)
    root: Path | None  # the folder named on the command line that it was found in


def expand(paths) -> list[Submission]:
    """Files named on the command line, and every non-hidden entry under named folders.

    Symbolic links under a folder are listed (each gets a row saying it was not graded) but
    never followed: a symlinked folder is not descended. A folder named on the command line
    is the instructor's and is followed if it is itself a link; a FILE named there is read
    like any other, so a symlink is refused (pass the folder, not a shell glob of its
    entries). Other special files (a FIFO) are listed and refused when read."""
    out: dict[Path, Submission] = {}
    for p in map(Path, paths):
        if p.is_dir():
            for rel in _walk(p, ()):
                out.setdefault(p.joinpath(*rel), Submission(p.joinpath(*rel),
                                                            PurePosixPath(*rel), p))
        else:
            out.setdefault(p, Submission(p, PurePosixPath(p.name), None))
    return list(out.values())


def _walk(root: Path, rel: tuple[str, ...]):
    """Non-hidden entries below ``root / rel`` (sorted), descending only into real folders."""
    try:
        with os.scandir(root.joinpath(*rel)) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        if rel:  # an unreadable folder gets a row (refused when read), not silence
            yield rel
        return
    for e in entries:
        if e.name.startswith("."):
            continue
        if e.is_dir(follow_symlinks=False):
            yield from _walk(root, (*rel, e.name))
        else:  # a regular file, a symbolic link (to anything), or a special file
            yield (*rel, e.name)


class _Refused(OSError):
    """A submission that is not read (symbolic link, not a regular file); str() is the note."""


_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def read_submission(path, root=None) -> bytes:
    """The first ``MAX_SUBMISSION_BYTES + 1`` bytes of a submission, following no symlink.

    Every component below ``root`` (or just the file, if ``root`` is None) is opened with
    ``O_NOFOLLOW | O_NONBLOCK`` relative to its parent's descriptor and checked with
    ``fstat`` on that descriptor, so an entry swapped for a symbolic link, a FIFO or a
    device after listing is refused (:class:`_Refused`), never followed or blocked on."""
    path = Path(path)
    parts = path.relative_to(root).parts if root is not None else (str(path),)
    fds: list[int] = []
    try:
        dir_fd = None
        if root is not None:
            dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
            fds.append(dir_fd)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                fd = os.open(part, _OPEN_FLAGS, dir_fd=dir_fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.EMLINK):  # EMLINK: FreeBSD's O_NOFOLLOW
                    what = "the file" if last else f"the folder {part!r} on its path"
                    raise _Refused(f"{what} is a symbolic link and was not graded (links "
                                   "are never followed)") from None
                raise
            fds.append(fd)
            mode = os.fstat(fd).st_mode
            if not last and not stat.S_ISDIR(mode):
                raise _Refused(f"{part!r} on its path is not a folder; not graded")
            if last and not stat.S_ISREG(mode):
                kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                        else "a socket" if stat.S_ISSOCK(mode) else "a device")
                raise _Refused(f"not a regular file ({kind}); not graded")
            dir_fd = fd
        chunks, size = [], 0
        while size <= MAX_SUBMISSION_BYTES:
            chunk = os.read(fds[-1], min(2**20, MAX_SUBMISSION_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        for fd in fds:
            os.close(fd)


ID_MAX = 64  # characters of a student id
_ID_HASH = 10  # hex digits of the hash that makes a sanitised id unique
_FRIENDLY = re.compile(r"[a-z0-9_][a-z0-9_.@+-]*")
_LOOKS_HASHED = re.compile(rf".*-[0-9a-f]{{{_ID_HASH}}}")
_RESERVED = {"grades.csv", "con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
             *(f"lpt{i}" for i in range(10))}  # our gradebook file; Windows device names


def submission_name(path, assignment: str) -> str:
    """The student id of a submission: the name of its result folder and its CSV row.

    ``path`` is the file's path RELATIVE to the folder named on the command line (just the
    file name for a file named there), and the id depends on nothing else, so it never
    changes when other files come or go. The friendly name is that path without its
    ``.ipynb`` suffix (``alice.ipynb`` -> ``alice``, ``alice.v2.ipynb`` -> ``alice.v2``), or,
    for a file named ``<assignment>.ipynb`` or ``<assignment>.submission.ipynb`` in a
    subfolder, the subfolder's path (``alice/hw1-convolution.ipynb`` -> ``alice``). It is used
    as is if it consists of ``a-z 0-9 _ . @ + -`` only, starts with a letter, digit or ``_``,
    has at most 64 characters, does not end in ``-`` plus 10 hex digits and is not reserved
    (``grades.csv``, Windows device names). Otherwise (uppercase, spaces, unicode, ``/`` of
    deeper folders, other suffixes, too long) it is sanitised (accents dropped, every run of
    other characters -> ``_``, no leading ``.``/``-``, cut to 48 characters) and gets ``-``
    plus the first 10 hex digits of the SHA-256 of the raw relative path:
    ``Alice Smith.ipynb`` -> ``Alice_Smith-<hash>``. So names that differ only by case or
    sanitise alike get different ids, and a friendly id never looks like a hashed one. Ids
    can still coincide (``alice.ipynb`` and ``alice/hw1-convolution.ipynb``): the batch grades
    neither file and notes the collision in both rows (compared ignoring case).
    """
    rel = PurePosixPath(path)
    parts = rel.parts
    last = parts[-1] if parts else ""
    if len(parts) > 1 and last in (f"{assignment}.ipynb", f"{assignment}.submission.ipynb"):
        friendly, plain = "/".join(parts[:-1]), True
    elif last.endswith(".ipynb") and len(parts) == 1:
        friendly, plain = last[: -len(".ipynb")], True
    else:
        friendly, plain = str(rel), False
    if (plain and len(friendly) <= ID_MAX and _FRIENDLY.fullmatch(friendly)
            and not _LOOKS_HASHED.fullmatch(friendly)
            and friendly.split(".")[0] not in _RESERVED and friendly not in _RESERVED):
        return friendly
    digest = hashlib.sha256(os.fsencode(str(rel))).hexdigest()[:_ID_HASH]
    return f"{_sanitise(friendly)}-{digest}"


def _sanitise(name: str) -> str:
    """ASCII letters, digits and ``_.@+-`` only; starts with a letter, digit or ``_``."""
    name = "".join(c for c in unicodedata.normalize("NFKD", name)
                   if not unicodedata.combining(c))
    name = re.sub(r"[^A-Za-z0-9_.@+-]+", "_", name)
    name = re.sub(r"^[^A-Za-z0-9_]+", "", name)[:ID_MAX - _ID_HASH - 6].rstrip(".")
    return name if re.search(r"[A-Za-z0-9]", name) else "submission"


def _id_collisions(subs: list[Submission], names: list[str]) -> dict[int, str]:
    """index -> note, for every submission whose id another one also has (ignoring case)."""
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        groups.setdefault(n.lower(), []).append(i)
    return {i: "id collision with " + ", ".join(str(subs[j].path) for j in g if j != i)
            + f" (same id {names[i]!r}); not graded, rename one of the files"
            for g in groups.values() if len(g) > 1 for i in g}


def _real_path(f: Path) -> Path:
    """``f`` with its folder resolved but not its last component (a symlink loop there must
    not stop the batch; a link is never read anyway)."""
    try:
        return f.parent.resolve() / f.name
    except (OSError, RuntimeError):
        return f.absolute()


_CSV_ACTIVE = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(value) -> str:
    """A text cell, with a leading ``'`` if a spreadsheet could read it as a formula (and
    lone surrogates, from undecodable file names or a student's message, as ``\\udcff``)."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return "'" + text if text.startswith(_CSV_ACTIVE) else text


def _csv_number(value) -> str:
    return f"{float(value) + 0.0:g}"  # + 0.0: never "-0"


def feedback_markdown(result: dict) -> str:
    x = result["extra_data"]
    lines = [f"# {x['assignment']}: feedback for {x['student']}", "",
             f"**Score: {result['score']:g} / {result['max_score']:g}**", "",
             "| question | points |", "| --- | --- |"]
    lines += [f"| {q} | {s:g} / {m:g} |" for q, (s, m) in x["questions"].items()]
    lines += ["", "## Test cases", ""]
    for t in result["tests"]:
        mark = "passed" if t["score"] == t["max_score"] else "FAILED"
        hidden = " (hidden)" if t["visibility"] != "visible" else ""
        lines.append(f"- **{t['name']}**{hidden}: {t['score']:g}/{t['max_score']:g}, {mark}")
        if mark == "FAILED":
            lines += [f"  {line}" for line in t["output"].split("\n")]
    if x["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in x["notes"]]
    return "\n".join(lines) + "\n"


def _grade_one(bundle: Bundle, path: Path, name: str, out: Path, deny_read,
               root=None) -> tuple[dict, bool]:
    target = out / name / "results.json"
    try:
        sha = hashlib.sha256(read_submission(path, root)).hexdigest()
    except OSError:
        sha = None  # grade_file says why; such a result has no hash, so it is never reused
    if target.exists():
        try:
            old = json.loads(target.read_text())
            x = old["extra_data"]
            if x["submission_sha256"] == sha and x["bundle_sha256"] == bundle.sha256:
                return old, True
        except (ValueError, KeyError, TypeError):
            pass
    try:
        result = grade_file(bundle, path, name=name, deny_read=deny_read, root=root)
    except Exception as e:  # noqa: BLE001 - a grader bug must not stop the batch
        result = _empty_result(bundle, name, [f"internal grader error: {type(e).__name__}: "
                                              f"{e}"], submission=str(path))
        return result, False  # no results.json: retried on the next run
    write_atomic(out / name / "feedback.md",  # a student's message may hold a lone surrogate
                 feedback_markdown(result).encode("utf-8", "backslashreplace"))
    write_atomic(target, json.dumps(result, indent=1, default=float))
    return result, False


def grade_batch(bundle_dir, paths, out, *, jobs: int = 1, progress: bool = True,
                isolation: str | None = None) -> dict:
    """Grade many submissions into ``out``; returns ``{"rows", "graded", "skipped"}``.

    ``isolation``: ``"bwrap"`` (the default; :class:`IsolationUnavailable` if this machine
    cannot run it) or ``"process"`` (no OS isolation: for trusted submissions only)."""
    with Bundle.load(bundle_dir, isolation=isolation) as bundle:
        return _grade_batch(bundle, paths, Path(out), jobs=jobs, progress=progress)


def _grade_batch(bundle: Bundle, paths, out: Path, *, jobs: int, progress: bool) -> dict:
    from tqdm.auto import tqdm

    bundle.prestart = max(1, jobs)

    out.mkdir(parents=True, exist_ok=True)
    here = out.resolve()  # an output folder inside the submissions folder is not graded
    subs = [s for s in expand(paths)  # (resolving the folder: a file may be a link loop)
            if not {here} & {s.path.parent.resolve(), *s.path.parent.resolve().parents}]
    files = [s.path for s in subs]
    # One row per file; the id depends only on the file's own relative path (stable), and
    # files whose ids coincide are all refused: a result folder is never shared.
    names = [submission_name(s.rel, bundle.name) for s in subs]
    results = {i: _empty_result(bundle, names[i], [note], submission=str(files[i]))
               for i, note in _id_collisions(subs, names).items()}
    deny = [out.resolve(), *map(_real_path, files)]  # no peeking at classmates
    skipped = 0
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, \
            tqdm(total=len(files) - len(results), desc=f"grading {bundle.name}",
                 unit="submission", disable=not progress) as bar:
        futures = {pool.submit(_grade_one, bundle, s.path, n, out, deny, s.root): i
                   for i, (s, n) in enumerate(zip(subs, names, strict=True))
                   if i not in results}
        for fut in as_completed(futures):
            result, reused = fut.result()
            results[futures[fut]] = result
            skipped += reused
            bar.update(1)
    qs = list(bundle.meta["questions"])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")  # so a "\r" in a cell is quoted too
    w.writerow(["student", "file", *qs, "total", "max", "notes"])
    rows = []
    for i, (f, n) in enumerate(zip(files, names, strict=True)):
        r = results[i]
        x = r["extra_data"]
        # Text cells are escaped against formula injection; scores are numbers we format.
        row = [_csv_text(n), _csv_text(f), *(_csv_number(x["questions"][q][0]) for q in qs),
               _csv_number(r["score"]), _csv_number(r["max_score"]),
               _csv_text("; ".join(x["notes"]))]
        w.writerow(row)
        rows.append(dict(zip(["student", "file", *qs, "total", "max", "notes"], row,
                             strict=True)))
    write_atomic(out / "grades.csv", buf.getvalue())
    return {"rows": rows, "graded": len(futures) - skipped, "skipped": skipped}

"""A loaded autograder bundle: the questions of a submission run in sandboxes.

:class:`Bundle` reads a bundle folder (:mod:`d2lcnn.grading.bundle_format`), loads its test
code in the grader process (checkers, grader-made inputs), and runs a submission's
questions through :func:`d2lcnn.grading.sandbox.run_question` on fork servers it starts and
stops: one per submission in ``bwrap`` isolation (with spares kept warm), one per grading
thread in ``process`` isolation. :func:`resolve_isolation` picks the mode. Scoring what
the runs return is :mod:`d2lcnn.grading.scoring`'s job.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from d2lcnn.grading import checks
from d2lcnn.grading.api import case_seed
from d2lcnn.grading.bundle_format import load_cases, read_bundle
from d2lcnn.grading.cells import select_cells
from d2lcnn.grading.isolation import BwrapView, bwrap_status
from d2lcnn.grading.payload import pack, unpack
from d2lcnn.grading.sandbox import (
    CaseRun,
    ForkServer,
    Limits,
    QuestionRun,
    question_budget,
    run_question,
)

__all__ = ["Bundle", "IsolationUnavailable", "resolve_isolation", "ISOLATION_MODES"]

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
        bundle = cls(directory, *read_bundle(directory))
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
        cells, _, _ = select_cells(self.meta["template"], nb)
        runs: dict[str, CaseRun] = {}
        skip: dict[int, str] = {}
        with self.session() as server:
            for q in self.meta["questions"]:
                r = self.run(q, cells, skip, deny_read, server)
                bad = [f"{c.label}: {c.error}" for c in r.cells.values() if c.error]
                if bad:
                    raise ValueError(f"a cell of the solution failed in the sandbox ({bad[0]}); "
                                     "check the settings' forbid/preload and memory limits")
                runs.update(r.cases)
        return runs

    def run(self, q: str, cells: list[dict], skip: dict[int, str], deny_read, server,
            deadline: float | None = None) -> QuestionRun:
        """Run question ``q``'s cases on the selected ``cells`` in a fresh sandbox process
        from ``server`` (see :func:`d2lcnn.grading.sandbox.run_question` for the rest)."""
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

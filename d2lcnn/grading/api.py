"""What test cells see: the ``case`` decorator, the student namespace seen by probes.

Shared by the sandbox child, the grader and the student's kernel, so it imports nothing
heavier than the standard library.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Case", "Registry", "Namespace", "case_seed"]


@dataclass
class Case:
    """One test case: ``probe(ns, rng)`` runs in the sandbox, ``checker`` in the grader."""

    question: str  # "q1"
    name: str  # unique within the question
    probe: Callable
    points: float = 1.0
    hidden: bool = False
    hint: str = ""
    checker: Callable | str | None = None  # None: checks.close(); str: an autograder cell name
    timeout: float | None = None  # seconds; None: the assignment's case_timeout
    inputs: str | None = None  # hidden cases: an autograder-cell function making the inputs
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.question}/{self.name}"


def case_seed(assignment: str, key: str, secret: str = "") -> int:
    """The seed of a case's generator: stable across runs, machines and Python versions.

    With ``secret`` (derived from the bundle's for hidden cases and grader-made inputs)
    it cannot be derived from the assignment and case names alone."""
    text = f"{secret}/{assignment}/{key}" if secret else f"{assignment}/{key}"
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


class Registry:
    """Collects the cases declared by ``@case(...)`` in tests cells."""

    def __init__(self):
        self.cases: dict[str, Case] = {}
        self.hidden = False  # set by whoever executes a tests cell, from its tag

    def case(self, question: str, name: str, *, points: float = 1.0, hint: str = "",
             checker: Callable | str | None = None, timeout: float | None = None,
             inputs: str | None = None):
        """Decorator: register ``probe(ns, rng) -> plain data`` as a test case.

        With ``inputs="make"`` (hidden cases only), ``make(rng)`` is a function of an
        ``autograder`` cell that runs in the GRADER and returns ``(sent, kept)``: ``sent``
        (plain data) is handed to the probe as a third argument, ``probe(ns, rng, sent)``,
        and ``kept`` never leaves the grader; the case's checker is then called as
        ``checker(got, expected, kept)``. Its ``rng`` is seeded from the bundle's secret, so
        the inputs cannot be recomputed from anything a student sees.
        """
        if not isinstance(question, str) or not isinstance(name, str) or not name:
            raise ValueError(f"case: question and name must be strings, got {question!r}, "
                             f"{name!r}")
        if points < 0:
            raise ValueError(f"case {question}/{name}: points must be >= 0, got {points}")

        def register(probe):
            c = Case(question, name, probe, float(points), self.hidden, hint, checker, timeout,
                     inputs)
            if c.key in self.cases:
                raise ValueError(f"case {c.key!r} is declared twice")
            self.cases[c.key] = c
            return probe

        return register


class Namespace:
    """Read-only attribute view of the student's globals, handed to probes as ``ns``."""

    __slots__ = ("_globals",)

    def __init__(self, globals_: dict):
        object.__setattr__(self, "_globals", globals_)

    def __getattr__(self, name):
        try:
            return self._globals[name]
        except KeyError:
            raise NameError(f"name {name!r} is not defined (did its cell run?)") from None

    def __contains__(self, name) -> bool:
        return name in self._globals

"""Hyperparameter search: search spaces, grid and random search, coarse-to-fine refinement.

A *search space* is a dict from hyperparameter names to dimensions::

    space = {"lr": LogUniform(1e-6, 1e-3), "reg": LogUniform(1e-5, 1e5)}

    results = random_search(objective, space, n_trials=20, seed=0, score_name="val_acc")
    print(results)                        # one line per trial, best first, like the slides
    finer = refine(space, results, top_k=5)   # narrower ranges around the best trials
    results2 = random_search(objective, finer, n_trials=20, seed=1, score_name="val_acc")

``objective(params) -> score`` trains a model with the hyperparameters ``params`` (a dict
with the same keys as the space) and returns a number, higher is better (``mode="max"``,
the default) or lower is better (``mode="min"``). It may instead return an :class:`Outcome`
to report that the trial was **aborted** (for example because the loss exploded: see
:meth:`Outcome.from_history`, which reads ``d2lcnn.train.fit``'s ``History.stop_reason``) and
to keep extra metrics. Aborted trials are kept and listed after the finished ones.

Everything random comes from ``np.random.default_rng(seed)``, so a search is reproducible
from its seed; trial ``i`` draws its values in the order of the space's keys, so the first
trials of a longer search are those of a shorter one with the same seed.

Dimensions map the unit interval onto their values (``from_unit``), which gives sampling
(``from_unit(U(0, 1))``), grids (``from_unit(linspace(0, 1, n))``) and refinement (narrow
the interval that the best trials occupy) in one place:

==================  ==========================================  =========================
dimension           value for ``u`` in [0, 1]                   use
==================  ==========================================  =========================
``Uniform(a, b)``   ``a + u (b - a)``                           dropout, momentum
``LogUniform(a,b)`` ``a (b / a) ** u`` (uniform in ``log10``)   learning rate, weight decay
``IntUniform(a,b)`` ``a .. b`` inclusive, equally likely        layers, hidden units
``Choice(opts)``    one of the options, equally likely          optimizer, activation
==================  ==========================================  =========================
"""

from __future__ import annotations

import abc
import itertools
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Dimension",
    "Uniform",
    "LogUniform",
    "IntUniform",
    "Choice",
    "grid",
    "random_samples",
    "Outcome",
    "Trial",
    "SearchResults",
    "random_search",
    "grid_search",
    "refine",
]


# --------------------------------------------------------------------------- argument checks


def _check_real(value, name: str, fn: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{fn}: {name} must be finite, got {value!r}")
    return float(value)


def _check_int(value, name: str, fn: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}: {name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{fn}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_space(space, fn: str) -> dict[str, Dimension]:
    if not isinstance(space, Mapping) or not space:
        raise ValueError(f"{fn}: space must be a non-empty dict {{name: Dimension}}, got {space!r}")
    for name, dim in space.items():
        if not isinstance(name, str):
            raise TypeError(f"{fn}: space keys must be str names, got {name!r}")
        if not isinstance(dim, Dimension):
            raise TypeError(
                f"{fn}: space[{name!r}] must be a Dimension (Uniform, LogUniform, IntUniform "
                f"or Choice), got {dim!r}"
            )
    return dict(space)


def _rng(seed, fn: str) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(_check_int(seed, "seed", fn, 0))


def _check_mode(mode, fn: str) -> str:
    if mode not in ("max", "min"):
        raise ValueError(f"{fn}: mode must be 'max' or 'min', got {mode!r}")
    return mode


# --------------------------------------------------------------------------- dimensions


class Dimension(abc.ABC):
    """One hyperparameter's range: a map ``from_unit`` of ``[0, 1]`` onto its values."""

    @abc.abstractmethod
    def from_unit(self, u: float) -> Any:
        """The value at position ``u`` in ``[0, 1]`` (``u = 0``: low end, ``u = 1``: high)."""

    @abc.abstractmethod
    def to_unit(self, value) -> float:
        """The position in ``[0, 1]`` of ``value`` (the inverse of :meth:`from_unit`)."""

    @abc.abstractmethod
    def narrow(self, values: Sequence, margin: float) -> Dimension:
        """A dimension of the same kind spanning ``values``, widened by ``margin`` times this
        dimension's width on each side and clipped to this dimension."""

    def sample(self, rng: np.random.Generator) -> Any:
        """One value drawn with ``rng``: ``from_unit(u)`` with ``u ~ U[0, 1)``."""
        return self.from_unit(float(rng.random()))

    def grid(self, n: int) -> list:
        """``n`` values evenly spaced in this dimension's own scale, both ends included."""
        n = _check_int(n, "n", f"{type(self).__name__}.grid", 1)
        if n == 1:
            return [self.from_unit(0.5)]
        return [self.from_unit(i / (n - 1)) for i in range(n)]

    def _unit_interval(self, values, margin: float, fn: str) -> tuple[float, float]:
        """The sub-interval of [0, 1] that ``values`` occupy, widened by ``margin``."""
        margin = _check_real(margin, "margin", fn)
        if margin < 0:
            raise ValueError(f"{fn}: margin must be >= 0, got {margin!r}")
        values = list(values)
        if not values:
            raise ValueError(f"{fn}: values must not be empty")
        units = [self.to_unit(v) for v in values]
        lo, hi = max(0.0, min(units) - margin), min(1.0, max(units) + margin)
        if not hi > lo and not isinstance(self, (IntUniform, Choice)):
            raise ValueError(
                f"{fn}: values {values!r} with margin={margin!r} leave an empty range; "
                "use margin > 0"
            )
        return lo, hi


class _Range(Dimension):
    """A dimension between two numbers ``low < high``: equality, repr and (for the real
    ranges) narrowing are the same for all of them."""

    low: float
    high: float

    def narrow(self, values, margin: float = 0.1) -> _Range:
        lo, hi = self._unit_interval(values, margin, f"{type(self).__name__}.narrow")
        return type(self)(self.from_unit(lo), self.from_unit(hi))

    @staticmethod
    def _format(value) -> str:
        return f"{value:.4g}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._format(self.low)}, {self._format(self.high)})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and (self.low, self.high) == (other.low, other.high)

    __hash__ = None


class Uniform(_Range):
    """A real number drawn uniformly from ``[low, high]``.

    Args:
        low, high: finite ends, ``low < high``.
    """

    def __init__(self, low: float, high: float):
        self.low = _check_real(low, "low", "Uniform")
        self.high = _check_real(high, "high", "Uniform")
        if not self.low < self.high:
            raise ValueError(f"Uniform: need low < high, got low={low!r}, high={high!r}")

    def from_unit(self, u: float) -> float:
        if u >= 1.0:
            return self.high  # exact end point (low + 1 * (high - low) may round)
        return self.low + u * (self.high - self.low)

    def to_unit(self, value) -> float:
        return (float(value) - self.low) / (self.high - self.low)



class LogUniform(_Range):
    """A positive number whose base-10 logarithm is uniform: ``10 ** U(log10 low, log10 high)``.

    The right prior for a scale parameter such as a learning rate or a weight decay: each
    decade (``1e-5 .. 1e-4``, ``1e-4 .. 1e-3``) gets the same share of the samples. The
    slides' ``lr = 10 ** uniform(-6, -3)`` is ``LogUniform(1e-6, 1e-3)``.

    Args:
        low, high: finite ends, ``0 < low < high``.
    """

    def __init__(self, low: float, high: float):
        self.low = _check_real(low, "low", "LogUniform")
        self.high = _check_real(high, "high", "LogUniform")
        if not self.low > 0:
            raise ValueError(f"LogUniform: low must be > 0, got {low!r}")
        if not self.low < self.high:
            raise ValueError(f"LogUniform: need low < high, got low={low!r}, high={high!r}")
        self._log_low, self._log_high = math.log10(self.low), math.log10(self.high)

    def from_unit(self, u: float) -> float:
        if u <= 0.0:
            return self.low
        if u >= 1.0:
            return self.high
        value = 10.0 ** (self._log_low + u * (self._log_high - self._log_low))
        return min(max(value, self.low), self.high)  # 10 ** log10(low) can round below low

    def to_unit(self, value) -> float:
        return (math.log10(value) - self._log_low) / (self._log_high - self._log_low)



class IntUniform(_Range):
    """An integer drawn uniformly from ``low, low + 1, ..., high`` (both included).

    Args:
        low, high: ints, ``low < high``.
    """

    def __init__(self, low: int, high: int):
        self.low = _check_int(low, "low", "IntUniform")
        self.high = _check_int(high, "high", "IntUniform")
        if not self.low < self.high:
            raise ValueError(f"IntUniform: need low < high, got low={low!r}, high={high!r}")

    def from_unit(self, u: float) -> int:
        count = self.high - self.low + 1
        return self.low + min(int(u * count), count - 1)  # bins of equal width

    def to_unit(self, value) -> float:
        return (int(value) - self.low) / (self.high - self.low)

    def grid(self, n: int) -> list[int]:
        """Up to ``n`` distinct integers evenly spread from ``low`` to ``high`` (both ends)."""
        n = _check_int(n, "n", "IntUniform.grid", 1)
        if n == 1:
            return [(self.low + self.high) // 2]
        points = np.linspace(self.low, self.high, n)
        return sorted({int(round(p)) for p in points})

    def narrow(self, values, margin: float = 0.1) -> IntUniform:
        lo, hi = self._unit_interval(values, margin, "IntUniform.narrow")
        width = self.high - self.low
        low = self.low + math.floor(lo * width + 1e-9)
        high = self.low + math.ceil(hi * width - 1e-9)
        if low == high:  # keep a proper range: extend towards whichever side has room
            high, low = (high + 1, low) if high < self.high else (high, low - 1)
        return IntUniform(low, high)

    _format = staticmethod(str)


class Choice(Dimension):
    """One of a few options, equally likely (``"sgd"`` or ``"adam"``, ``3`` or ``5``, ...).

    ``grid(n)`` returns every option whatever ``n`` is, and :meth:`narrow` keeps the options
    that appear among ``values`` (in their original order).

    Args:
        options: a non-empty sequence of distinct values.
    """

    def __init__(self, options: Sequence):
        if isinstance(options, str) or not isinstance(options, Sequence) or not options:
            raise ValueError(f"Choice: options must be a non-empty list, got {options!r}")
        options = list(options)
        for i, a in enumerate(options):
            if any(a == b for b in options[:i]):
                raise ValueError(f"Choice: options must be distinct, got {a!r} twice")
        self.options = options

    def from_unit(self, u: float) -> Any:
        k = len(self.options)
        return self.options[min(int(u * k), k - 1)]

    def to_unit(self, value) -> float:
        k = len(self.options)
        return (self._index(value) + 0.5) / k

    def _index(self, value) -> int:
        for i, option in enumerate(self.options):
            if option == value:
                return i
        raise ValueError(f"Choice: {value!r} is not one of the options {self.options!r}")

    def grid(self, n: int | None = None) -> list:
        if n is not None:
            _check_int(n, "n", "Choice.grid", 1)
        return list(self.options)

    def narrow(self, values, margin: float = 0.1) -> Choice:
        values = list(values)
        if not values:
            raise ValueError("Choice.narrow: values must not be empty")
        keep = {self._index(v) for v in values}
        return Choice([o for i, o in enumerate(self.options) if i in keep])

    def __repr__(self) -> str:
        return f"Choice({self.options!r})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and self.options == other.options

    __hash__ = None


# --------------------------------------------------------------------------- sampling


def grid(space: Mapping[str, Dimension], n: int | Mapping[str, int]) -> list[dict[str, Any]]:
    """Every combination of ``n`` evenly spaced values per dimension (a full grid).

    Args:
        space: ``{name: Dimension}``.
        n: points per dimension (an int for all, or ``{name: int}`` for each). A
            :class:`Choice` always contributes all of its options; an :class:`IntUniform`
            at most its number of integers.

    Returns:
        A list of ``{name: value}`` dicts, the first name varying slowest (as
        ``itertools.product``); ends of every range are included.

    Example:
        >>> len(grid({"lr": LogUniform(1e-4, 1e-2), "p": Uniform(0.0, 0.5)}, 3))
        9
    """
    space = _check_space(space, "grid")
    if isinstance(n, Mapping):
        missing = sorted(set(space) - set(n))
        extra = sorted(set(n) - set(space))
        if missing or extra:
            raise ValueError(
                f"grid: n must have one entry per dimension {sorted(space)}, got {sorted(n)}"
            )
        counts = {name: _check_int(n[name], f"n[{name!r}]", "grid", 1) for name in space}
    else:
        count = _check_int(n, "n", "grid", 1)
        counts = dict.fromkeys(space, count)
    axes = [space[name].grid(counts[name]) for name in space]
    return [dict(zip(space, values, strict=True)) for values in itertools.product(*axes)]


def random_samples(
    space: Mapping[str, Dimension], n: int, seed: int | np.random.Generator = 0
) -> list[dict[str, Any]]:
    """``n`` independent draws from ``space``, reproducible from ``seed``.

    Trial ``i`` draws one value per dimension, in the order of the space's keys, from
    ``np.random.default_rng(seed)``; so the first ``k`` samples of ``n > k`` equal the ``k``
    samples drawn with the same seed.

    Args:
        space: ``{name: Dimension}``.
        n: number of samples, >= 1.
        seed: an int >= 0, or a ``np.random.Generator`` to draw from (it advances).

    Returns:
        A list of ``n`` dicts ``{name: value}``.
    """
    space = _check_space(space, "random_samples")
    n = _check_int(n, "n", "random_samples", 1)
    rng = _rng(seed, "random_samples")
    return [{name: dim.sample(rng) for name, dim in space.items()} for _ in range(n)]


# --------------------------------------------------------------------------- trials


@dataclass(frozen=True)
class Outcome:
    """What an objective may return instead of a bare score.

    Attributes:
        score: the number to rank trials by (e.g. the validation accuracy). May be ``nan``
            for an aborted trial.
        aborted: ``None`` for a trial that ran to the end, else why it was stopped (e.g.
            ``"loss exploded: 7.2 > 3 x the initial loss 2.3 at step 5 (epoch 1)"``).
        metrics: anything else worth keeping (training loss, epochs run, ...).
    """

    score: float
    aborted: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_history(cls, history, monitor: str = "val_accuracy", **metrics) -> Outcome:
        """The outcome of a :func:`d2lcnn.train.fit` run.

        The score is ``monitor`` of the last completed epoch (``nan`` if none completed). The
        trial counts as aborted if ``history.stop_reason`` is set by anything but early
        stopping: a loss more than ``explode_factor`` times the first loss (the slides'
        "cost > 3x the original cost, break out early"), a ``nan`` loss or gradient, or a
        callback.

        Args:
            history: a ``d2lcnn.train.History``.
            monitor: an ``EpochRecord`` field. Default ``"val_accuracy"``.
            **metrics: extra entries for :attr:`metrics`.
        """
        score = math.nan
        if history.epochs:
            value = getattr(history.epochs[-1], monitor)
            score = math.nan if value is None else float(value)
        reason = history.stop_reason
        aborted = None if reason is None or reason.startswith("early stopping") else reason
        metrics = {"epochs": len(history.epochs), "steps": len(history.steps), **metrics}
        return cls(score, aborted, metrics)


@dataclass(frozen=True)
class Trial:
    """One evaluated configuration.

    Attributes:
        index: position in the search, 0-based (``(index + 1) / n_trials`` is printed).
        params: ``{name: value}`` tried.
        score: the objective's score (``nan`` if the trial was aborted before scoring).
        aborted: ``None`` if the trial finished, else the reason it stopped.
        metrics: extra values reported through :class:`Outcome`.
    """

    index: int
    params: dict[str, Any]
    score: float
    aborted: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """True if the trial ran to the end and has a finite score."""
        return self.aborted is None


def _format_value(value) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return f"{value:.3e}"  # 4 significant digits, like the slides' 1.405206e-04 but shorter


class SearchResults(Sequence):
    """The trials of a search, best first: finished trials by score, then aborted ones in
    the order they ran.

    Indexing and iteration give :class:`Trial` records in that order; ``str(results)`` (or
    :meth:`table`) prints one line per trial like the lecture's logs::

        val_acc: 0.9444  lr: 8.212e-04  reg: 1.377e-03  (7 / 20)
        aborted  lr: 9.107e-04  reg: 2.153e+03  (3 / 20)  loss exploded: ...

    Attributes:
        space: the space the trials came from.
        mode: ``"max"`` or ``"min"``.
        score_name: the label of the score column.
        n_trials: the number of trials run.
    """

    def __init__(
        self,
        trials: Sequence[Trial],
        space: Mapping[str, Dimension],
        *,
        mode: str = "max",
        score_name: str = "score",
    ):
        self.space = dict(space)
        self.mode = _check_mode(mode, "SearchResults")
        self.score_name = str(score_name)
        self.n_trials = len(trials)
        sign = -1.0 if self.mode == "max" else 1.0
        done = sorted((t for t in trials if t.finished), key=lambda t: (sign * t.score, t.index))
        aborted = sorted((t for t in trials if not t.finished), key=lambda t: t.index)
        self._trials = tuple(done + aborted)

    def __getitem__(self, i):
        return self._trials[i]

    def __len__(self) -> int:
        return len(self._trials)

    def __iter__(self) -> Iterator[Trial]:
        return iter(self._trials)

    @property
    def finished(self) -> list[Trial]:
        """The trials that ran to the end, best first."""
        return [t for t in self._trials if t.finished]

    @property
    def aborted(self) -> list[Trial]:
        """The aborted trials, in the order they ran."""
        return [t for t in self._trials if not t.finished]

    @property
    def best(self) -> Trial:
        """The best finished trial.

        Raises:
            ValueError: if every trial was aborted.
        """
        if not self.finished:
            raise ValueError(f"SearchResults.best: all {self.n_trials} trials were aborted")
        return self._trials[0]

    def table(self, n: int | None = None, *, digits: int = 4) -> str:
        """One line per trial, best first (``n`` lines at most; aborted trials are listed
        only if they fit). Scores with ``digits`` decimals; values with 4 significant
        digits; ``(k / n_trials)`` is the trial's 1-based position in the search."""
        if n is not None:
            n = _check_int(n, "n", "SearchResults.table", 0)
        rows = self._trials if n is None else self._trials[:n]
        width = len(str(self.n_trials))
        lines = []
        for t in rows:
            head = (
                f"{self.score_name}: {t.score:.{digits}f}"
                if t.finished
                else f"{'aborted':<{len(self.score_name) + digits + 4}}"
            )
            values = "  ".join(f"{k}: {_format_value(v)}" for k, v in t.params.items())
            line = f"{head}  {values}  ({t.index + 1:>{width}} / {self.n_trials})"
            if not t.finished:
                line += f"  {t.aborted}"
            lines.append(line)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        best = f", best {self.score_name}={self.best.score:.4g}" if self.finished else ""
        return f"SearchResults({self.n_trials} trials, {len(self.aborted)} aborted{best})"


def _run(objective, configs, space, mode, score_name, on_trial, fn) -> SearchResults:
    if not callable(objective):
        raise TypeError(f"{fn}: objective must be a function params -> score, got {objective!r}")
    if on_trial is not None and not callable(on_trial):
        raise TypeError(f"{fn}: on_trial must be None or a function of a Trial, got {on_trial!r}")
    mode = _check_mode(mode, fn)
    trials = []
    for i, params in enumerate(configs):
        out = objective(dict(params))
        if isinstance(out, Outcome):
            score, aborted, metrics = out.score, out.aborted, dict(out.metrics)
        elif isinstance(out, numbers.Real) and not isinstance(out, bool):
            score, aborted, metrics = float(out), None, {}
        else:
            raise TypeError(
                f"{fn}: objective must return a number or an Outcome, got {out!r} "
                f"for trial {i} with params {params!r}"
            )
        score = float(score)
        if aborted is None and not math.isfinite(score):
            aborted = f"score is {score}"
        trial = Trial(i, dict(params), score, aborted, metrics)
        trials.append(trial)
        if on_trial is not None:
            on_trial(trial)
    return SearchResults(trials, space, mode=mode, score_name=score_name)


def random_search(
    objective: Callable[[dict[str, Any]], float | Outcome],
    space: Mapping[str, Dimension],
    n_trials: int,
    *,
    seed: int | np.random.Generator = 0,
    mode: str = "max",
    score_name: str = "score",
    on_trial: Callable[[Trial], None] | None = None,
) -> SearchResults:
    """Evaluate ``objective`` at ``n_trials`` random points of ``space``.

    The points are :func:`random_samples` ``(space, n_trials, seed)``, so the same seed
    gives the same trials (and, if the objective is itself seeded, the same results).

    Args:
        objective: ``params -> score`` or ``params -> Outcome`` (see :class:`Outcome`).
        space: ``{name: Dimension}``.
        n_trials: number of trials, >= 1.
        seed: an int >= 0 or a ``np.random.Generator``. Default 0.
        mode: ``"max"`` (default) if a higher score is better, ``"min"`` if lower is.
        score_name: the label of the score in the printed table (e.g. ``"val_acc"``).
        on_trial: called with each :class:`Trial` as soon as it is done (to print progress).

    Returns:
        :class:`SearchResults`, best first.

    Raises:
        ValueError / TypeError: for a bad space, ``n_trials``, ``seed`` or ``mode``, or an
            objective that returns neither a number nor an :class:`Outcome`.
    """
    configs = random_samples(
        _check_space(space, "random_search"),
        _check_int(n_trials, "n_trials", "random_search", 1),
        _rng(seed, "random_search"),
    )
    return _run(objective, configs, space, mode, score_name, on_trial, "random_search")


def grid_search(
    objective: Callable[[dict[str, Any]], float | Outcome],
    space: Mapping[str, Dimension],
    n: int | Mapping[str, int],
    *,
    mode: str = "max",
    score_name: str = "score",
    on_trial: Callable[[Trial], None] | None = None,
) -> SearchResults:
    """Evaluate ``objective`` at every point of :func:`grid` ``(space, n)``.

    Args: as :func:`random_search`, with ``n`` points per dimension instead of a number of
    trials and a seed (the grid has ``n ** len(space)`` points for an int ``n``).

    Returns:
        :class:`SearchResults`, best first.
    """
    configs = grid(_check_space(space, "grid_search"), n)
    return _run(objective, configs, space, mode, score_name, on_trial, "grid_search")


def refine(
    space: Mapping[str, Dimension],
    results: SearchResults,
    *,
    top_k: int = 5,
    margin: float = 0.1,
) -> dict[str, Dimension]:
    """A narrower space around the best trials: the "fine" stage of a coarse-to-fine search.

    For each dimension, the new range is the smallest one holding the values of the
    ``top_k`` best finished trials, widened on each side by ``margin`` times the old range's
    width (measured in the dimension's own scale: decades for :class:`LogUniform`) and
    clipped to the old range. A :class:`Choice` keeps the options those trials used.

    If the best values sit at an end of the old range, the new range does too: that is the
    signal to *widen* the search there instead (the lecture's advice), which this function
    leaves to you.

    Args:
        space: the space the results were drawn from.
        results: :class:`SearchResults` of a search over ``space``.
        top_k: how many of the best finished trials to keep inside the new ranges (all of
            them if fewer finished), >= 1. Default 5.
        margin: widening, as a fraction of the old width, >= 0. Default 0.1.

    Returns:
        A new space ``{name: Dimension}`` with the same keys and kinds of dimension.

    Raises:
        ValueError: if no trial finished, or the arguments are out of range.
    """
    space = _check_space(space, "refine")
    if not isinstance(results, SearchResults):
        raise TypeError(f"refine: results must be SearchResults, got {type(results).__name__}")
    top_k = _check_int(top_k, "top_k", "refine", 1)
    margin = _check_real(margin, "margin", "refine")
    if margin < 0:
        raise ValueError(f"refine: margin must be >= 0, got {margin!r}")
    if set(results.space) != set(space):
        raise ValueError(
            f"refine: results come from a space with names {sorted(results.space)}, "
            f"but space has {sorted(space)}"
        )
    best = results.finished[:top_k]
    if not best:
        raise ValueError(f"refine: all {results.n_trials} trials were aborted; nothing to refine")
    return {name: dim.narrow([t.params[name] for t in best], margin) for name, dim in space.items()}

"""Checkers: compare a probe's output with the expected one, OUTSIDE the sandbox.

A checker is ``checker(got, expected) -> (score, message)`` where ``score`` is a bool or a
fraction in [0, 1] and ``message`` says what differs ("" when it passed). ``got`` is the
student's probe output and ``expected`` the solution's, both plain data (see
:mod:`d2lcnn.grading.payload`). The default is :func:`close`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["close", "equal", "rel_error_below", "compare", "raised"]


def _summary(a) -> str:
    a = np.asarray(a)
    if a.size <= 6:
        return np.array2string(a, precision=4, separator=", ").replace("\n", "")
    return f"array{a.shape} {a.dtype}, first values {np.array2string(a.ravel()[:4], precision=4)}"


def _kind(v) -> str:
    if isinstance(v, np.ndarray):
        return f"an array of shape {v.shape}"
    if isinstance(v, bool):
        return "a bool"
    if isinstance(v, int | float):
        return "a number"
    return {list: "a list", dict: "a dict", str: "a string", type(None): "None"}.get(
        type(v), type(v).__name__
    )


def compare(got, expected, *, rtol: float = 1e-6, atol: float = 1e-9, where: str = "") -> str:
    """"" if ``got`` matches ``expected`` (recursively, numbers with tolerances), else why not."""
    at = f" at {where}" if where else ""
    numeric = isinstance(expected, int | float) and not isinstance(expected, bool)
    if isinstance(expected, np.ndarray) or (isinstance(got, np.ndarray) and numeric):
        if not isinstance(got, np.ndarray | list | int | float) or isinstance(got, bool):
            return f"expected {_kind(expected)}{at}, got {_kind(got)}"
        try:
            g = np.asarray(got)
            e = np.asarray(expected)
        except Exception:  # noqa: BLE001 - ragged lists etc.
            return f"expected {_kind(expected)}{at}, got {_kind(got)}"
        if g.shape != e.shape:
            return f"expected shape {e.shape}{at}, got shape {g.shape}"
        if e.dtype.kind == "U" or g.dtype.kind == "U":
            return "" if np.array_equal(g, e) else f"wrong values{at}"
        if g.dtype.kind not in "biufc":
            return f"expected numbers{at}, got dtype {g.dtype}"
        if e.dtype.kind == "f" and g.dtype.kind in "biu":
            return f"expected a float array{at}, got dtype {g.dtype}"
        if e.size == 0:
            return ""
        ok = np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
        if ok.all():
            return ""
        bad = np.argwhere(~ok)
        idx = tuple(int(i) for i in bad[0])
        err = float(np.max(np.abs(g.astype(np.complex128) - e)[~ok]))
        return (f"{len(bad)} of {e.size} values differ{at} (max abs error {err:.3g}); "
                f"first at index {idx}: expected {e[idx].item():.6g}, got {g[idx].item():.6g}")
    if isinstance(expected, bool) or isinstance(got, bool):
        return "" if got is expected else f"expected {expected!r}{at}, got {got!r}"
    if isinstance(expected, int | float):
        if not isinstance(got, int | float):
            return f"expected {_kind(expected)}{at}, got {_kind(got)}"
        if isinstance(expected, int) and isinstance(got, int):
            return "" if got == expected else f"expected {expected}{at}, got {got}"
        if np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True):
            return ""
        return f"expected {expected!r}{at}, got {got!r}"
    if isinstance(expected, str) or expected is None:
        return "" if got == expected and type(got) is type(expected) else \
            f"expected {expected!r}{at}, got {got!r}"[:300]
    if isinstance(expected, list):
        if not isinstance(got, list):
            return f"expected {_kind(expected)} of length {len(expected)}{at}, got {_kind(got)}"
        if len(got) != len(expected):
            return f"expected {len(expected)} items{at}, got {len(got)}"
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            msg = compare(g, e, rtol=rtol, atol=atol, where=f"{where}[{i}]")
            if msg:
                return msg
        return ""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"expected {_kind(expected)}{at}, got {_kind(got)}"
        missing = sorted(set(expected) - set(got))
        if missing:
            return f"missing key {missing[0]!r}{at}"
        for k in expected:
            msg = compare(got[k], expected[k], rtol=rtol, atol=atol, where=f"{where}[{k!r}]")
            if msg:
                return msg
        return ""
    return f"cannot compare {_kind(expected)}{at}"


def close(rtol: float = 1e-6, atol: float = 1e-9):
    """Checker: same structure, shapes and (within tolerances) values. The default."""

    def check(got, expected):
        msg = compare(got, expected, rtol=rtol, atol=atol)
        return (not msg), msg

    check.__name__ = f"close(rtol={rtol}, atol={atol})"
    return check


def equal():
    """Checker: exact equality (tolerances zero)."""
    return close(rtol=0.0, atol=0.0)


def rel_error_below(tol: float):
    """Checker for arrays: ``max |g - e| / max(|g| + |e|, 1e-12) < tol`` (shapes must agree)."""

    def check(got, expected):
        g, e = np.asarray(got), np.asarray(expected)
        if g.shape != e.shape:
            return False, f"expected shape {e.shape}, got shape {g.shape}"
        if g.dtype.kind not in "biuf":
            return False, f"expected numbers, got dtype {g.dtype}"
        if e.size == 0:
            return True, ""
        err = float(np.max(np.abs(g - e) / np.maximum(np.abs(g) + np.abs(e), 1e-12)))
        ok = err < tol
        return ok, "" if ok else f"relative error {err:.2e} (must be below {tol:.0e})"

    check.__name__ = f"rel_error_below({tol})"
    return check


def raised(fn) -> str:
    """For probes: call ``fn()`` and return the name of the exception it raised, or
    ``"no error"``, so that "refuses bad input" becomes plain data to compare (the solution's
    probe returns ``"ValueError"``). ``NotImplementedError`` propagates: an unanswered
    question is "not attempted", not a wrong answer."""
    try:
        fn()
    except NotImplementedError:
        raise
    except Exception as e:  # noqa: BLE001 - any other outcome is data, compared outside
        return type(e).__name__
    return "no error"

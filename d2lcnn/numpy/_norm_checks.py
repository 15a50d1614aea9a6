"""Argument checks shared by the NumPy normalization layers (:mod:`d2lcnn.numpy.norm` and
:mod:`d2lcnn.numpy.batch_norm`).

Messages name the function, the argument, what was expected and what came.
"""

from __future__ import annotations

import numpy as np


def _check_array(a, name: str, fn: str, *, min_ndim: int = 0) -> np.ndarray:
    """A floating-point numpy array with at least ``min_ndim`` dimensions."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy array, got {type(a).__name__}")
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{fn}: {name} must be a floating-point array, got dtype {a.dtype}")
    if a.ndim < min_ndim:
        raise ValueError(
            f"{fn}: {name} must be at least {min_ndim}-D, got {a.ndim}-D shape {a.shape}"
        )
    return a


def _check_param(a, name: str, shape: tuple[int, ...], x: np.ndarray, fn: str) -> None:
    """``weight``/``bias``/running statistics: ``None`` or an array of ``shape``."""
    if a is None:
        return
    _check_array(a, name, fn)
    if a.shape != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape}, got {a.shape}")
    if a.dtype != x.dtype:
        raise TypeError(f"{fn}: {name} must have input's dtype {x.dtype}, got {a.dtype}")


def _check_running_pair(running_mean, running_var, fn: str) -> None:
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{fn}: running_mean and running_var must both be given or both None")


def _check_eps(eps, fn: str) -> float:
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.floating):
        raise TypeError(f"{fn}: eps must be a float, got {type(eps).__name__} {eps!r}")
    if not eps >= 0:
        raise ValueError(f"{fn}: eps must be >= 0, got {eps!r}")
    return float(eps)


def _check_momentum(momentum, fn: str, *, expected: str = "a float") -> float:
    """A running-average weight in ``[0, 1]`` (BatchNorm handles ``None`` before this)."""
    if isinstance(momentum, bool) or not isinstance(momentum, int | float | np.floating):
        raise TypeError(f"{fn}: momentum must be {expected}, got {momentum!r}")
    if not 0 <= momentum <= 1:
        raise ValueError(f"{fn}: momentum must be in [0, 1], got {momentum!r}")
    return float(momentum)


def _check_dout(dout, shape, fn: str) -> np.ndarray:
    dout = np.asarray(dout)
    if dout.shape != tuple(shape):
        raise ValueError(
            f"{fn}: dout must have the forward output's shape {tuple(shape)}, got {dout.shape}"
        )
    return dout

"""Weight initializers in NumPy, with ``torch.nn.init``'s formulas and names (minus the
trailing underscore: these return a new array instead of filling one).

Each takes an explicit ``generator: np.random.Generator`` and a ``shape``. Weights are laid out as
in torch: a linear layer's ``(out_features, in_features)``, a convolution's
``(C_out, C_in / groups, kH, kW)``. A unit's *fan-in* is how many inputs feed it, a unit's
*fan-out* how many outputs one input feeds::

    fan_in  = C_in / groups * kH * kW        (in_features for a linear layer)
    fan_out = C_out * kH * kW                (out_features)

The scaled initializers pick the standard deviation that keeps activations (fan-in) or
gradients (fan-out) at the same scale from layer to layer:

    Xavier/Glorot  std = gain * sqrt(2 / (fan_in + fan_out))    (a compromise of the two)
    Kaiming/He     std = gain / sqrt(fan)                       (gain = sqrt(2) for ReLU)

A uniform distribution on ``[-bound, bound]`` has std ``bound / sqrt(3)``, so the uniform
variants use ``bound = sqrt(3) * std``.

These formulas (:func:`fan_in_fan_out`, :func:`calculate_gain` and the two standard
deviations) live in :mod:`d2lcnn.checks`, so that :mod:`d2lcnn.torch.init` computes exactly the
same numbers; the first two are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from d2lcnn.checks import (
    calculate_gain,
    check_nonnegative,
    fan_in_fan_out,
    kaiming_std,
    xavier_std,
)
from d2lcnn.numpy._checks import check_generator

__all__ = [
    "fan_in_fan_out",
    "calculate_gain",
    "zeros",
    "normal",
    "uniform",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "orthogonal",
]


# --------------------------------------------------------------------------- simple


def zeros(shape: Sequence[int], *, dtype=np.float64) -> np.ndarray:
    """All zeros (biases). No ``generator``: nothing is random."""
    return np.zeros(tuple(shape), dtype=dtype)


def normal(
    generator: np.random.Generator, shape, *, mean: float = 0.0, std: float = 1.0, dtype=np.float64
) -> np.ndarray:
    """Samples of ``N(mean, std^2)``.

    Raises:
        ValueError: for ``std < 0``.
    """
    check_generator(generator, "normal")
    std = check_nonnegative(std, "std", "normal")
    return generator.normal(mean, std, size=tuple(shape)).astype(dtype, copy=False)


def uniform(
    generator: np.random.Generator, shape, *, a: float = 0.0, b: float = 1.0, dtype=np.float64
) -> np.ndarray:
    """Samples of ``U(a, b)``.

    Raises:
        ValueError: if ``a > b``.
    """
    check_generator(generator, "uniform")
    if not a <= b:
        raise ValueError(f"uniform: need a <= b, got a={a!r}, b={b!r}")
    return generator.uniform(a, b, size=tuple(shape)).astype(dtype, copy=False)


# --------------------------------------------------------------------------- Xavier / Kaiming


def xavier_uniform(generator: np.random.Generator, shape, *, gain: float = 1.0, dtype=np.float64):
    """Xavier/Glorot uniform: ``U(-bound, bound)``, ``bound = gain * sqrt(6 / (fan_in + fan_out))``.

    Args:
        generator: the random generator.
        shape: weight shape, at least 2-D (see :func:`fan_in_fan_out`).
        gain: scale factor, >= 0 (see :func:`calculate_gain`). Default 1.
    """
    check_generator(generator, "xavier_uniform")
    std = xavier_std(shape, gain, "xavier_uniform")
    bound = math.sqrt(3.0) * std  # computed as torch does, bit for bit
    return generator.uniform(-bound, bound, size=tuple(shape)).astype(dtype, copy=False)


def xavier_normal(generator: np.random.Generator, shape, *, gain: float = 1.0, dtype=np.float64):
    """Xavier/Glorot normal: ``N(0, std^2)``, ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    Args: as :func:`xavier_uniform`.
    """
    check_generator(generator, "xavier_normal")
    std = xavier_std(shape, gain, "xavier_normal")
    return generator.normal(0.0, std, size=tuple(shape)).astype(dtype, copy=False)


def kaiming_uniform(
    generator: np.random.Generator,
    shape,
    *,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    dtype=np.float64,
) -> np.ndarray:
    """Kaiming/He uniform: ``U(-bound, bound)``, ``bound = gain * sqrt(3 / fan)``.

    Args:
        generator: the random generator.
        shape: weight shape, at least 2-D.
        a: negative slope of the leaky ReLU that follows (used when
            ``nonlinearity='leaky_relu'``; ``a = 0`` is a ReLU). Default 0.
        mode: ``'fan_in'`` keeps the forward activations' variance, ``'fan_out'`` the
            backward gradients'. Default ``'fan_in'``.
        nonlinearity: passed to :func:`calculate_gain` with ``a``. Default ``'leaky_relu'``
            (as torch; with ``a = 0`` the gain is sqrt(2)).

    Raises:
        ValueError: for a bad ``mode`` or ``nonlinearity``.
    """
    check_generator(generator, "kaiming_uniform")
    std = kaiming_std(shape, a, mode, nonlinearity, "kaiming_uniform")
    bound = math.sqrt(3.0) * std
    return generator.uniform(-bound, bound, size=tuple(shape)).astype(dtype, copy=False)


def kaiming_normal(
    generator: np.random.Generator,
    shape,
    *,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    dtype=np.float64,
) -> np.ndarray:
    """Kaiming/He normal: ``N(0, std^2)``, ``std = gain / sqrt(fan)``.

    Args: as :func:`kaiming_uniform`.
    """
    check_generator(generator, "kaiming_normal")
    std = kaiming_std(shape, a, mode, nonlinearity, "kaiming_normal")
    return generator.normal(0.0, std, size=tuple(shape)).astype(dtype, copy=False)


# --------------------------------------------------------------------------- orthogonal


def orthogonal(generator: np.random.Generator, shape, *, gain: float = 1.0, dtype=np.float64):
    """A (semi-)orthogonal matrix times ``gain``, as ``torch.nn.init.orthogonal_``.

    The weight is viewed as a matrix ``(rows, cols) = (shape[0], prod(shape[1:]))``. Take a
    Gaussian matrix (transposed if it is wide), its QR decomposition ``A = Q R``, and flip
    the sign of each column of ``Q`` where ``R``'s diagonal is negative, which makes ``Q``
    uniformly (Haar) distributed. Then ``W = gain * Q`` (transposed back): its rows or
    columns are orthonormal times ``gain``, so every singular value is ``gain`` and
    ``W`` preserves the norm of vectors it acts on (up to ``gain``).

    Args:
        generator: the random generator.
        shape: weight shape, at least 2-D.
        gain: scale factor, >= 0. Default 1.
    """
    check_generator(generator, "orthogonal")
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"orthogonal: shape must have at least 2 dimensions, got {shape}")
    gain = check_nonnegative(gain, "gain", "orthogonal")
    rows = shape[0]
    cols = math.prod(shape[1:])
    a = generator.standard_normal((rows, cols))
    if rows < cols:
        a = a.T  # (cols, rows): QR of a tall matrix
    q, r = np.linalg.qr(a)  # q: orthonormal columns
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return (gain * q).reshape(shape).astype(dtype, copy=False)

"""Weight initializers in NumPy, with ``torch.nn.init``'s formulas and names (minus the
trailing underscore: these return a new array instead of filling one).

Each takes an explicit ``rng: np.random.Generator`` and a ``shape``. Weights are laid out as
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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

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

_LINEAR_GAIN = (
    "linear", "conv1d", "conv2d", "conv3d",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "sigmoid",
)  # fmt: skip


def fan_in_fan_out(shape: Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight, as ``torch.nn.init._calculate_fan_in_and_fan_out``.

    Args:
        shape: ``(out_features, in_features)`` or ``(C_out, C_in / groups, *kernel_size)``.

    Returns:
        ``(shape[1] * R, shape[0] * R)`` with ``R = prod(shape[2:])`` the receptive-field size.

    Raises:
        ValueError: for fewer than 2 dimensions (fan in and out are undefined).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(
            f"fan_in_fan_out: shape must have at least 2 dimensions (out, in, ...), got {shape}"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``.

    ====================  =============================
    linear, conv*, sigmoid  1
    tanh                  5/3
    relu                  sqrt(2)
    leaky_relu            sqrt(2 / (1 + slope^2)), slope = ``param`` (default 0.01)
    selu                  3/4
    ====================  =============================

    Raises:
        ValueError: for an unknown ``nonlinearity`` or a non-numeric ``param``.
    """
    if nonlinearity in _LINEAR_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(
                f"calculate_gain: param must be a number for leaky_relu, got {param!r}"
            )
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected one of "
        f"{list(_LINEAR_GAIN) + ['tanh', 'relu', 'leaky_relu', 'selu']}"
    )


def _fan(shape, mode: str, fn: str) -> int:
    fan_in, fan_out = fan_in_fan_out(shape)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"{fn}: mode must be 'fan_in' or 'fan_out', got {mode!r}")


def _check_rng(rng, fn: str) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{fn}: rng must be a np.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


def _check_nonnegative(value, name: str, fn: str) -> float:
    if not value >= 0:
        raise ValueError(f"{fn}: {name} must be >= 0, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------- simple


def zeros(shape: Sequence[int], *, dtype=np.float64) -> np.ndarray:
    """All zeros (biases). No ``rng``: nothing is random."""
    return np.zeros(tuple(shape), dtype=dtype)


def normal(
    rng: np.random.Generator, shape, *, mean: float = 0.0, std: float = 1.0, dtype=np.float64
) -> np.ndarray:
    """Samples of ``N(mean, std^2)``.

    Raises:
        ValueError: for ``std < 0``.
    """
    _check_rng(rng, "normal")
    std = _check_nonnegative(std, "std", "normal")
    return rng.normal(mean, std, size=tuple(shape)).astype(dtype, copy=False)


def uniform(
    rng: np.random.Generator, shape, *, a: float = 0.0, b: float = 1.0, dtype=np.float64
) -> np.ndarray:
    """Samples of ``U(a, b)``.

    Raises:
        ValueError: if ``a > b``.
    """
    _check_rng(rng, "uniform")
    if not a <= b:
        raise ValueError(f"uniform: need a <= b, got a={a!r}, b={b!r}")
    return rng.uniform(a, b, size=tuple(shape)).astype(dtype, copy=False)


# --------------------------------------------------------------------------- Xavier / Kaiming


def xavier_uniform(rng: np.random.Generator, shape, *, gain: float = 1.0, dtype=np.float64):
    """Xavier/Glorot uniform: ``U(-bound, bound)``, ``bound = gain * sqrt(6 / (fan_in + fan_out))``.

    Args:
        rng: the random generator.
        shape: weight shape, at least 2-D (see :func:`fan_in_fan_out`).
        gain: scale factor, >= 0 (see :func:`calculate_gain`). Default 1.
    """
    _check_rng(rng, "xavier_uniform")
    fan_in, fan_out = fan_in_fan_out(shape)
    std = _check_nonnegative(gain, "gain", "xavier_uniform") * math.sqrt(2.0 / (fan_in + fan_out))
    bound = math.sqrt(3.0) * std  # computed as torch does, bit for bit
    return rng.uniform(-bound, bound, size=tuple(shape)).astype(dtype, copy=False)


def xavier_normal(rng: np.random.Generator, shape, *, gain: float = 1.0, dtype=np.float64):
    """Xavier/Glorot normal: ``N(0, std^2)``, ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    Args: as :func:`xavier_uniform`.
    """
    _check_rng(rng, "xavier_normal")
    fan_in, fan_out = fan_in_fan_out(shape)
    std = _check_nonnegative(gain, "gain", "xavier_normal") * math.sqrt(2.0 / (fan_in + fan_out))
    return rng.normal(0.0, std, size=tuple(shape)).astype(dtype, copy=False)


def _kaiming_std(shape, a, mode, nonlinearity, fn):
    fan = _fan(shape, mode, fn)
    if fan == 0:
        raise ValueError(f"{fn}: shape {tuple(shape)} has a zero {mode}")
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform(
    rng: np.random.Generator,
    shape,
    *,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    dtype=np.float64,
) -> np.ndarray:
    """Kaiming/He uniform: ``U(-bound, bound)``, ``bound = gain * sqrt(3 / fan)``.

    Args:
        rng: the random generator.
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
    _check_rng(rng, "kaiming_uniform")
    std = _kaiming_std(shape, a, mode, nonlinearity, "kaiming_uniform")
    bound = math.sqrt(3.0) * std
    return rng.uniform(-bound, bound, size=tuple(shape)).astype(dtype, copy=False)


def kaiming_normal(
    rng: np.random.Generator,
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
    _check_rng(rng, "kaiming_normal")
    std = _kaiming_std(shape, a, mode, nonlinearity, "kaiming_normal")
    return rng.normal(0.0, std, size=tuple(shape)).astype(dtype, copy=False)


# --------------------------------------------------------------------------- orthogonal


def orthogonal(rng: np.random.Generator, shape, *, gain: float = 1.0, dtype=np.float64):
    """A (semi-)orthogonal matrix times ``gain``, as ``torch.nn.init.orthogonal_``.

    The weight is viewed as a matrix ``(rows, cols) = (shape[0], prod(shape[1:]))``. Take a
    Gaussian matrix (transposed if it is wide), its QR decomposition ``A = Q R``, and flip
    the sign of each column of ``Q`` where ``R``'s diagonal is negative, which makes ``Q``
    uniformly (Haar) distributed. Then ``W = gain * Q`` (transposed back): its rows or
    columns are orthonormal times ``gain``, so every singular value is ``gain`` and
    ``W`` preserves the norm of vectors it acts on (up to ``gain``).

    Args:
        rng: the random generator.
        shape: weight shape, at least 2-D.
        gain: scale factor, >= 0. Default 1.
    """
    _check_rng(rng, "orthogonal")
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"orthogonal: shape must have at least 2 dimensions, got {shape}")
    gain = _check_nonnegative(gain, "gain", "orthogonal")
    rows = shape[0]
    cols = math.prod(shape[1:])
    a = rng.standard_normal((rows, cols))
    if rows < cols:
        a = a.T  # (cols, rows): QR of a tall matrix
    q, r = np.linalg.qr(a)  # q: orthonormal columns
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return (gain * q).reshape(shape).astype(dtype, copy=False)

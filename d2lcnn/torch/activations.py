"""Activation functions from tensor primitives (``exp``, ``expm1``, ``log1p``, ``erf``,
``where``, reductions), with ``torch.nn.functional`` names and semantics. Autograd
differentiates them; they run on the input's device and never call the built-in op of
the same name.

Two autograd details shape the code:

- ``torch.where`` backpropagates ``0 * (gradient of the branch not taken)``, and
  ``0 * inf = nan``. So a branch that would overflow where it is not used is evaluated on a
  clamped input (ELU's ``expm1`` sees ``min(x, 0)``) or on ``-|x|`` (sigmoid, tanh).
- ``-|x|`` is built with ``where(x >= 0, -x, x)``, not ``abs``: the derivative of ``abs`` at
  0 is 0, which would give ``tanh'(0) = 0``.

Kinks follow PyTorch: ``x > 0`` is the positive branch, ``x == 0`` the negative one.
"""

from __future__ import annotations

import math

import torch

from d2lcnn.numpy.activations import SELU_ALPHA, SELU_SCALE

__all__ = [
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "prelu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "softplus",
    "maxout",
    "softmax",
    "log_softmax",
]


def _check(x, fn: str, min_dim: int = 0) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{fn}: x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{fn}: x must be floating point, got dtype {x.dtype}")
    if x.dim() < min_dim:
        raise ValueError(
            f"{fn}: x must be at least {min_dim}-D, got {x.dim()}-D shape {tuple(x.shape)}"
        )


def _neg_abs(x):
    """``-|x|`` with derivative -1 (not 0) at ``x = 0``."""
    return torch.where(x >= 0, -x, x)


def _softplus(z):
    """``log(1 + exp(z))`` without overflow: ``max(z, 0) + log1p(exp(-|z|))``."""
    return torch.clamp(z, min=0) + torch.log1p(torch.exp(_neg_abs(z)))


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Logistic sigmoid :math:`1 / (1 + e^{-x})`, as ``torch.sigmoid``.

    Evaluated from ``e = exp(-|x|)`` in ``(0, 1]``: ``1 / (1 + e)`` for ``x >= 0`` and
    ``e / (1 + e)`` for ``x < 0``, so nothing overflows for large ``|x|``.

    Args:
        x: any shape, floating point.

    Returns:
        ``x``'s shape, dtype and device.
    """
    _check(x, "sigmoid")
    e = torch.exp(_neg_abs(x))
    return torch.where(x >= 0, 1 / (1 + e), e / (1 + e))


def tanh(x: torch.Tensor) -> torch.Tensor:
    """Hyperbolic tangent, as ``torch.tanh``.

    For ``x >= 0``, :math:`\\tanh x = (1 - e^{-2x}) / (1 + e^{-2x}) = -u / (2 + u)` with
    ``u = expm1(-2x)``; ``expm1`` keeps full precision for tiny ``x`` (where ``1 - exp``
    would cancel), and ``tanh`` is odd, so ``x < 0`` reuses it on ``-x``.

    Args:
        x: any shape, floating point.

    Returns:
        ``x``'s shape, dtype and device.
    """
    _check(x, "tanh")
    u = torch.expm1(2 * _neg_abs(x))  # in (-1, 0]
    t = -u / (2 + u)  # tanh(|x|)
    return torch.where(x >= 0, t, -t)


def relu(x: torch.Tensor) -> torch.Tensor:
    """Rectified linear unit :math:`\\max(x, 0)`, as ``torch.relu`` (gradient 0 at 0).

    Args:
        x: any shape, floating point.

    Returns:
        ``x``'s shape, dtype and device.
    """
    _check(x, "relu")
    # x <= 0, not x > 0: NaN propagates (value and gradient) exactly as in torch.relu.
    return torch.where(x <= 0, torch.zeros_like(x), x)


def leaky_relu(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """Leaky ReLU, as ``torch.nn.functional.leaky_relu``: ``x`` if ``x > 0`` else
    ``negative_slope * x``.

    Args:
        x: any shape, floating point.
        negative_slope: slope for ``x <= 0``. Default 0.01.

    Returns:
        ``x``'s shape, dtype and device.
    """
    _check(x, "leaky_relu")
    return torch.where(x > 0, x, x * negative_slope)


def prelu(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Parametric ReLU, as ``torch.nn.functional.prelu``: ``x`` if ``x > 0`` else
    ``weight[c] * x`` in channel ``c`` (dimension 1).

    Args:
        x: ``(N, C, *)``, floating point; any shape with a single shared weight.
        weight: learned slopes ``(C,)`` or ``(1,)``.

    Returns:
        ``x``'s shape, dtype and device.

    Raises:
        ValueError: if ``weight`` is neither ``(1,)`` nor ``(C,)``.
    """
    _check(x, "prelu")
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"prelu: weight must be a torch.Tensor, got {type(weight).__name__}")
    channels = x.shape[1] if x.dim() >= 2 else 1
    if weight.dim() != 1 or weight.shape[0] not in (1, channels):
        raise ValueError(
            f"prelu: weight must have shape (1,) or (C,) = ({channels},) with C = x.shape[1], "
            f"got {tuple(weight.shape)}"
        )
    if weight.shape[0] > 1:
        weight = weight.reshape(1, channels, *([1] * (x.dim() - 2)))  # (1, C, 1, ...)
    return torch.where(x > 0, x, weight * x)


def elu(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Exponential linear unit, as ``torch.nn.functional.elu``: ``x`` if ``x > 0`` else
    :math:`\\alpha (e^x - 1)`.

    Args:
        x: any shape, floating point.
        alpha: the negative saturation value is ``-alpha``. Default 1.0.

    Returns:
        ``x``'s shape, dtype and device.
    """
    _check(x, "elu")
    # expm1 of min(x, 0): the unused branch cannot overflow (see the module docstring).
    return torch.where(x > 0, x, alpha * torch.expm1(torch.clamp(x, max=0)))


def selu(x: torch.Tensor) -> torch.Tensor:
    """Scaled ELU, as ``torch.nn.functional.selu``: ``scale * elu(x, alpha)`` with
    ``alpha = 1.6732632...``, ``scale = 1.0507009...``.

    Args:
        x: any shape, floating point.

    Returns:
        ``x``'s shape, dtype and device.
    """
    _check(x, "selu")
    return SELU_SCALE * elu(x, SELU_ALPHA)


def gelu(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """Gaussian error linear unit :math:`x \\Phi(x)`, as ``torch.nn.functional.gelu``:
    exact with ``approximate="none"`` (via ``erf``), or the tanh formula
    :math:`\\tfrac12 x (1 + \\tanh(\\sqrt{2/\\pi}(x + 0.044715 x^3)))` with ``"tanh"``.

    Args:
        x: any shape, floating point.
        approximate: ``"none"`` or ``"tanh"``. Default ``"none"``.

    Returns:
        ``x``'s shape, dtype and device.
    """
    _check(x, "gelu")
    if approximate == "none":
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    if approximate == "tanh":
        return 0.5 * x * (1 + tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(x: torch.Tensor) -> torch.Tensor:
    """Sigmoid linear unit (swish) :math:`x \\sigma(x)`, as ``torch.nn.functional.silu``.

    Args:
        x: any shape, floating point.

    Returns:
        ``x``'s shape, dtype and device.
    """
    _check(x, "silu")
    return x * sigmoid(x)


# Swish with beta = 1 is SiLU; the name is kept as an alias.
swish = silu


def mish(x: torch.Tensor) -> torch.Tensor:
    """Mish :math:`x \\tanh(\\mathrm{softplus}(x))`, as ``torch.nn.functional.mish``.

    Args:
        x: any shape, floating point.

    Returns:
        ``x``'s shape, dtype and device.
    """
    _check(x, "mish")
    return x * tanh(_softplus(x))


def softplus(x: torch.Tensor, beta: float = 1.0, threshold: float = 20.0) -> torch.Tensor:
    """Softplus :math:`\\tfrac1\\beta \\log(1 + e^{\\beta x})`, as
    ``torch.nn.functional.softplus``: exactly ``x`` where ``beta * x > threshold``.

    Args:
        x: any shape, floating point.
        beta: sharpness, > 0. Default 1.0.
        threshold: above this value of ``beta * x`` the function is the identity.
            Default 20.0.

    Returns:
        ``x``'s shape, dtype and device.
    """
    _check(x, "softplus")
    if not beta > 0:
        raise ValueError(f"softplus: beta must be > 0, got {beta}")
    z = x * beta
    return torch.where(z > threshold, x, _softplus(z) / beta)


def maxout(x: torch.Tensor, pieces: int) -> torch.Tensor:
    """Maxout over groups of ``pieces`` consecutive channels: dimension 1 is viewed as
    ``(C / pieces, pieces)`` and reduced by ``max`` (see
    :func:`d2lcnn.numpy.activations.maxout_forward`; PyTorch has no maxout). Ties send the
    gradient to the first maximal piece.

    Args:
        x: ``(N, C, *)`` with ``C`` divisible by ``pieces``, floating point.
        pieces: number of linear pieces per output unit, >= 1.

    Returns:
        ``(N, C / pieces, *)`` on ``x``'s dtype and device.
    """
    _check(x, "maxout", min_dim=2)
    if isinstance(pieces, bool) or not isinstance(pieces, int):
        raise TypeError(f"maxout: pieces must be an int, got {type(pieces).__name__}")
    if pieces < 1 or x.shape[1] % pieces != 0:
        raise ValueError(
            f"maxout: pieces must be >= 1 and divide C = x.shape[1] = {x.shape[1]}, got {pieces}"
        )
    grouped = x.unflatten(1, (x.shape[1] // pieces, pieces))  # (N, C/k, k, *)
    return grouped.max(dim=2).values  # (N, C/k, *)


def _check_dim(x, dim, fn):
    size = max(x.dim(), 1)
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"{fn}: dim must be an int, got {type(dim).__name__} {dim!r}")
    if not -size <= dim < size:
        raise ValueError(f"{fn}: dim must be in [{-size}, {size - 1}], got {dim}")


def _shifted(x, dim):
    """``x - max(x, dim)``. The max is detached: softmax ignores a constant shift, so no
    gradient needs to flow through it (and ``amax`` would split it between ties)."""
    return x - x.detach().amax(dim=dim, keepdim=True)


def softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax along ``dim``, as ``torch.softmax``: :math:`e^{x_i - m} / \\sum_j e^{x_j - m}`
    with :math:`m = \\max_j x_j`. ``dim`` is required (PyTorch's implicit choice is
    deprecated).

    Args:
        x: any shape, floating point.
        dim: the dimension that sums to 1.

    Returns:
        ``x``'s shape, dtype and device.
    """
    _check(x, "softmax")
    _check_dim(x, dim, "softmax")
    e = torch.exp(_shifted(x, dim))
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Log-softmax along ``dim``, as ``torch.log_softmax``:
    :math:`x_i - m - \\log \\sum_j e^{x_j - m}`.

    Args:
        x: any shape, floating point.
        dim: the dimension to normalise over.

    Returns:
        ``x``'s shape, dtype and device.
    """
    _check(x, "log_softmax")
    _check_dim(x, dim, "log_softmax")
    z = _shifted(x, dim)
    return z - torch.log(torch.exp(z).sum(dim=dim, keepdim=True))

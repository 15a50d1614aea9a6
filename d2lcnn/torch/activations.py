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

from d2lcnn.checks import (
    SELU_ALPHA,
    SELU_SCALE,
    check_choice,
    check_dim,
    check_int,
    check_positive,
    check_real,
)
from d2lcnn.torch._checks import check_tensor

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


def _neg_abs(x):
    """``-|x|`` with derivative -1 (not 0) at ``x = 0``."""
    return torch.where(x >= 0, -x, x)


def _softplus(z):
    """``log(1 + exp(z))`` without overflow: ``max(z, 0) + log1p(exp(-|z|))``."""
    return torch.clamp(z, min=0) + torch.log1p(torch.exp(_neg_abs(z)))


def sigmoid(input: torch.Tensor) -> torch.Tensor:
    """Logistic sigmoid :math:`1 / (1 + e^{-x})`, as ``torch.sigmoid``.

    Evaluated from ``e = exp(-|x|)`` in ``(0, 1]``: ``1 / (1 + e)`` for ``x >= 0`` and
    ``e / (1 + e)`` for ``x < 0``, so nothing overflows for large ``|x|``.

    Args:
        input: any shape, floating point.

    Returns:
        ``input``'s shape, dtype and device.
    """
    check_tensor(input, "input", "sigmoid")
    e = torch.exp(_neg_abs(input))
    return torch.where(input >= 0, 1 / (1 + e), e / (1 + e))


def tanh(input: torch.Tensor) -> torch.Tensor:
    """Hyperbolic tangent, as ``torch.tanh``.

    For ``x >= 0``, :math:`\\tanh x = (1 - e^{-2x}) / (1 + e^{-2x}) = -u / (2 + u)` with
    ``u = expm1(-2x)``; ``expm1`` keeps full precision for tiny ``input`` (where ``1 - exp``
    would cancel), and ``tanh`` is odd, so ``x < 0`` reuses it on ``-x``.

    Args:
        input: any shape, floating point.

    Returns:
        ``input``'s shape, dtype and device.
    """
    check_tensor(input, "input", "tanh")
    u = torch.expm1(2 * _neg_abs(input))  # in (-1, 0]
    t = -u / (2 + u)  # tanh(|x|)
    return torch.where(input >= 0, t, -t)


def relu(input: torch.Tensor) -> torch.Tensor:
    """Rectified linear unit :math:`\\max(x, 0)`, as ``torch.relu`` (gradient 0 at 0).

    Args:
        input: any shape, floating point.

    Returns:
        ``input``'s shape, dtype and device.
    """
    check_tensor(input, "input", "relu")
    # x <= 0, not x > 0: NaN propagates (value and gradient) exactly as in torch.relu.
    return torch.where(input <= 0, torch.zeros_like(input), input)


def leaky_relu(input: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """Leaky ReLU, as ``torch.nn.functional.leaky_relu``: ``input`` if ``x > 0`` else
    ``negative_slope * x``.

    Args:
        input: any shape, floating point.
        negative_slope: slope for ``x <= 0``. Default 0.01.

    Returns:
        ``input``'s shape, dtype and device.
    """
    check_tensor(input, "input", "leaky_relu")
    negative_slope = check_real(negative_slope, "negative_slope", "leaky_relu")
    return torch.where(input > 0, input, input * negative_slope)


def prelu(input: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Parametric ReLU, as ``torch.nn.functional.prelu``: ``input`` if ``x > 0`` else
    ``weight[c] * x`` in channel ``c`` (dimension 1).

    Args:
        input: ``(N, C, *)``, floating point; any shape with a single shared weight.
        weight: learned slopes ``(C,)`` or ``(1,)``.

    Returns:
        ``input``'s shape, dtype and device.

    Raises:
        ValueError: if ``weight`` is neither ``(1,)`` nor ``(C,)``.
    """
    check_tensor(input, "input", "prelu")
    check_tensor(weight, "weight", "prelu", floating=False)
    channels = input.shape[1] if input.dim() >= 2 else 1
    if weight.dim() != 1 or weight.shape[0] not in (1, channels):
        raise ValueError(
            f"prelu: weight must have shape (1,) or (C,) = ({channels},) with C = x.shape[1], "
            f"got {tuple(weight.shape)}"
        )
    if weight.shape[0] > 1:
        weight = weight.reshape(1, channels, *([1] * (input.dim() - 2)))  # (1, C, 1, ...)
    return torch.where(input > 0, input, weight * input)


def elu(input: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Exponential linear unit, as ``torch.nn.functional.elu``: ``input`` if ``x > 0`` else
    :math:`\\alpha (e^x - 1)`.

    Args:
        input: any shape, floating point.
        alpha: the negative saturation value is ``-alpha``. Default 1.0.

    Returns:
        ``input``'s shape, dtype and device.
    """
    check_tensor(input, "input", "elu")
    alpha = check_real(alpha, "alpha", "elu")
    # expm1 of min(x, 0): the unused branch cannot overflow (see the module docstring).
    return torch.where(input > 0, input, alpha * torch.expm1(torch.clamp(input, max=0)))


def selu(input: torch.Tensor) -> torch.Tensor:
    """Scaled ELU, as ``torch.nn.functional.selu``: ``scale * elu(x, alpha)`` with
    ``alpha = 1.6732632...``, ``scale = 1.0507009...``.

    Args:
        input: any shape, floating point.

    Returns:
        ``input``'s shape, dtype and device.
    """
    check_tensor(input, "input", "selu")
    return SELU_SCALE * elu(input, SELU_ALPHA)


def gelu(input: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """Gaussian error linear unit :math:`x \\Phi(x)`, as ``torch.nn.functional.gelu``:
    exact with ``approximate="none"`` (via ``erf``), or the tanh formula
    :math:`\\tfrac12 x (1 + \\tanh(\\sqrt{2/\\pi}(x + 0.044715 x^3)))` with ``"tanh"``.

    Args:
        input: any shape, floating point.
        approximate: ``"none"`` or ``"tanh"``. Default ``"none"``.

    Returns:
        ``input``'s shape, dtype and device.
    """
    check_tensor(input, "input", "gelu")
    if check_choice(approximate, "approximate", "gelu", ("none", "tanh")) == "none":
        return 0.5 * input * (1 + torch.erf(input / math.sqrt(2)))
    return 0.5 * input * (1 + tanh(math.sqrt(2 / math.pi) * (input + 0.044715 * input**3)))


def silu(input: torch.Tensor) -> torch.Tensor:
    """Sigmoid linear unit (swish) :math:`x \\sigma(x)`, as ``torch.nn.functional.silu``.

    Args:
        input: any shape, floating point.

    Returns:
        ``input``'s shape, dtype and device.
    """
    check_tensor(input, "input", "silu")
    return input * sigmoid(input)


# Swish with beta = 1 is SiLU; the name is kept as an alias.
swish = silu


def mish(input: torch.Tensor) -> torch.Tensor:
    """Mish :math:`x \\tanh(\\mathrm{softplus}(x))`, as ``torch.nn.functional.mish``.

    Args:
        input: any shape, floating point.

    Returns:
        ``input``'s shape, dtype and device.
    """
    check_tensor(input, "input", "mish")
    return input * tanh(_softplus(input))


def softplus(input: torch.Tensor, beta: float = 1.0, threshold: float = 20.0) -> torch.Tensor:
    """Softplus :math:`\\tfrac1\\beta \\log(1 + e^{\\beta x})`, as
    ``torch.nn.functional.softplus``: exactly ``input`` where ``beta * x > threshold``.

    Args:
        input: any shape, floating point.
        beta: sharpness, > 0. Default 1.0.
        threshold: above this value of ``beta * x`` the function is the identity.
            Default 20.0.

    Returns:
        ``input``'s shape, dtype and device.
    """
    check_tensor(input, "input", "softplus")
    beta = check_positive(beta, "beta", "softplus")
    threshold = check_real(threshold, "threshold", "softplus")
    z = input * beta
    return torch.where(z > threshold, input, _softplus(z) / beta)


def maxout(input: torch.Tensor, pieces: int) -> torch.Tensor:
    """Maxout over groups of ``pieces`` consecutive channels: dimension 1 is viewed as
    ``(C / pieces, pieces)`` and reduced by ``max`` (see
    :func:`d2lcnn.numpy.activations.maxout_forward`; PyTorch has no maxout). Ties send the
    gradient to the first maximal piece.

    Args:
        input: ``(N, C, *)`` with ``C`` divisible by ``pieces``, floating point.
        pieces: number of linear pieces per output unit, >= 1.

    Returns:
        ``(N, C / pieces, *)`` on ``input``'s dtype and device.
    """
    check_tensor(input, "input", "maxout", min_dim=2, layout="(N, C, *)")
    pieces = check_int(pieces, "pieces", "maxout", minimum=1)
    if input.shape[1] % pieces != 0:
        raise ValueError(
            f"maxout: pieces must divide C = input.shape[1] = {input.shape[1]}, got {pieces}"
        )
    grouped = input.unflatten(1, (input.shape[1] // pieces, pieces))  # (N, C/k, k, *)
    return grouped.max(dim=2).values  # (N, C/k, *)


def _shifted(x, dim):
    """``x - max(x, dim)``. The max is detached: softmax ignores a constant shift, so no
    gradient needs to flow through it (and ``amax`` would split it between ties)."""
    return x - x.detach().amax(dim=dim, keepdim=True)


def softmax(input: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax along ``dim``, as ``torch.softmax``: :math:`e^{x_i - m} / \\sum_j e^{x_j - m}`
    with :math:`m = \\max_j x_j`. ``dim`` is required (PyTorch's implicit choice is
    deprecated).

    Args:
        input: any shape, floating point.
        dim: the dimension that sums to 1.

    Returns:
        ``input``'s shape, dtype and device.
    """
    check_tensor(input, "input", "softmax")
    check_dim(dim, input.dim(), "softmax")
    e = torch.exp(_shifted(input, dim))
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax(input: torch.Tensor, dim: int) -> torch.Tensor:
    """Log-softmax along ``dim``, as ``torch.log_softmax``:
    :math:`x_i - m - \\log \\sum_j e^{x_j - m}`.

    Args:
        input: any shape, floating point.
        dim: the dimension to normalise over.

    Returns:
        ``input``'s shape, dtype and device.
    """
    check_tensor(input, "input", "log_softmax")
    check_dim(dim, input.dim(), "log_softmax")
    z = _shifted(input, dim)
    return z - torch.log(torch.exp(z).sum(dim=dim, keepdim=True))

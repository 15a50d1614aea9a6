"""Weight initializers for tensors, filling in place from an explicit ``torch.Generator``.

The formulas are those of :mod:`d2lcnn.numpy.init` (see its docstring), computed by the same
functions of :mod:`d2lcnn.checks`; the names are the same, without ``torch.nn.init``'s
trailing underscore, and each function fills ``tensor`` in place and returns it. Given the
same generator state every function draws exactly what ``torch.nn.init`` draws (same
bound/std arithmetic, same sampling call), bit for bit; ``tests/torch/test_init.py`` checks
it. ``orthogonal`` follows torch's algorithm (QR of a
Gaussian with the sign fix), so it matches too, up to the QR backend's rounding.
"""

from __future__ import annotations

import math

import torch

from d2lcnn.checks import (
    calculate_gain,
    check_nonnegative,
    fan_in_fan_out,
    kaiming_std,
    xavier_std,
)
from d2lcnn.torch._checks import check_generator, check_tensor

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


def _check(tensor, generator, fn):
    check_tensor(tensor, "tensor", fn, floating=False)
    check_generator(generator, fn)


def zeros(tensor: torch.Tensor) -> torch.Tensor:
    """Fill with zeros, in place."""
    with torch.no_grad():
        return tensor.zero_()


def normal(tensor, mean=0.0, std=1.0, *, generator: torch.Generator) -> torch.Tensor:
    """Fill with samples of ``N(mean, std^2)``, in place."""
    _check(tensor, generator, "normal")
    std = check_nonnegative(std, "std", "normal")
    with torch.no_grad():
        return tensor.normal_(mean, std, generator=generator)


def uniform(tensor, a=0.0, b=1.0, *, generator: torch.Generator) -> torch.Tensor:
    """Fill with samples of ``U(a, b)``, in place."""
    _check(tensor, generator, "uniform")
    if not a <= b:
        raise ValueError(f"uniform: need a <= b, got a={a!r}, b={b!r}")
    with torch.no_grad():
        return tensor.uniform_(a, b, generator=generator)


def xavier_uniform(tensor, gain=1.0, *, generator: torch.Generator) -> torch.Tensor:
    """Xavier uniform, ``bound = gain * sqrt(6 / (fan_in + fan_out))``, in place."""
    _check(tensor, generator, "xavier_uniform")
    std = xavier_std(tensor.shape, gain, "xavier_uniform")
    bound = math.sqrt(3.0) * std
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def xavier_normal(tensor, gain=1.0, *, generator: torch.Generator) -> torch.Tensor:
    """Xavier normal, ``std = gain * sqrt(2 / (fan_in + fan_out))``, in place."""
    _check(tensor, generator, "xavier_normal")
    std = xavier_std(tensor.shape, gain, "xavier_normal")
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def kaiming_uniform(
    tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, generator: torch.Generator
) -> torch.Tensor:
    """Kaiming uniform, ``bound = gain(nonlinearity, a) * sqrt(3 / fan)``, in place."""
    _check(tensor, generator, "kaiming_uniform")
    bound = math.sqrt(3.0) * kaiming_std(tensor.shape, a, mode, nonlinearity, "kaiming_uniform")
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def kaiming_normal(
    tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, generator: torch.Generator
) -> torch.Tensor:
    """Kaiming normal, ``std = gain(nonlinearity, a) / sqrt(fan)``, in place."""
    _check(tensor, generator, "kaiming_normal")
    std = kaiming_std(tensor.shape, a, mode, nonlinearity, "kaiming_normal")
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def orthogonal(tensor, gain=1.0, *, generator: torch.Generator) -> torch.Tensor:
    """``gain`` times a (semi-)orthogonal matrix, in place; the algorithm of
    :func:`d2lcnn.numpy.init.orthogonal` (and of ``torch.nn.init.orthogonal_``)."""
    _check(tensor, generator, "orthogonal")
    if tensor.dim() < 2:
        raise ValueError(
            f"orthogonal: tensor must have at least 2 dimensions, got shape {tuple(tensor.shape)}"
        )
    gain = check_nonnegative(gain, "gain", "orthogonal")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    a = tensor.new_empty((rows, cols)).normal_(0, 1, generator=generator)
    if rows < cols:
        a = a.T  # (cols, rows): QR of a tall matrix
    q, r = torch.linalg.qr(a)
    q = q * torch.diag(r).sign()
    if rows < cols:
        q = q.T
    with torch.no_grad():
        tensor.view_as(q).copy_(q)
        tensor.mul_(gain)
    return tensor

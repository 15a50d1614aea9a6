"""Dropout from tensor primitives (``torch.rand``, a comparison, a product), with
``torch.nn.functional.dropout`` / ``dropout2d`` semantics, plus the original unscaled
"vanilla" dropout; differentiable by autograd, on the input's device.

``p`` is the probability of dropping. The keep mask is ``rand(shape) < 1 - p`` drawn from an
explicit :class:`torch.Generator` (on ``x``'s device), or given as ``mask`` (``True`` =
keep). ``p = 1`` gives zeros, as in PyTorch. See :mod:`d2lcnn.numpy.dropout` for inverted
versus vanilla dropout.
"""

from __future__ import annotations

import torch

from d2lcnn.checks import check_probability
from d2lcnn.torch._checks import check_generator, check_tensor

__all__ = ["dropout", "vanilla_dropout", "dropout2d"]


def _check(x, p, fn, **shape) -> float:
    """``x`` a floating-point tensor (of the ``shape`` arguments of :func:`check_tensor`),
    ``p`` a probability; returns ``p``."""
    check_tensor(x, "input", fn, **shape)
    return check_probability(p, "p (the drop probability)", fn)


def _keep_mask(x, shape, p, generator, mask, fn) -> torch.Tensor:
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise TypeError(f"{fn}: mask must be a boolean tensor (True = keep), got {got}")
        if tuple(mask.shape) != tuple(shape):
            raise ValueError(f"{fn}: mask must have shape {tuple(shape)}, got {tuple(mask.shape)}")
        return mask.to(x.device)
    generator = check_generator(generator, fn, optional=True)
    u = torch.rand(shape, generator=generator, device=x.device, dtype=x.dtype)
    return u < 1 - p


def _inverted(x, p, training, generator, mask, shape, fn):
    if not training:
        return x
    keep = _keep_mask(x, shape, p, generator, mask, fn)
    scale = 0.0 if p == 1 else 1 / (1 - p)  # p = 1 drops everything (not 0 / 0)
    return x * (keep.to(x.dtype) * scale)


def dropout(
    input: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Inverted dropout, as ``torch.nn.functional.dropout``: while training, zero each
    element with probability ``p`` and scale the survivors by ``1 / (1 - p)``; in
    evaluation, the identity.

    Args:
        input: any shape, floating point.
        p: probability of dropping, in ``[0, 1]``. Default 0.5.
        training: apply dropout or return ``input``. Default True.
        generator: a :class:`torch.Generator` on ``input``'s device for the mask; ``None`` uses
            PyTorch's default generator. Default ``None``.
        mask: an explicit boolean keep mask of ``input``'s shape (``True`` = keep).
            Default ``None``.

    Returns:
        ``input``'s shape, dtype and device.
    """
    p = _check(input, p, "dropout")
    return _inverted(input, p, training, generator, mask, input.shape, "dropout")


def vanilla_dropout(
    input: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The original dropout (Srivastava et al., 2014): while training, zero each element
    with probability ``p`` without rescaling; in evaluation, multiply by ``1 - p``.

    Args: as :func:`dropout`.

    Returns:
        ``input``'s shape, dtype and device.
    """
    p = _check(input, p, "vanilla_dropout")
    if not training:
        return input * (1 - p)
    keep = _keep_mask(input, input.shape, p, generator, mask, "vanilla_dropout")
    return input * keep.to(input.dtype)


def dropout2d(
    input: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Channel dropout, as ``torch.nn.functional.dropout2d``: zero whole feature maps
    ``x[n, c]`` with probability ``p`` and scale the kept ones by ``1 / (1 - p)``.

    Args:
        input: ``(N, C, H, W)``, floating point.
        p, training, generator: as :func:`dropout`.
        mask: an explicit boolean keep mask of shape ``(N, C, 1, 1)``. Default ``None``.

    Returns:
        ``input``'s shape, dtype and device.
    """
    p = _check(input, p, "dropout2d", ndim=4, layout="(N, C, H, W)")
    return _inverted(input, p, training, generator, mask, (*input.shape[:2], 1, 1), "dropout2d")

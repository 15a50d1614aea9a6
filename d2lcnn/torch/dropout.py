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

__all__ = ["dropout", "vanilla_dropout", "dropout2d"]


def _check(x, p, fn, ndim=None) -> float:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{fn}: x must be a floating-point torch.Tensor, got {got}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(
            f"{fn}: x must be {ndim}-D (N, C, H, W), got {x.dim()}-D shape {tuple(x.shape)}"
        )
    if isinstance(p, bool) or not isinstance(p, int | float):
        raise TypeError(f"{fn}: p must be a real number in [0, 1], got {type(p).__name__}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{fn}: p (the drop probability) must be in [0, 1], got {p}")
    return float(p)


def _keep_mask(x, shape, p, generator, mask, fn) -> torch.Tensor:
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise TypeError(f"{fn}: mask must be a boolean tensor (True = keep), got {got}")
        if tuple(mask.shape) != tuple(shape):
            raise ValueError(f"{fn}: mask must have shape {tuple(shape)}, got {tuple(mask.shape)}")
        return mask.to(x.device)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{fn}: generator must be a torch.Generator, got {type(generator).__name__}"
        )
    u = torch.rand(shape, generator=generator, device=x.device, dtype=x.dtype)
    return u < 1 - p


def _inverted(x, p, training, generator, mask, shape, fn):
    if not training:
        return x
    keep = _keep_mask(x, shape, p, generator, mask, fn)
    scale = 0.0 if p == 1 else 1 / (1 - p)  # p = 1 drops everything (not 0 / 0)
    return x * (keep.to(x.dtype) * scale)


def dropout(
    x: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Inverted dropout, as ``torch.nn.functional.dropout``: while training, zero each
    element with probability ``p`` and scale the survivors by ``1 / (1 - p)``; in
    evaluation, the identity.

    Args:
        x: any shape, floating point.
        p: probability of dropping, in ``[0, 1]``. Default 0.5.
        training: apply dropout or return ``x``. Default True.
        generator: a :class:`torch.Generator` on ``x``'s device for the mask; ``None`` uses
            PyTorch's default generator. Default ``None``.
        mask: an explicit boolean keep mask of ``x``'s shape (``True`` = keep).
            Default ``None``.

    Returns:
        ``x``'s shape, dtype and device.
    """
    p = _check(x, p, "dropout")
    return _inverted(x, p, training, generator, mask, x.shape, "dropout")


def vanilla_dropout(
    x: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The original dropout (Srivastava et al., 2014): while training, zero each element
    with probability ``p`` without rescaling; in evaluation, multiply by ``1 - p``.

    Args: as :func:`dropout`.

    Returns:
        ``x``'s shape, dtype and device.
    """
    p = _check(x, p, "vanilla_dropout")
    if not training:
        return x * (1 - p)
    return x * _keep_mask(x, x.shape, p, generator, mask, "vanilla_dropout").to(x.dtype)


def dropout2d(
    x: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Channel dropout, as ``torch.nn.functional.dropout2d``: zero whole feature maps
    ``x[n, c]`` with probability ``p`` and scale the kept ones by ``1 / (1 - p)``.

    Args:
        x: ``(N, C, H, W)``, floating point.
        p, training, generator: as :func:`dropout`.
        mask: an explicit boolean keep mask of shape ``(N, C, 1, 1)``. Default ``None``.

    Returns:
        ``x``'s shape, dtype and device.
    """
    p = _check(x, p, "dropout2d", ndim=4)
    return _inverted(x, p, training, generator, mask, (*x.shape[:2], 1, 1), "dropout2d")

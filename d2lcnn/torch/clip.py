"""Gradient clipping over ``.grad`` of torch parameters, written out from tensor ops with
``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_`` semantics (formulas in
:mod:`d2lcnn.numpy.clip`). Both modify the gradients in place."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from d2lcnn.checks import check_nonnegative, check_positive

__all__ = ["clip_grad_norm", "clip_grad_value"]

_EPS = 1e-6  # torch's


def _grads(parameters) -> list[torch.Tensor]:
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


@torch.no_grad()
def clip_grad_norm(
    parameters: torch.Tensor | Iterable[torch.Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> torch.Tensor:
    """Rescale all gradients together so that their joint norm is at most ``max_norm``.

    ``total = ||(||g_1||, ..., ||g_n||)||_p``; every gradient is multiplied by
    ``min(1, max_norm / (total + 1e-6))``. Parameters without ``.grad`` are ignored.

    Args:
        parameters: a tensor or an iterable of tensors whose ``.grad`` to clip.
        max_norm: the largest allowed norm, >= 0.
        norm_type: ``p``, > 0 or ``math.inf``. Default 2.
        error_if_nonfinite: raise if the total norm is NaN or infinite. Default False.

    Returns:
        The total norm before clipping, a 0-d tensor (0 if no parameter has a gradient).

    Raises:
        ValueError: for a negative ``max_norm`` or a bad ``norm_type``.
        RuntimeError: with ``error_if_nonfinite``, for a NaN or infinite total norm (as torch).
    """
    grads = _grads(parameters)
    max_norm = check_nonnegative(max_norm, "max_norm", "clip_grad_norm")
    norm_type = check_positive(norm_type, "norm_type", "clip_grad_norm")  # math.inf included
    if not grads:
        return torch.tensor(0.0)
    norms = [torch.linalg.vector_norm(g, norm_type) for g in grads]
    total = torch.linalg.vector_norm(torch.stack(norms), norm_type)
    if error_if_nonfinite and not math.isfinite(total.item()):
        raise RuntimeError(
            f"clip_grad_norm: the total {norm_type}-norm of the gradients is {total.item()}; "
            f"pass error_if_nonfinite=False to clip anyway"
        )
    scale = torch.clamp(max_norm / (total + _EPS), max=1.0)
    for g in grads:
        g.mul_(scale.to(g.device))
    return total


@torch.no_grad()
def clip_grad_value(parameters: torch.Tensor | Iterable[torch.Tensor], clip_value: float) -> None:
    """Clamp every gradient element to ``[-clip_value, clip_value]`` in place.

    Args:
        parameters: a tensor or an iterable of tensors whose ``.grad`` to clip.
        clip_value: the largest allowed ``|g|``, >= 0.

    Raises:
        ValueError: for a negative ``clip_value``.
    """
    clip_value = check_nonnegative(clip_value, "clip_value", "clip_grad_value")
    for g in _grads(parameters):
        g.clamp_(min=-clip_value, max=clip_value)

"""The fully connected (affine) layer and flatten from tensor primitives (``matmul``,
``reshape``), with ``torch.nn.functional.linear`` / ``torch.flatten`` semantics;
differentiable by autograd, on the input's device."""

from __future__ import annotations

import math

import torch

from d2lcnn.checks import check_dim_span
from d2lcnn.torch._checks import check_tensor

__all__ = ["linear", "flatten"]


def linear(
    input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Affine map of the last dimension, :math:`y = x W^\\top + b`, as
    ``torch.nn.functional.linear`` (weight layout ``(out_features, in_features)``).

    Args:
        input: ``(N, *, in_features)``, floating point.
        weight: ``(out_features, in_features)``.
        bias: ``(out_features,)`` or ``None``. Default ``None``.

    Returns:
        ``(N, *, out_features)`` on ``input``'s device.

    Raises:
        ValueError: if the shapes do not fit together.
        TypeError: if ``input`` or ``weight`` is not a floating-point tensor.
    """
    check_tensor(input, "input", "linear", min_dim=1, layout="(..., in_features)")
    check_tensor(weight, "weight", "linear")
    if weight.dim() != 2 or weight.shape[1] != input.shape[-1]:
        raise ValueError(
            f"linear: weight must be (out_features, in_features) with in_features = "
            f"input.shape[-1] = {input.shape[-1]}, got shape {tuple(weight.shape)}"
        )
    out = input @ weight.T  # (N, *, out_features)
    if bias is not None:
        if bias.shape != (weight.shape[0],):
            raise ValueError(
                f"linear: bias must have shape (out_features,) = ({weight.shape[0]},), "
                f"got {tuple(bias.shape)}"
            )
        out = out + bias
    return out


def flatten(input: torch.Tensor, start_dim: int = 1, end_dim: int = -1) -> torch.Tensor:
    """Merge dimensions ``start_dim..end_dim`` (inclusive) into one, as
    ``torch.flatten(x, start_dim, end_dim)``, by a ``reshape``.

    The default ``start_dim=1`` keeps the batch dimension, as ``torch.nn.Flatten`` does
    (``torch.flatten`` itself defaults to 0).

    Args:
        input: a tensor of at least ``start_dim + 1`` dimensions.
        start_dim: first dimension to merge. Default 1.
        end_dim: last dimension to merge. Default -1.

    Returns:
        e.g. ``(N, C*H*W)`` for an ``(N, C, H, W)`` input with the defaults.
    """
    check_tensor(input, "input", "flatten", floating=False)
    start, end = check_dim_span(start_dim, end_dim, input.dim(), "flatten")
    if input.dim() == 0:
        return input.reshape(1)
    merged = math.prod(input.shape[start : end + 1])
    return input.reshape(*input.shape[:start], merged, *input.shape[end + 1 :])

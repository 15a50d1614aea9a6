"""The fully connected (affine) layer and flatten from tensor primitives (``matmul``,
``reshape``), with ``torch.nn.functional.linear`` / ``torch.flatten`` semantics;
differentiable by autograd, on the input's device."""

from __future__ import annotations

import math

import torch

__all__ = ["linear", "flatten"]


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Affine map of the last dimension, :math:`y = x W^\\top + b`, as
    ``torch.nn.functional.linear`` (weight layout ``(out_features, in_features)``).

    Args:
        x: ``(N, *, in_features)``, floating point.
        weight: ``(out_features, in_features)``.
        bias: ``(out_features,)`` or ``None``. Default ``None``.

    Returns:
        ``(N, *, out_features)`` on ``x``'s device.

    Raises:
        ValueError: if the shapes do not fit together.
        TypeError: if ``x`` or ``weight`` is not a floating-point tensor.
    """
    for name, t in (("x", x), ("weight", weight)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            got = t.dtype if isinstance(t, torch.Tensor) else type(t).__name__
            raise TypeError(f"linear: {name} must be a floating-point torch.Tensor, got {got}")
    if x.dim() < 1:
        raise ValueError("linear: x must be at least 1-D (..., in_features), got a 0-D tensor")
    if weight.dim() != 2 or weight.shape[1] != x.shape[-1]:
        raise ValueError(
            f"linear: weight must be (out_features, in_features) with in_features = "
            f"x.shape[-1] = {x.shape[-1]}, got shape {tuple(weight.shape)}"
        )
    out = x @ weight.T  # (N, *, out_features)
    if bias is not None:
        if bias.shape != (weight.shape[0],):
            raise ValueError(
                f"linear: bias must have shape (out_features,) = ({weight.shape[0]},), "
                f"got {tuple(bias.shape)}"
            )
        out = out + bias
    return out


def flatten(x: torch.Tensor, start_dim: int = 1, end_dim: int = -1) -> torch.Tensor:
    """Merge dimensions ``start_dim..end_dim`` (inclusive) into one, as
    ``torch.flatten(x, start_dim, end_dim)``, by a ``reshape``.

    The default ``start_dim=1`` keeps the batch dimension, as ``torch.nn.Flatten`` does
    (``torch.flatten`` itself defaults to 0).

    Args:
        x: a tensor of at least ``start_dim + 1`` dimensions.
        start_dim: first dimension to merge. Default 1.
        end_dim: last dimension to merge. Default -1.

    Returns:
        e.g. ``(N, C*H*W)`` for an ``(N, C, H, W)`` input with the defaults.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"flatten: x must be a torch.Tensor, got {type(x).__name__}")
    size = max(x.dim(), 1)
    dims = {}
    for name, d in (("start_dim", start_dim), ("end_dim", end_dim)):
        if isinstance(d, bool) or not isinstance(d, int):
            raise TypeError(f"flatten: {name} must be an int, got {type(d).__name__} {d!r}")
        if not -size <= d < size:
            raise ValueError(
                f"flatten: {name} must be in [{-size}, {size - 1}] for a {x.dim()}-D x, got {d}"
            )
        dims[name] = d % size
    start, end = dims["start_dim"], dims["end_dim"]
    if start > end:
        raise ValueError(
            f"flatten: start_dim must not come after end_dim, got start_dim={start_dim}, "
            f"end_dim={end_dim} for a {x.dim()}-D x"
        )
    if x.dim() == 0:
        return x.reshape(1)
    merged = math.prod(x.shape[start : end + 1])
    return x.reshape(*x.shape[:start], merged, *x.shape[end + 1 :])

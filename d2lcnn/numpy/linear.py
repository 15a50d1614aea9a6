"""The fully connected (affine) layer and flatten in NumPy, forward and backward, with
``torch.nn.functional.linear`` / ``torch.flatten`` semantics.

``linear`` uses PyTorch's weight layout ``(out_features, in_features)``, so
``out = x @ weight.T + bias``, and it acts on the last dimension of ``x``: any leading
dimensions are batch dimensions. ``flatten`` is what sits between the convolutional part
of a CNN and its classifier: ``(N, C, H, W) -> (N, C*H*W)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from d2lcnn.checks import check_dim_span
from d2lcnn.numpy._checks import check_array, check_dout

__all__ = [
    "LinearCache",
    "FlattenCache",
    "linear_forward",
    "linear_backward",
    "flatten_forward",
    "flatten_backward",
]


class LinearCache(NamedTuple):
    """What :func:`linear_backward` needs. ``x`` and ``weight`` are the caller's arrays."""

    x: np.ndarray  # (N, *, in_features)
    weight: np.ndarray  # (out_features, in_features)
    has_bias: bool


class FlattenCache(NamedTuple):
    x_shape: tuple[int, ...]


def linear_forward(
    input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None
) -> tuple[np.ndarray, LinearCache]:
    """Affine map of the last dimension, as ``torch.nn.functional.linear``:
    :math:`y = x W^\\top + b`.

    Args:
        input: ``(N, *, in_features)``, floating point (``*`` any number of extra dimensions,
            also none; a 1-D ``(in_features,)`` is one unbatched sample).
        weight: ``(out_features, in_features)``, ``input``'s dtype.
        bias: ``(out_features,)`` or ``None``. Default ``None``.

    Returns:
        ``(out, cache)``: ``out`` is ``(N, *, out_features)``.

    Raises:
        ValueError: if the shapes do not fit together.
        TypeError: if an argument is not a floating-point array or the dtypes differ.

    Example:
        >>> out, _ = linear_forward(np.ones((2, 3)), np.arange(6.0).reshape(2, 3), np.ones(2))
        >>> out
        array([[ 4., 13.],
               [ 4., 13.]])
    """
    fn = "linear_forward"
    check_array(input, "input", fn, min_ndim=1, layout="(..., in_features)")
    check_array(
        weight, "weight", fn, ndim=2, layout="(out_features, in_features)", dtype=input.dtype
    )
    if weight.shape[1] != input.shape[-1]:
        raise ValueError(
            f"{fn}: weight must have in_features = input.shape[-1] = {input.shape[-1]} columns, "
            f"got weight of shape {weight.shape}"
        )
    out = input @ weight.T  # (N, *, out_features)
    if bias is not None:
        check_array(
            bias, "bias", fn, dtype=input.dtype,
            shape=(weight.shape[0],), shape_formula="(out_features,)",
        )
        out = out + bias
    return out, LinearCache(input, weight, bias is not None)


def linear_backward(
    dout: np.ndarray, cache: LinearCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Backward of :func:`linear_forward`.

    With every batch dimension folded into one (``M`` rows):

    .. math::
        dx = dout\\, W, \\qquad dW = dout^\\top x, \\qquad db = \\sum_{rows} dout.

    Args:
        dout: upstream gradient, ``(N, *, out_features)``.
        cache: from :func:`linear_forward`.

    Returns:
        ``(dx, dweight, dbias)`` shaped like ``x``, ``weight`` and ``bias``; ``dbias`` is
        ``None`` when the forward had no bias.
    """
    x, weight, has_bias = cache
    out_shape = (*x.shape[:-1], weight.shape[0])
    dout = check_dout(dout, out_shape, "linear_backward")
    dx = dout @ weight  # (N, *, in_features)
    rows = dout.reshape(-1, weight.shape[0])  # (M, out_features)
    dweight = rows.T @ x.reshape(-1, weight.shape[1])  # (out_features, in_features)
    dbias = rows.sum(axis=0) if has_bias else None  # (out_features,)
    return dx, dweight, dbias


def flatten_forward(
    input: np.ndarray, *, start_dim: int = 1, end_dim: int = -1
) -> tuple[np.ndarray, FlattenCache]:
    """Merge dimensions ``start_dim..end_dim`` (inclusive) into one, as
    ``torch.flatten(x, start_dim, end_dim)``.

    The default ``start_dim=1`` keeps the batch dimension, as ``torch.nn.Flatten`` does
    (``torch.flatten`` itself defaults to 0).

    Args:
        input: any array of at least ``start_dim + 1`` dimensions.
        start_dim: first dimension to merge. Default 1.
        end_dim: last dimension to merge. Default -1.

    Returns:
        ``(out, cache)``: ``out`` is a view of ``input`` where possible, e.g. ``(N, C*H*W)`` for
        an ``(N, C, H, W)`` input with the defaults.

    Example:
        >>> flatten_forward(np.zeros((2, 3, 4, 5)))[0].shape
        (2, 60)
    """
    fn = "flatten_forward"
    check_array(input, "input", fn, floating=False)
    start, end = check_dim_span(start_dim, end_dim, input.ndim, fn)
    if input.ndim == 0:
        return input.reshape(1), FlattenCache(input.shape)
    merged = int(np.prod(input.shape[start : end + 1]))
    out = input.reshape(*input.shape[:start], merged, *input.shape[end + 1 :])
    return out, FlattenCache(input.shape)


def flatten_backward(dout: np.ndarray, cache: FlattenCache) -> np.ndarray:
    """Backward of :func:`flatten_forward`: reshape the gradient back to ``x``'s shape."""
    dout = np.asarray(dout)
    if dout.size != int(np.prod(cache.x_shape)):
        raise ValueError(
            f"flatten_backward: dout must have {int(np.prod(cache.x_shape))} elements "
            f"(the input's shape {cache.x_shape}), got shape {dout.shape}"
        )
    return dout.reshape(cache.x_shape)

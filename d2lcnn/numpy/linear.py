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


def _require_float_array(a, name: str, fn: str) -> None:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy array, got {type(a).__name__}")
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{fn}: {name} must be a floating-point array, got dtype {a.dtype}")


def linear_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None
) -> tuple[np.ndarray, LinearCache]:
    """Affine map of the last dimension, as ``torch.nn.functional.linear``:
    :math:`y = x W^\\top + b`.

    Args:
        x: ``(N, *, in_features)``, floating point (``*`` any number of extra dimensions,
            also none; a 1-D ``(in_features,)`` is one unbatched sample).
        weight: ``(out_features, in_features)``, ``x``'s dtype.
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
    _require_float_array(x, "x", fn)
    _require_float_array(weight, "weight", fn)
    if x.ndim < 1:
        raise ValueError(f"{fn}: x must be at least 1-D (..., in_features), got a 0-D array")
    if weight.ndim != 2:
        raise ValueError(
            f"{fn}: weight must be 2-D (out_features, in_features), got shape {weight.shape}"
        )
    if weight.shape[1] != x.shape[-1]:
        raise ValueError(
            f"{fn}: weight must have in_features = x.shape[-1] = {x.shape[-1]} columns, "
            f"got weight of shape {weight.shape}"
        )
    if weight.dtype != x.dtype:
        raise TypeError(f"{fn}: weight must have x's dtype {x.dtype}, got {weight.dtype}")
    out = x @ weight.T  # (N, *, out_features)
    if bias is not None:
        _require_float_array(bias, "bias", fn)
        if bias.shape != (weight.shape[0],):
            raise ValueError(
                f"{fn}: bias must have shape (out_features,) = ({weight.shape[0]},), "
                f"got {bias.shape}"
            )
        if bias.dtype != x.dtype:
            raise TypeError(f"{fn}: bias must have x's dtype {x.dtype}, got {bias.dtype}")
        out = out + bias
    return out, LinearCache(x, weight, bias is not None)


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
    dout = np.asarray(dout)
    if dout.shape != out_shape:
        raise ValueError(
            f"linear_backward: dout must have the forward output's shape {out_shape}, "
            f"got {dout.shape}"
        )
    dx = dout @ weight  # (N, *, in_features)
    rows = dout.reshape(-1, weight.shape[0])  # (M, out_features)
    dweight = rows.T @ x.reshape(-1, weight.shape[1])  # (out_features, in_features)
    dbias = rows.sum(axis=0) if has_bias else None  # (out_features,)
    return dx, dweight, dbias


def _normalize_dim(dim, ndim, name, fn):
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer):
        raise TypeError(f"{fn}: {name} must be an int, got {type(dim).__name__} {dim!r}")
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise ValueError(
            f"{fn}: {name} must be in [{-size}, {size - 1}] for a {ndim}-D x, got {dim}"
        )
    return int(dim) % size


def flatten_forward(
    x: np.ndarray, *, start_dim: int = 1, end_dim: int = -1
) -> tuple[np.ndarray, FlattenCache]:
    """Merge dimensions ``start_dim..end_dim`` (inclusive) into one, as
    ``torch.flatten(x, start_dim, end_dim)``.

    The default ``start_dim=1`` keeps the batch dimension, as ``torch.nn.Flatten`` does
    (``torch.flatten`` itself defaults to 0).

    Args:
        x: any array of at least ``start_dim + 1`` dimensions.
        start_dim: first dimension to merge. Default 1.
        end_dim: last dimension to merge. Default -1.

    Returns:
        ``(out, cache)``: ``out`` is a view of ``x`` where possible, e.g. ``(N, C*H*W)`` for
        an ``(N, C, H, W)`` input with the defaults.

    Example:
        >>> flatten_forward(np.zeros((2, 3, 4, 5)))[0].shape
        (2, 60)
    """
    fn = "flatten_forward"
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{fn}: x must be a numpy array, got {type(x).__name__}")
    start = _normalize_dim(start_dim, x.ndim, "start_dim", fn)
    end = _normalize_dim(end_dim, x.ndim, "end_dim", fn)
    if start > end:
        raise ValueError(
            f"{fn}: start_dim must not come after end_dim, got start_dim={start_dim}, "
            f"end_dim={end_dim} for a {x.ndim}-D x"
        )
    if x.ndim == 0:
        return x.reshape(1), FlattenCache(x.shape)
    merged = int(np.prod(x.shape[start : end + 1]))
    out = x.reshape(*x.shape[:start], merged, *x.shape[end + 1 :])
    return out, FlattenCache(x.shape)


def flatten_backward(dout: np.ndarray, cache: FlattenCache) -> np.ndarray:
    """Backward of :func:`flatten_forward`: reshape the gradient back to ``x``'s shape."""
    dout = np.asarray(dout)
    if dout.size != int(np.prod(cache.x_shape)):
        raise ValueError(
            f"flatten_backward: dout must have {int(np.prod(cache.x_shape))} elements "
            f"(x's shape {cache.x_shape}), got shape {dout.shape}"
        )
    return dout.reshape(cache.x_shape)

"""Resizing 4-D images like ``torch.nn.functional.interpolate`` (modes ``'nearest'`` and
``'bilinear'``), forward and backward, in NumPy.

Both modes are *separable*: each output row reads from one (nearest) or two (bilinear) input
rows, each output column from one or two input columns, with weights that depend only on the
row or the column. So the layer is two small tables per axis, computed once:

- ``index0, index1``: the input rows (columns) an output row (column) reads from;
- ``lambda0, lambda1``: their weights (``1, 0`` for nearest).

The forward is two gathers along the columns and then the rows. The backward is the transpose
of the same linear map: each axis' table is an ``(out, in)`` interpolation matrix ``A``, and
``dx = A_H^T dout A_W``, which adds up the gradient of every output that read a pixel.

The coordinate mapping is PyTorch's, arithmetic included (in the input's dtype, as PyTorch's
CPU kernels compute in float32 for float32 input). For output index ``o``, with ``scale`` =
``1 / scale_factor`` when a ``scale_factor`` is given (and not recomputed), else
``in / out``:

- nearest: ``src = min(floor(o * scale), in - 1)`` (in float32, as PyTorch's ``nearest_idx``);
- bilinear, ``align_corners=False``: ``src = max(scale * (o + 0.5) - 0.5, 0)`` (pixel centres
  aligned);
- bilinear, ``align_corners=True``: ``src = o * (in - 1) / (out - 1)`` (corner pixels
  aligned; ``scale_factor`` is then ignored for the mapping).

and bilinear reads ``floor(src)`` and the next pixel with weights ``1 - frac, frac``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from d2lcnn.geometry import interpolate_output_shape

__all__ = [
    "AxisWeights",
    "InterpolateCache",
    "interpolate_forward",
    "interpolate_backward",
    "upsample_nearest2d_forward",
    "upsample_bilinear2d_forward",
]

_MODES = ("nearest", "bilinear")


class AxisWeights(NamedTuple):
    """Where each output row (or column) reads from, and with what weight."""

    index0: np.ndarray  # (out,) int64
    index1: np.ndarray  # (out,) int64, == index0 for nearest
    lambda0: np.ndarray  # (out,) weight of index0, x's dtype
    lambda1: np.ndarray  # (out,) weight of index1, 0 for nearest


class InterpolateCache(NamedTuple):
    """What :func:`interpolate_backward` needs from the forward pass."""

    x_shape: tuple[int, int, int, int]  # (N, C, H, W)
    mode: str
    rows: AxisWeights  # H_out entries
    cols: AxisWeights  # W_out entries


def _nearest_axis(n_in, n_out, scale, dtype) -> AxisWeights:
    """``src = min(floor(o * scale), n_in - 1)``, computed in float32 like PyTorch."""
    o = np.arange(n_out)
    if n_out == n_in:
        idx = o  # PyTorch's shortcuts: a copy, whatever the scale_factor says ...
    elif n_out == 2 * n_in:
        idx = o >> 1  # ... and exact doubling
    else:
        s = np.float32(1.0 / scale) if scale is not None else np.float32(n_in) / np.float32(n_out)
        idx = np.minimum(np.floor(o.astype(np.float32) * s).astype(np.int64), n_in - 1)
    return AxisWeights(idx, idx, np.ones(n_out, dtype), np.zeros(n_out, dtype))


def _bilinear_axis(n_in, n_out, scale, align_corners, dtype) -> AxisWeights:
    """The two source pixels and weights of each output pixel, as PyTorch computes them
    (in ``dtype``, its "opmath" type for float32/float64)."""
    o = np.arange(n_out)
    if n_out == n_in:  # PyTorch copies (exactly) when the size does not change
        return AxisWeights(o, o, np.ones(n_out, dtype), np.zeros(n_out, dtype))
    one, half = dtype.type(1), dtype.type(0.5)
    if align_corners:
        ratio = dtype.type(n_in - 1) / dtype.type(n_out - 1) if n_out > 1 else dtype.type(0)
        src = ratio * o.astype(dtype)
    else:
        ratio = dtype.type(1.0 / scale) if scale is not None else dtype.type(n_in) / dtype.type(
            n_out
        )
        src = np.maximum(ratio * (o.astype(dtype) + half) - half, dtype.type(0))
    index0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    lambda1 = np.clip(src - index0.astype(dtype), 0, 1).astype(dtype)
    index1 = np.minimum(index0 + 1, n_in - 1)
    return AxisWeights(index0, index1, (one - lambda1).astype(dtype), lambda1)


def interpolate_forward(
    x,
    *,
    size=None,
    scale_factor=None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
) -> tuple[np.ndarray, InterpolateCache]:
    """Resize ``(N, C, H, W)`` images, as ``torch.nn.functional.interpolate``.

    Args:
        x: input, ``(N, C, H, W)``, float32 or float64.
        size: output size ``H_out`` or ``(H_out, W_out)``. Give this or ``scale_factor``.
        scale_factor: multiplier for the spatial size, a number or a pair:
            ``H_out = floor(H * scale_factor)``.
        mode: ``'nearest'`` (each output copies one input pixel) or ``'bilinear'`` (a weighted
            average of the 2x2 nearest pixels). Default ``'nearest'``.
        align_corners: bilinear only. True: the corner pixels of input and output are
            aligned (``src = o (in - 1) / (out - 1)``); False (``None`` means False): the
            pixel *areas* are aligned (``src = (o + 0.5) / scale - 0.5``). Must be None for
            nearest.
        recompute_scale_factor: if True, the mapping uses ``in / out`` instead of the given
            ``1 / scale_factor`` (they differ when ``H * scale_factor`` is not an integer).
            Default None, like False.

    Returns:
        ``(out, cache)``: ``out`` is ``(N, C, H_out, W_out)`` with ``x``'s dtype.

    Raises:
        ValueError: a non-4-D ``x``, an unknown ``mode``, ``align_corners`` with nearest, or
            bad ``size`` / ``scale_factor`` (see :func:`d2lcnn.geometry.interpolate_output_shape`).
        TypeError: a non-float ``x`` or non-numeric sizes.

    Example:
        >>> x = np.array([[[[1.0, 2.0]]]])
        >>> interpolate_forward(x, scale_factor=2, mode="bilinear")[0][0, 0]
        array([[1.  , 1.25, 1.75, 2.  ],
               [1.  , 1.25, 1.75, 2.  ]])
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy array, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got {x.ndim}-D shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x must be a floating-point array, got dtype {x.dtype}")
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError(
            f"align_corners can only be set with mode='bilinear', got align_corners="
            f"{align_corners!r} with mode='nearest'"
        )
    h, w = x.shape[2:]
    (h_out, w_out), (scale_h, scale_w) = interpolate_output_shape(
        (h, w), size=size, scale_factor=scale_factor,
        recompute_scale_factor=recompute_scale_factor,
    )
    if mode == "nearest":
        rows = _nearest_axis(h, h_out, scale_h, x.dtype)
        cols = _nearest_axis(w, w_out, scale_w, x.dtype)
        out = x[:, :, rows.index0[:, None], cols.index0[None, :]]  # (N, C, H_out, W_out)
    else:
        rows = _bilinear_axis(h, h_out, scale_h, bool(align_corners), x.dtype)
        cols = _bilinear_axis(w, w_out, scale_w, bool(align_corners), x.dtype)
        # Columns first, then rows: out = l0h * (l0w x00 + l1w x01) + l1h * (l0w x10 + ...),
        # the order of PyTorch's CPU kernel.
        tmp = x[..., cols.index0] * cols.lambda0 + x[..., cols.index1] * cols.lambda1
        out = (
            tmp[:, :, rows.index0, :] * rows.lambda0[:, None]
            + tmp[:, :, rows.index1, :] * rows.lambda1[:, None]
        )  # (N, C, H_out, W_out)
    return out, InterpolateCache(x.shape, mode, rows, cols)


def _matrix(axis: AxisWeights, n_in: int, dtype) -> np.ndarray:
    """The axis' ``(out, in)`` interpolation matrix: row ``o`` holds output ``o``'s weights."""
    a = np.zeros((len(axis.index0), n_in), dtype=dtype)
    o = np.arange(len(axis.index0))
    np.add.at(a, (o, axis.index0), axis.lambda0)  # add: index0 == index1 at the border
    np.add.at(a, (o, axis.index1), axis.lambda1)
    return a


def interpolate_backward(dout, cache: InterpolateCache) -> np.ndarray:
    """Backward pass of :func:`interpolate_forward`: ``dx = A_H^T dout A_W``.

    Each input pixel receives the gradient of every output that read it, times the weight it
    was read with (nearest: the sum over the outputs that copied it).

    Args:
        dout: upstream gradient, ``(N, C, H_out, W_out)``.
        cache: from :func:`interpolate_forward`.

    Returns:
        ``dx``, ``(N, C, H, W)``.

    Raises:
        ValueError: if ``dout`` does not have the forward output's shape.
    """
    n, c, h, w = cache.x_shape
    out_shape = (n, c, len(cache.rows.index0), len(cache.cols.index0))
    dout = np.asarray(dout)
    if dout.shape != out_shape:
        raise ValueError(f"dout must have the forward output's shape {out_shape}, got {dout.shape}")
    a_h = _matrix(cache.rows, h, dout.dtype)  # (H_out, H)
    a_w = _matrix(cache.cols, w, dout.dtype)  # (W_out, W)
    return a_h.T @ (dout @ a_w)  # (N, C, H, W)


def upsample_nearest2d_forward(x, *, size=None, scale_factor=None):
    """``interpolate_forward(x, size=..., scale_factor=..., mode='nearest')``."""
    return interpolate_forward(x, size=size, scale_factor=scale_factor, mode="nearest")


def upsample_bilinear2d_forward(x, *, size=None, scale_factor=None):
    """``interpolate_forward(..., mode='bilinear', align_corners=True)``, like the deprecated
    ``torch.nn.functional.upsample_bilinear``."""
    return interpolate_forward(
        x, size=size, scale_factor=scale_factor, mode="bilinear", align_corners=True
    )

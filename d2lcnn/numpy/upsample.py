"""Resizing 4-D images like ``torch.nn.functional.interpolate`` (modes ``'nearest'``,
``'bilinear'`` and ``'bicubic'``), forward and backward, in NumPy.

All three modes are *separable*: each output row is a weighted sum of a few input rows
(1 for nearest, 2 for bilinear, 4 for bicubic: the "taps"), each output column of a few input
columns, with weights that depend only on the row or the column. So the layer is one small
table per axis, computed once:

- ``index``, ``(out, taps)``: the input rows (columns) an output row (column) reads from;
- ``weight``, ``(out, taps)``: their weights (``1`` for nearest).

The forward is a weighted gather along the columns and then along the rows. The backward is
the transpose of the same linear map: each axis' table is an ``(out, in)`` interpolation matrix
``A``, and ``dx = A_H^T dout A_W``, which adds up the gradient of every output that read a pixel.

The coordinate mapping is PyTorch's, arithmetic included (in the input's dtype, as PyTorch's
CPU kernels compute in float32 for float32 input). For output index ``o``, with ``scale`` =
``1 / scale_factor`` when a ``scale_factor`` is given (and not recomputed), else
``in / out``:

- nearest: ``src = min(floor(o * scale), in - 1)`` (in float32, as PyTorch's ``nearest_idx``);
- bilinear and bicubic, ``align_corners=False``: ``src = scale * (o + 0.5) - 0.5`` (pixel
  centres aligned), clamped to ``>= 0`` for bilinear only;
- bilinear and bicubic, ``align_corners=True``: ``src = o * (in - 1) / (out - 1)`` (corner
  pixels aligned; ``scale_factor`` is then ignored for the mapping).

Then, with ``i = floor(src)`` and ``t = src - i`` (PyTorch floors in float32 even for float64
input, and so do we):

- bilinear reads pixels ``i, i + 1`` with weights ``1 - t, t``;
- bicubic reads pixels ``i - 1, i, i + 1, i + 2`` with weights ``W(t + 1), W(t), W(1 - t),
  W(2 - t)``, where ``W`` is Keys' cubic convolution kernel with ``a = -0.75`` (PyTorch's and
  OpenCV's choice):

  .. math::
      W(x) = \\begin{cases}
        (a + 2)|x|^3 - (a + 3)|x|^2 + 1 & |x| \\le 1 \\\\
        a|x|^3 - 5a|x|^2 + 8a|x| - 4a & 1 < |x| < 2 \\\\
        0 & \\text{otherwise.}
      \\end{cases}

Pixels outside the image are read from the nearest border pixel (the index is clamped to
``[0, in - 1]``), so the border pixel's weight is the sum of the weights that fell outside.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from d2lcnn.checks import check_interpolate_mode
from d2lcnn.geometry import interpolate_output_shape
from d2lcnn.numpy._checks import check_array, check_dout

__all__ = [
    "AxisWeights",
    "InterpolateCache",
    "interpolate_forward",
    "interpolate_backward",
]
# upsample_nearest2d_forward / upsample_bilinear2d_forward below are shorthands named after
# PyTorch's deprecated F.upsample_*; importable from this module, not part of the package API.

_CUBIC_A = -0.75  # Keys' free parameter, as PyTorch (Keys himself proposed -0.5)


class AxisWeights(NamedTuple):
    """Where each output row (or column) reads from, and with what weights: output ``o`` is
    ``sum_k weight[o, k] * input[index[o, k]]``."""

    index: np.ndarray  # (out, taps) int64; taps = 1 (nearest), 2 (bilinear), 4 (bicubic)
    weight: np.ndarray  # (out, taps), the input's dtype


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
    return AxisWeights(idx[:, None], np.ones((n_out, 1), dtype))


def _source_coordinate(n_in, n_out, scale, align_corners, dtype) -> np.ndarray:
    """``src`` of each output pixel (unclamped), in ``dtype`` arithmetic like PyTorch's
    ``area_pixel_compute_source_index``."""
    o = np.arange(n_out).astype(dtype)
    if align_corners:
        ratio = dtype.type(n_in - 1) / dtype.type(n_out - 1) if n_out > 1 else dtype.type(0)
        return ratio * o
    if scale is not None:
        ratio = dtype.type(1.0 / scale)
    else:
        ratio = dtype.type(n_in) / dtype.type(n_out)
    half = dtype.type(0.5)
    return ratio * (o + half) - half


def _floor_and_fraction(src, n_in, dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(i, t)``: ``i = min(floor(src), n_in - 1)`` and ``t = clip(src - i, 0, 1)``.

    PyTorch floors with C's ``floorf``, so in float32 even for float64 input: a float64 ``src``
    within float32 rounding below an integer is read as that integer (with ``t = 0``).
    """
    index = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), n_in - 1)
    return index, np.clip(src - index.astype(dtype), 0, 1).astype(dtype)


def _bilinear_axis(n_in, n_out, scale, align_corners, dtype) -> AxisWeights:
    """The two source pixels and weights of each output pixel, as PyTorch computes them
    (in ``dtype``, its "opmath" type for float32/float64)."""
    if n_out == n_in:  # PyTorch copies (exactly) when the size does not change
        return _nearest_axis(n_in, n_out, None, dtype)
    src = np.maximum(_source_coordinate(n_in, n_out, scale, align_corners, dtype), 0)
    index0, lambda1 = _floor_and_fraction(src, n_in, dtype)
    index1 = np.minimum(index0 + 1, n_in - 1)
    return AxisWeights(np.stack([index0, index1], axis=1), np.stack([1 - lambda1, lambda1], axis=1))


def _cubic_near(x, a):
    """Keys' kernel ``W(x)`` for ``|x| <= 1`` (Horner form, PyTorch's ``cubic_convolution1``)."""
    return ((a + 2) * x - (a + 3)) * x * x + 1


def _cubic_far(x, a):
    """Keys' kernel ``W(x)`` for ``1 < |x| < 2`` (PyTorch's ``cubic_convolution2``)."""
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a


def _bicubic_axis(n_in, n_out, scale, align_corners, dtype) -> AxisWeights:
    """The four source pixels ``i - 1 .. i + 2`` (clamped to the image) and the cubic weights
    of each output pixel, as PyTorch computes them. No shortcut when the size is unchanged:
    with a ``scale_factor`` other than 1 PyTorch's forward still interpolates."""
    src = _source_coordinate(n_in, n_out, scale, align_corners, dtype)  # may be < 0
    index, t = _floor_and_fraction(src, n_in, dtype)
    a, one = dtype.type(_CUBIC_A), dtype.type(1)
    # W at the distances from src to pixels i - 1, i, i + 1, i + 2; they sum to 1.
    weight = np.stack(
        [_cubic_far(t + one, a), _cubic_near(t, a), _cubic_near(one - t, a),
         _cubic_far((one - t) + one, a)],
        axis=1,
    )  # (n_out, 4)
    taps = np.clip(index[:, None] + np.arange(-1, 3), 0, n_in - 1)  # (n_out, 4), border repeated
    return AxisWeights(taps, weight.astype(dtype))


def _resample(input, rows: AxisWeights, cols: AxisWeights) -> np.ndarray:
    """Weighted gathers along the columns, then the rows; each sum runs over the taps left to
    right, the order of PyTorch's CPU kernel."""
    tmp = input[..., cols.index[:, 0]] * cols.weight[:, 0]  # (N, C, H, W_out)
    for k in range(1, cols.index.shape[1]):
        tmp = tmp + input[..., cols.index[:, k]] * cols.weight[:, k]
    out = tmp[:, :, rows.index[:, 0], :] * rows.weight[:, 0, None]  # (N, C, H_out, W_out)
    for k in range(1, rows.index.shape[1]):
        out = out + tmp[:, :, rows.index[:, k], :] * rows.weight[:, k, None]
    return out


def interpolate_forward(
    input,
    *,
    size=None,
    scale_factor=None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
) -> tuple[np.ndarray, InterpolateCache]:
    """Resize ``(N, C, H, W)`` images, as ``torch.nn.functional.interpolate``.

    Args:
        input: ``(N, C, H, W)``, float32 or float64.
        size: output size ``H_out`` or ``(H_out, W_out)``. Give this or ``scale_factor``.
        scale_factor: multiplier for the spatial size, a number or a pair:
            ``H_out = floor(H * scale_factor)``.
        mode: ``'nearest'`` (each output copies one input pixel), ``'bilinear'`` (a weighted
            average of the 2x2 nearest pixels) or ``'bicubic'`` (a weighted sum of the 4x4
            nearest pixels, Keys' cubic kernel with ``a = -0.75``; the border pixels repeat
            outward). Default ``'nearest'``. Bicubic weights can be negative, so, unlike the
            other two modes, its output is *not* bounded by the input's range: it overshoots
            at edges (``[0, 0, 1, 1]`` doubled dips to ``-0.105`` and peaks at ``1.105``).
        align_corners: bilinear and bicubic only. True: the corner pixels of input and output
            are aligned (``src = o (in - 1) / (out - 1)``); False (``None`` means False): the
            pixel *areas* are aligned (``src = (o + 0.5) / scale - 0.5``). Must be None for
            nearest.
        recompute_scale_factor: if True, the mapping uses ``in / out`` instead of the given
            ``1 / scale_factor`` (they differ when ``H * scale_factor`` is not an integer).
            Default None, like False.

    Returns:
        ``(out, cache)``: ``out`` is ``(N, C, H_out, W_out)`` with ``input``'s dtype.

    Raises:
        ValueError: a non-4-D ``input``, an unknown ``mode``, ``align_corners`` with nearest, or
            bad ``size`` / ``scale_factor`` (see :func:`d2lcnn.geometry.interpolate_output_shape`).
        TypeError: a non-float ``input`` or non-numeric sizes.

    Example:
        >>> x = np.array([[[[1.0, 2.0]]]])
        >>> interpolate_forward(x, scale_factor=2, mode="bilinear")[0][0, 0]
        array([[1.  , 1.25, 1.75, 2.  ],
               [1.  , 1.25, 1.75, 2.  ]])
        >>> interpolate_forward(x, size=(1, 4), mode="bicubic")[0][0, 0]  # beyond [1, 2]
        array([[0.89453125, 1.2265625 , 1.7734375 , 2.10546875]])
    """
    fn = "interpolate_forward"
    check_array(input, "input", fn, ndim=4, layout="(N, C, H, W)")
    check_interpolate_mode(mode, align_corners, fn)
    h, w = input.shape[2:]
    (h_out, w_out), (scale_h, scale_w) = interpolate_output_shape(
        (h, w), size=size, scale_factor=scale_factor,
        recompute_scale_factor=recompute_scale_factor,
    )
    if mode == "nearest":
        rows = _nearest_axis(h, h_out, scale_h, input.dtype)
        cols = _nearest_axis(w, w_out, scale_w, input.dtype)
        out = input[:, :, rows.index, cols.index[:, 0]]  # (N, C, H_out, W_out): plain copies
    else:
        axis = _bilinear_axis if mode == "bilinear" else _bicubic_axis
        rows = axis(h, h_out, scale_h, bool(align_corners), input.dtype)
        cols = axis(w, w_out, scale_w, bool(align_corners), input.dtype)
        out = _resample(input, rows, cols)  # (N, C, H_out, W_out)
    return out, InterpolateCache(input.shape, mode, rows, cols)


def _matrix(axis: AxisWeights, n_in: int, dtype) -> np.ndarray:
    """The axis' ``(out, in)`` interpolation matrix: row ``o`` holds output ``o``'s weights."""
    n_out = axis.index.shape[0]
    a = np.zeros((n_out, n_in), dtype=dtype)
    o = np.arange(n_out)[:, None]  # broadcast against (out, taps)
    np.add.at(a, (o, axis.index), axis.weight)  # add: clamped taps repeat a border pixel
    return a


def interpolate_backward(dout, cache: InterpolateCache) -> np.ndarray:
    """Backward pass of :func:`interpolate_forward`: ``dx = A_H^T dout A_W``.

    Each input pixel receives the gradient of every output that read it, times the weight it
    was read with (nearest: the sum over the outputs that copied it).

    This is the exact gradient of the forward in every case. PyTorch's CPU bicubic backward
    differs in one: when neither spatial size changes it returns ``dout`` unchanged, even when
    a ``scale_factor`` other than 1 (e.g. ``1.2`` on 3 rows) made its forward interpolate (on
    CUDA its bicubic forward copies then too; we follow the CPU forward).

    Args:
        dout: upstream gradient, ``(N, C, H_out, W_out)``.
        cache: from :func:`interpolate_forward`.

    Returns:
        ``dx``, ``(N, C, H, W)``.

    Raises:
        ValueError: if ``dout`` does not have the forward output's shape.
    """
    n, c, h, w = cache.x_shape
    out_shape = (n, c, cache.rows.index.shape[0], cache.cols.index.shape[0])
    dout = check_dout(dout, out_shape, "interpolate_backward")
    a_h = _matrix(cache.rows, h, dout.dtype)  # (H_out, H)
    a_w = _matrix(cache.cols, w, dout.dtype)  # (W_out, W)
    return a_h.T @ (dout @ a_w)  # (N, C, H, W)


def upsample_nearest2d_forward(input, *, size=None, scale_factor=None):
    """``interpolate_forward(x, size=..., scale_factor=..., mode='nearest')``."""
    return interpolate_forward(input, size=size, scale_factor=scale_factor, mode="nearest")


def upsample_bilinear2d_forward(input, *, size=None, scale_factor=None):
    """``interpolate_forward(..., mode='bilinear', align_corners=True)``, like the deprecated
    ``torch.nn.functional.upsample_bilinear``."""
    return interpolate_forward(
        input, size=size, scale_factor=scale_factor, mode="bilinear", align_corners=True
    )

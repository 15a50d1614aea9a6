"""2-D adaptive average pooling in NumPy, forward and backward, as
``torch.nn.functional.adaptive_avg_pool2d``: the caller chooses the *output* size and the
windows adapt to it. ``output_size=1`` is global average pooling (ResNet's last layer).

Output row ``i`` of ``H_out`` averages input rows ``[start_i, end_i)`` with

.. math::
    \\text{start}_i = \\left\\lfloor \\frac{i H}{H_{out}} \\right\\rfloor, \\qquad
    \\text{end}_i = \\left\\lceil \\frac{(i + 1) H}{H_{out}} \\right\\rceil,

so the windows cover the input, may overlap by one row, and differ in size by at most one;
likewise for columns. A window is a product of a row range and a column range, so the window
sums are separable: with the 0/1 *membership matrices* ``M_H`` (``(H_out, H)``, row ``i`` is 1
on ``[start_i, end_i)``) and ``M_W``,

.. math::
    \\text{out} = \\frac{M_H \\, x \\, M_W^\\top}{|h\\text{-window}| \\, |w\\text{-window}|},
    \\qquad dx = M_H^\\top \\frac{dout}{|h\\text{-window}| \\, |w\\text{-window}|} M_W.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from d2lcnn.checks import check_size_pair
from d2lcnn.numpy._checks import check_array, check_dout

__all__ = [
    "AdaptiveAvgPool2dCache",
    "adaptive_pool_windows",
    "adaptive_avg_pool2d_forward",
    "adaptive_avg_pool2d_backward",
]


class AdaptiveAvgPool2dCache(NamedTuple):
    """What :func:`adaptive_avg_pool2d_backward` needs from the forward pass."""

    x_shape: tuple[int, int, int, int]  # (N, C, H, W)
    rows: np.ndarray  # (H_out, H) 0/1 membership of each input row in each output row
    cols: np.ndarray  # (W_out, W)
    divisor: np.ndarray  # (H_out, W_out) window sizes


def adaptive_pool_windows(size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(start, end)`` of PyTorch's adaptive windows along one axis, each ``(out_size,)``.

    ``start = floor(i * size / out_size)``, ``end = ceil((i + 1) * size / out_size)``, in
    exact integer arithmetic.

    Example:
        >>> adaptive_pool_windows(5, 3)
        (array([0, 1, 3]), array([2, 4, 5]))
    """
    i = np.arange(out_size)
    start = (i * size) // out_size
    end = -((-(i + 1) * size) // out_size)  # ceil division
    return start, end


def _membership(size, out_size, dtype):
    """``(out_size, size)``: 1 where input index ``j`` is in output window ``i``."""
    start, end = adaptive_pool_windows(size, out_size)
    j = np.arange(size)
    m = (j >= start[:, None]) & (j < end[:, None])
    return m.astype(dtype), (end - start)


def adaptive_avg_pool2d_forward(input, *, output_size) -> tuple[np.ndarray, AdaptiveAvgPool2dCache]:
    """2-D adaptive average pooling over ``(N, C, H, W)``, as
    ``torch.nn.functional.adaptive_avg_pool2d``.

    Args:
        input: ``(N, C, H, W)``, floating point.
        output_size: ``H_out`` or ``(H_out, W_out)``; a ``None`` entry keeps that input size.
            ``1`` is global average pooling.

    Returns:
        ``(out, cache)``: ``out`` is ``(N, C, H_out, W_out)`` with ``input``'s dtype.

    Shape:
        Window ``i`` along ``H`` is ``[floor(i H / H_out), ceil((i + 1) H / H_out))``; when
        ``H`` is a multiple of ``H_out`` this is ordinary pooling with kernel = stride =
        ``H / H_out``.

    Raises:
        ValueError: a non-4-D ``input`` or an ``output_size`` below 1.
        TypeError: a non-float ``input`` or a non-int ``output_size``.

    Example:
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> adaptive_avg_pool2d_forward(x, output_size=1)[0][0, 0]
        array([[7.5]])
    """
    fn = "adaptive_avg_pool2d_forward"
    check_array(input, "input", fn, ndim=4, layout="(N, C, H, W)")
    h, w = input.shape[2:]
    h_out, w_out = check_size_pair(output_size, "output_size", fn, default=(h, w))
    rows, len_h = _membership(h, h_out, input.dtype)  # (H_out, H), (H_out,)
    cols, len_w = _membership(w, w_out, input.dtype)  # (W_out, W), (W_out,)
    divisor = np.outer(len_h, len_w).astype(input.dtype)  # (H_out, W_out)
    sums = rows @ input @ cols.T  # (N, C, H_out, W_out): window sums
    return sums / divisor, AdaptiveAvgPool2dCache(input.shape, rows, cols, divisor)


def adaptive_avg_pool2d_backward(dout, cache: AdaptiveAvgPool2dCache) -> np.ndarray:
    """Backward pass of :func:`adaptive_avg_pool2d_forward`.

    Each window's ``dout / window size`` goes to every element of the window; an element in
    two overlapping windows receives both.

    Args:
        dout: upstream gradient, ``(N, C, H_out, W_out)``.
        cache: from :func:`adaptive_avg_pool2d_forward`.

    Returns:
        ``dx``, ``(N, C, H, W)``.

    Raises:
        ValueError: if ``dout`` does not have the forward output's shape.
    """
    out_shape = (*cache.x_shape[:2], *cache.divisor.shape)
    dout = check_dout(dout, out_shape, "adaptive_avg_pool2d_backward")
    return cache.rows.T @ (dout / cache.divisor) @ cache.cols  # (N, C, H, W)

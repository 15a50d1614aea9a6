"""2-D max and average pooling in NumPy, forward and backward, with ``torch.nn.functional``
semantics (NCHW).

Both poolings are computed the same way: instead of materialising every window, loop over the
``kH * kW`` positions *inside* a window. For the tap ``(i, j)`` the strided slice

    xp[:, :, i*dH : i*dH + sH*(H_out-1) + 1 : sH,  j*dW : j*dW + sW*(W_out-1) + 1 : sW]

holds that tap of every window at once, shaped ``(N, C, H_out, W_out)``. Max pooling keeps a
running ``np.maximum`` over the taps, and its backward finds which tap won each window (when
the windows tile the input, stride == kernel, the forward records the winner on the way);
average pooling sums the taps (separably: the kH rows, then the kW columns). The backward
passes add gradients back through the same slices, so overlapping windows accumulate correctly.
This is a handful of whole-array operations for a small kernel (four for 2x2) and avoids the
slow ``reshape(...).max(axis=...)`` over a window view.

Max pooling can also return where each maximum came from (``return_indices=True``), the
positions :func:`d2lcnn.numpy.unpool.max_unpool2d_forward` puts the values back to.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from d2lcnn.checks import check_int
from d2lcnn.geometry import pair, pool2d_output_shape
from d2lcnn.numpy._checks import check_array, check_dout

__all__ = [
    "MaxPool2dCache",
    "AvgPool2dCache",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
]


class MaxPool2dCache(NamedTuple):
    """What :func:`max_pool2d_backward` needs from the forward pass."""

    x_shape: tuple[int, int, int, int]  # (N, C, H, W)
    x_padded: np.ndarray  # (N, C, H_pad, W_pad), -inf padded; x itself when no padding
    out: np.ndarray | None  # (N, C, H_out, W_out), private copy of the output; None if tiling
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    # (N, C, H_out, W_out): the winning tap of each window, found by the forward pass when the
    # windows tile the input (see `_tiles`) or when it returned the indices; None otherwise,
    # and the backward finds it.
    argmax: np.ndarray | None = None


class AvgPool2dCache(NamedTuple):
    """What :func:`avg_pool2d_backward` needs from the forward pass."""

    x_shape: tuple[int, int, int, int]  # (N, C, H, W)
    padded_shape: tuple[int, int, int, int]  # (N, C, H_pad, W_pad), incl. ceil_mode overhang
    divisor: np.ndarray  # (H_out, W_out): what each window's sum is divided by
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


# --------------------------------------------------------------------------- shared helpers


def _geometry(x_shape, kernel_size, stride, padding, dilation, ceil_mode):
    """Normalize the hyperparameters and compute the output and padded sizes.

    The padded array must reach the last tap of the last window. Without ``ceil_mode`` that
    is at most ``H + 2P``; with it, the last window may hang past the bottom padding, and
    those positions are padded too (with the value that never wins: -inf or 0).
    """
    k = pair(kernel_size, "kernel_size", minimum=1)
    s = k if stride is None else pair(stride, "stride", minimum=1)
    p = pair(padding, "padding", minimum=0)
    d = pair(dilation, "dilation", minimum=1)
    n, c, h, w = x_shape
    h_out, w_out = pool2d_output_shape(
        (h, w), k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode
    )
    # rows needed = start of the last window + its dilated span
    h_pad = max(h + 2 * p[0], (h_out - 1) * s[0] + d[0] * (k[0] - 1) + 1)
    w_pad = max(w + 2 * p[1], (w_out - 1) * s[1] + d[1] * (k[1] - 1) + 1)
    return k, s, p, d, (h_out, w_out), (n, c, h_pad, w_pad)


def _pad(x, padded_shape, padding, value):
    if padded_shape == x.shape:
        return x
    n, c, h, w = x.shape
    xp = np.full(padded_shape, value, dtype=x.dtype)  # (N, C, H_pad, W_pad)
    xp[:, :, padding[0] : padding[0] + h, padding[1] : padding[1] + w] = x
    return xp


def _tap(xp, i, j, s, d, out_hw):
    """View of tap ``(i, j)`` of every window: ``(N, C, H_out, W_out)``, no copy."""
    r0, c0 = i * d[0], j * d[1]
    return xp[
        :,
        :,
        r0 : r0 + s[0] * (out_hw[0] - 1) + 1 : s[0],
        c0 : c0 + s[1] * (out_hw[1] - 1) + 1 : s[1],
    ]


def _unpad(dxp, x_shape, padding):
    if dxp.shape == x_shape:
        return dxp
    h, w = x_shape[2:]
    return dxp[:, :, padding[0] : padding[0] + h, padding[1] : padding[1] + w].copy()


# --------------------------------------------------------------------------- max pooling


def max_pool2d_forward(
    input: np.ndarray,
    *,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> tuple[np.ndarray | tuple[np.ndarray, np.ndarray], MaxPool2dCache]:
    """2-D max pooling over an ``(N, C, H, W)`` input, as ``torch.nn.functional.max_pool2d``.

    Each output is the maximum of a ``kH x kW`` window (taps ``dilation`` apart). Padding is
    implicit ``-inf``, so it never wins. When the windows tile the input (stride equal to
    the kernel, no padding or dilation) the forward pass also records which element won each
    window; otherwise it only takes maxima and the backward pass works out the winners (see
    :func:`max_pool2d_backward`), unless ``return_indices`` asks for them now.

    The indices are those of ``F.max_pool2d(..., return_indices=True)``: the flat position
    ``h * W + w`` of each window's maximum in its ``(n, c)`` plane of the *unpadded* input.
    Ties go to the first maximum in row-major window order, a window holding NaNs to its last
    NaN, and a window whose elements are all ``-inf`` to its first element inside the input,
    as PyTorch does on the CPU.

    Args:
        input: ``(N, C, H, W)``, floating point.
        kernel_size: window size ``K`` or ``(kH, kW)``.
        stride: step between windows ``S`` or ``(sH, sW)``. Default: ``kernel_size``.
        padding: implicit ``-inf`` padding ``P`` on each side, at most ``kernel_size / 2``.
            Default 0.
        dilation: spacing ``D`` between the taps of a window. Default 1.
        ceil_mode: round the output size up instead of down, so a last partial window
            (that starts inside the input or the left padding) is kept. Default False.
        return_indices: also return the position of each maximum. Default False.

    Returns:
        ``(out, cache)``, or ``((out, indices), cache)`` with ``return_indices``: ``out`` is
        ``(N, C, H_out, W_out)`` with ``input``'s dtype, ``indices`` the same shape in int64;
        ``cache`` is a :class:`MaxPool2dCache` for :func:`max_pool2d_backward`.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})`
        - Output: :math:`(N, C, H_{out}, W_{out})`, where

          .. math::
              H_{out} = \\left\\lfloor \\frac{H_{in} + 2P - D(K - 1) - 1}{S} \\right\\rfloor + 1

          (``ceil`` instead of ``floor`` with ``ceil_mode``), and likewise for ``W_out``.

    Raises:
        ValueError: if ``input`` is not 4-D, or the geometry is invalid (see
            :func:`d2lcnn.geometry.pool2d_output_shape`).
        TypeError: if ``input`` is not a floating-point array or an argument is not an int/pair.

    Example:
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> out, cache = max_pool2d_forward(x, kernel_size=2)
        >>> out[0, 0]
        array([[ 5.,  7.],
               [13., 15.]])
        >>> (out, indices), cache = max_pool2d_forward(x, kernel_size=2, return_indices=True)
        >>> indices[0, 0]
        array([[ 5,  7],
               [13, 15]])
    """
    check_array(input, "input", "max_pool2d_forward", ndim=4, layout="(N, C, H, W)")
    k, s, p, d, out_hw, padded_shape = _geometry(
        input.shape, kernel_size, stride, padding, dilation, ceil_mode
    )
    if _tiles(input.shape, k, s, p, d, padded_shape):
        out, argmax = _max_and_argmax_of_tiles(input, k)  # (N, C, H_out, W_out) each
        cache = MaxPool2dCache(input.shape, input, None, k, s, p, d, argmax)
    else:
        xp = _pad(input, padded_shape, p, -np.inf)  # (N, C, H_pad, W_pad)
        out = _tap(xp, 0, 0, s, d, out_hw).copy()  # (N, C, H_out, W_out): running maximum
        for t in range(1, k[0] * k[1]):
            np.maximum(out, _tap(xp, *divmod(t, k[1]), s, d, out_hw), out=out)  # NaN propagates
        # The backward finds the winners by comparing with `out`: cache a copy, so that a
        # caller modifying the returned array in place (an in-place ReLU, say) cannot break it.
        cache = MaxPool2dCache(input.shape, xp, out.copy(), k, s, p, d)
        if return_indices:  # the winners are needed now: keep them for the backward too
            cache = cache._replace(argmax=_window_argmax(cache))
    if not return_indices:
        return out, cache
    return (out, _flat_indices(cache.argmax, input.shape[3], k, s, p, d)), cache


def _flat_indices(argmax, width, k, s, p, d) -> np.ndarray:
    """Position ``h * W + w`` in the unpadded input of each window's winning tap.

    Window ``(oh, ow)`` starts at row ``oh*sH - pH`` and column ``ow*sW - pW``; its tap
    ``t = i*kW + j`` lies ``i*dH`` rows and ``j*dW`` columns further.
    """
    h_out, w_out = argmax.shape[2:]
    i, j = np.divmod(argmax.astype(np.int64), k[1])  # (N, C, H_out, W_out) each
    rows = (np.arange(h_out) * s[0] - p[0])[:, None] + i * d[0]  # (N, C, H_out, W_out)
    cols = np.arange(w_out) * s[1] - p[1] + j * d[1]  # (N, C, H_out, W_out)
    return rows * width + cols


def _first_tap_inside(hw, k, s, p, d, out_hw) -> np.ndarray:
    """``(H_out, W_out)``: the first tap ``t = i*kW + j`` of each window inside the input.

    A tap is inside when its row and its column are, so the first one pairs each axis's
    first tap inside. (A window lying wholly in the padding gets tap 0; see
    ``every_window_touches_input`` in the tests.)
    """
    first = []
    for size, kk, ss, pp, dd, o in zip(hw, k, s, p, d, out_hw, strict=True):
        pos = (np.arange(o) * ss - pp)[:, None] + np.arange(kk) * dd  # (out, k): tap positions
        first.append(np.argmax((pos >= 0) & (pos < size), axis=1))  # first True
    return first[0][:, None] * k[1] + first[1]


def _tiles(x_shape, k, s, p, d, padded_shape) -> bool:
    """Whether the windows tile the input: stride == kernel, no padding, dilation or overhang.

    This is the common case (2x2 stride 2 in every classic CNN). There each input element
    belongs to at most one window, which allows a faster pair of passes: the forward finds the
    winning tap while it takes the maximum, and the backward *writes* each tap's gradient
    instead of adding it.
    """
    return k == s and d == (1, 1) and p == (0, 0) and padded_shape == tuple(x_shape)


def _max_and_argmax_of_tiles(x, k):
    """Maximum and winning tap ``t = i*kW + j`` of each window, when the windows tile ``x``.

    A running comparison over the taps in row-major order: a tap takes over only if it is
    strictly greater, so ties keep the first maximum, as PyTorch does on the CPU. NaN windows
    are then handed to their last NaN, as in :func:`_window_argmax`.

    Measured at (64, 64, 32, 32) float32, 2x2, 2 threads: forward ~7.5 ms instead of ~4.4 ms
    for the maxima alone, but the backward drops from ~40 ms (:func:`_window_argmax`, one
    ``putmask`` per tap, then one ``np.where`` per tap) to ~11 ms; forward + backward ~19 ms
    against torch's ~15 ms. A 2x2-only pairwise version (the maximum of each row's pair,
    then of the two rows) was no faster, so the general loop stays.
    """
    out_hw = (x.shape[2] // k[0], x.shape[3] // k[1])
    taps = [_tap(x, *divmod(t, k[1]), k, (1, 1), out_hw) for t in range(k[0] * k[1])]
    out = taps[0].copy()  # (N, C, H_out, W_out): running maximum
    argmax = np.zeros(out.shape, dtype=np.min_scalar_type(len(taps) - 1))
    for t in range(1, len(taps)):
        wins = taps[t] > out  # strict: a tie keeps the earlier tap
        # argmax = where(wins, t, argmax), in integer arithmetic: np.where and np.putmask
        # were 3-4x slower here. Unsigned wrap-around in `t - argmax` cancels out.
        argmax += wins * (argmax.dtype.type(t) - argmax)
        np.maximum(out, taps[t], out=out)  # NaN propagates
    nan = np.isnan(out)
    if nan.any():
        for t, tap in enumerate(taps):
            np.putmask(argmax, nan & np.isnan(tap), t)
    return out, argmax


def _window_argmax(cache: MaxPool2dCache) -> np.ndarray:
    """Index ``t = i*kW + j`` of the tap that won each window, ``(N, C, H_out, W_out)``.

    Ties go to the first winning tap in row-major window order, as PyTorch does on the CPU:
    visiting the taps last to first, each tap equal to the maximum overwrites the index, so
    the first one has the final word. A window holding NaNs has output NaN (which equals
    nothing); PyTorch gives it to the *last* NaN, so we do too. In a window whose elements
    are all ``-inf`` the ``-inf`` padding ties with them; PyTorch never visits the padding
    and keeps the first tap inside the input, so that one wins here too.
    """
    k, s, d, out = cache.kernel_size, cache.stride, cache.dilation, cache.out
    taps = [_tap(cache.x_padded, *divmod(t, k[1]), s, d, out.shape[2:]) for t in range(k[0] * k[1])]
    # The smallest unsigned type that holds kH*kW - 1 (uint8 up to 16x16 windows).
    argmax = np.zeros(out.shape, dtype=np.min_scalar_type(len(taps) - 1))
    for t in reversed(range(len(taps))):
        np.putmask(argmax, taps[t] == out, t)
    neginf = np.isneginf(out)
    if neginf.any():
        first = _first_tap_inside(cache.x_shape[2:], k, s, cache.padding, d, out.shape[2:])
        np.copyto(argmax, first.astype(argmax.dtype), where=neginf)  # (H_out, W_out) broadcast
    nan = np.isnan(out)
    if nan.any():
        for t, tap in enumerate(taps):
            np.putmask(argmax, nan & np.isnan(tap), t)
    return argmax


def max_pool2d_backward(dout: np.ndarray, cache: MaxPool2dCache) -> np.ndarray:
    """Backward pass of :func:`max_pool2d_forward`.

    The maximum is locally the identity on its winning element and constant in the others,
    so each upstream gradient flows, whole, to the argmax of its window; an input that wins
    several overlapping windows collects the sum. Ties go to the first maximum in row-major
    window order, as PyTorch does on the CPU (and a NaN window's gradient to its last NaN).

    Args:
        dout: upstream gradient, ``(N, C, H_out, W_out)``.
        cache: from :func:`max_pool2d_forward`.

    Returns:
        ``dx``, ``(N, C, H, W)``.

    Raises:
        ValueError: if ``dout`` does not have the forward output's shape.
    """
    if cache.out is None:  # the windows tile the input
        return _max_pool2d_backward_tiles(dout, cache)
    dout = check_dout(dout, cache.out.shape, "max_pool2d_backward")
    k, s, d = cache.kernel_size, cache.stride, cache.dilation
    out_hw = dout.shape[2:]
    argmax = _window_argmax(cache) if cache.argmax is None else cache.argmax  # (N,C,Ho,Wo)
    dxp = np.zeros(cache.x_padded.shape, dtype=dout.dtype)  # (N, C, H_pad, W_pad)
    for t in range(k[0] * k[1]):
        # Within one tap the windows hit distinct positions, so `+=` on the view is safe.
        _tap(dxp, *divmod(t, k[1]), s, d, out_hw)[...] += np.where(argmax == t, dout, 0)
    return _unpad(dxp, cache.x_shape, cache.padding)  # (N, C, H, W)


def _max_pool2d_backward_tiles(dout: np.ndarray, cache: MaxPool2dCache) -> np.ndarray:
    """:func:`max_pool2d_backward` when the windows tile the input and the forward pass
    cached the argmax: every element of ``dx`` is written by exactly one tap (or is left
    over by a floor-mode border and stays zero), so nothing is accumulated.

    ``dout * (argmax == t)`` written straight into the tap's view of ``dx`` was the fastest
    scatter measured, at (64, 64, 32, 32) float32 2x2: ~6 ms for the four taps, against
    ~18 ms with ``np.copyto(view, dout, where=argmax == t)`` and ~14 ms with ``np.where``
    (the whole backward is ~11 ms: first touching the new ``dx`` costs the rest). A product
    turns an infinite or NaN upstream gradient into NaN at the losers (``inf * 0``), where
    PyTorch leaves 0, so such a ``dout`` takes the exact ``np.copyto`` route.
    """
    argmax = cache.argmax  # (N, C, H_out, W_out)
    dout = check_dout(dout, argmax.shape, "max_pool2d_backward")
    k, (h, w) = cache.kernel_size, cache.x_shape[2:]
    out_hw = argmax.shape[2:]
    product = bool(np.isfinite(dout).all())
    # A floor-mode border (H or W not divisible) belongs to no window: it must start at 0.
    covered = out_hw[0] * k[0] == h and out_hw[1] * k[1] == w
    dx = (np.empty if product and covered else np.zeros)(cache.x_shape, dtype=dout.dtype)
    for t in range(k[0] * k[1]):
        view = _tap(dx, *divmod(t, k[1]), k, (1, 1), out_hw)  # (N, C, H_out, W_out)
        if product:
            np.multiply(dout, argmax == t, out=view)
        else:
            np.copyto(view, dout, where=argmax == t)
    return dx


# --------------------------------------------------------------------------- average pooling


def _window_counts(size, kernel, stride, padding, out_size, count_include_pad):
    """Per-axis divisor of each window, exactly as PyTorch's CPU kernel counts it.

    A window starts at ``o*S - P``. With ``count_include_pad`` it is clipped to the padded
    input ``[-P, size + P)`` (so a ceil_mode overhang is *not* counted); without, to the
    input ``[0, size)``. The 2-D divisor is the outer product of the two axes' counts.
    """
    start = np.arange(out_size) * stride - padding
    end = np.minimum(start + kernel, size + padding)
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def avg_pool2d_forward(
    input: np.ndarray,
    *,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> tuple[np.ndarray, AvgPool2dCache]:
    """2-D average pooling over an ``(N, C, H, W)`` input, as
    ``torch.nn.functional.avg_pool2d``.

    Each output is the sum of its ``kH x kW`` window (implicit zero padding) divided by

    - ``count_include_pad=True``: the number of window positions inside the *padded* input
      (``kH * kW`` except for a ``ceil_mode`` window hanging past the padding);
    - ``count_include_pad=False``: the number of window positions inside the input itself;
    - ``divisor_override``, when given, for every window (``count_include_pad`` is then
      ignored): ``divisor_override=1`` gives the window sums (sum pooling).

    Args:
        input: ``(N, C, H, W)``, floating point.
        kernel_size: window size ``K`` or ``(kH, kW)``.
        stride: step between windows ``S`` or ``(sH, sW)``. Default: ``kernel_size``.
        padding: implicit zero padding ``P`` on each side, at most ``kernel_size / 2``.
            Default 0.
        ceil_mode: round the output size up instead of down. Default False.
        count_include_pad: count the zero padding in the divisor. Default True.
        divisor_override: a positive int to divide every window's sum by. Default None
            (the window size, as counted above).

    Returns:
        ``(out, cache)``: ``out`` is ``(N, C, H_out, W_out)`` with ``input``'s dtype; ``cache`` is
        an :class:`AvgPool2dCache` for :func:`avg_pool2d_backward`.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})`
        - Output: :math:`(N, C, H_{out}, W_{out})`, where

          .. math::
              H_{out} = \\left\\lfloor \\frac{H_{in} + 2P - K}{S} \\right\\rfloor + 1

          (``ceil`` instead of ``floor`` with ``ceil_mode``), and likewise for ``W_out``.

    Raises:
        ValueError: if ``input`` is not 4-D, the geometry is invalid (see
            :func:`d2lcnn.geometry.pool2d_output_shape`), or ``divisor_override`` is not
            positive.
        TypeError: if ``input`` is not a floating-point array, an argument is not an int/pair,
            or ``divisor_override`` is not an int.

    Example:
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> out, cache = avg_pool2d_forward(x, kernel_size=2)
        >>> out[0, 0]
        array([[ 2.5,  4.5],
               [10.5, 12.5]])
        >>> avg_pool2d_forward(x, kernel_size=2, divisor_override=1)[0][0, 0]  # window sums
        array([[10., 18.],
               [42., 50.]])
    """
    check_array(input, "input", "avg_pool2d_forward", ndim=4, layout="(N, C, H, W)")
    if divisor_override is not None:  # PyTorch also divides by a negative int; not here
        check_int(divisor_override, "divisor_override", "avg_pool2d_forward", minimum=1)
    k, s, p, _, out_hw, padded_shape = _geometry(
        input.shape, kernel_size, stride, padding, 1, ceil_mode
    )
    h, w = input.shape[2:]
    if divisor_override is not None:
        divisor = np.full(out_hw, divisor_override, dtype=input.dtype)  # (H_out, W_out)
    else:
        count_h = _window_counts(h, k[0], s[0], p[0], out_hw[0], count_include_pad)  # (H_out,)
        count_w = _window_counts(w, k[1], s[1], p[1], out_hw[1], count_include_pad)  # (W_out,)
        divisor = np.outer(count_h, count_w).astype(input.dtype)  # (H_out, W_out)

    xp = _pad(input, padded_shape, p, 0)  # (N, C, H_pad, W_pad)
    # A window sum is separable: add the kH rows of each window, then the kW columns.
    row_sums = np.zeros((*input.shape[:2], out_hw[0], padded_shape[3]), dtype=input.dtype)
    for i in range(k[0]):
        row_sums += xp[:, :, i : i + s[0] * (out_hw[0] - 1) + 1 : s[0], :]  # (N,C,H_out,W_pad)
    out = np.zeros((*input.shape[:2], *out_hw), dtype=input.dtype)  # (N, C, H_out, W_out)
    for j in range(k[1]):
        out += row_sums[:, :, :, j : j + s[1] * (out_hw[1] - 1) + 1 : s[1]]
    out /= divisor
    return out, AvgPool2dCache(input.shape, padded_shape, divisor, k, s, p)


def avg_pool2d_backward(dout: np.ndarray, cache: AvgPool2dCache) -> np.ndarray:
    """Backward pass of :func:`avg_pool2d_forward`.

    Every element of a window receives ``dout / divisor`` of that window (its size as counted
    by the forward pass, or ``divisor_override``); overlapping windows add up. (Padding
    receives gradient too, and is then cropped away.)

    Args:
        dout: upstream gradient, ``(N, C, H_out, W_out)``.
        cache: from :func:`avg_pool2d_forward`.

    Returns:
        ``dx``, ``(N, C, H, W)``.

    Raises:
        ValueError: if ``dout`` does not have the forward output's shape.
    """
    n, c = cache.x_shape[:2]
    dout = check_dout(dout, (n, c, *cache.divisor.shape), "avg_pool2d_backward")
    k, s = cache.kernel_size, cache.stride
    h_out, w_out = cache.divisor.shape
    g = dout / cache.divisor  # (N, C, H_out, W_out): the share of each window element
    # Undo the separable sum in reverse: spread over the kW columns, then over the kH rows.
    d_row_sums = np.zeros((n, c, h_out, cache.padded_shape[3]), dtype=g.dtype)
    for j in range(k[1]):
        d_row_sums[:, :, :, j : j + s[1] * (w_out - 1) + 1 : s[1]] += g
    dxp = np.zeros(cache.padded_shape, dtype=g.dtype)  # (N, C, H_pad, W_pad)
    for i in range(k[0]):
        dxp[:, :, i : i + s[0] * (h_out - 1) + 1 : s[0], :] += d_row_sums
    return _unpad(dxp, cache.x_shape, cache.padding)  # (N, C, H, W)

"""2-D max and average pooling from tensor primitives (``F.pad``, ``Tensor.unfold``, a
reduction), with ``torch.nn.functional`` semantics; differentiable by autograd, on any device.

``x.unfold(2, span, stride)`` turns the rows into windows without copying; doing it for rows
and then columns gives a view ``(N, C, H_out, W_out, span_H, span_W)``, and ``[..., ::D]``
keeps the dilated taps. Pooling is then a reduction over the last two dimensions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from d2lcnn.checks import check_int
from d2lcnn.geometry import pair, pool2d_output_shape
from d2lcnn.torch._checks import check_images

__all__ = ["max_pool2d", "avg_pool2d"]


def _windows(x, k, s, p, d, out_hw, value):
    """Pad ``x`` with ``value`` and return the window view ``(N, C, H_out, W_out, kH, kW)``.

    The bottom/right padding also covers a ``ceil_mode`` window that hangs past the
    padded input.
    """
    h, w = x.shape[-2:]
    span = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    # rows needed = start of the last window + its span; at least the symmetric padding
    bottom = max(p[0], (out_hw[0] - 1) * s[0] + span[0] - h - p[0])
    right = max(p[1], (out_hw[1] - 1) * s[1] + span[1] - w - p[1])
    xp = F.pad(x, (p[1], right, p[0], bottom), value=value)  # (N, C, H_pad, W_pad)
    win = xp.unfold(2, span[0], s[0]).unfold(3, span[1], s[1])  # (N, C, H', W', spH, spW)
    # With this padding the unfold yields exactly H_out x W_out windows; the slice makes
    # that explicit and keeps the dilated taps.
    return win[:, :, : out_hw[0], : out_hw[1], :: d[0], :: d[1]]  # (N, C, Ho, Wo, kH, kW)


def max_pool2d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """2-D max pooling, as ``torch.nn.functional.max_pool2d``, from ``unfold``, ``max`` and
    ``gather``.

    Padding is ``-inf`` (it never wins). ``Tensor.max(dim)`` returns the first maximum's
    index, so the maximum, its index and the gradient are those of the first maximum of each
    window in row-major order, as with PyTorch on the CPU (``amax`` would split the gradient
    between ties instead). As in PyTorch's CPU kernel, a window holding NaNs picks its last
    NaN, and a window whose elements are all ``-inf`` (tied with the padding) its first
    element inside the input. The output is gathered at the chosen taps, so the gradient
    follows the same choice.

    With ``return_indices`` the function also returns, as ``F.max_pool2d`` does, the flat
    position ``h * W + w`` of each maximum in its plane of the *unpadded* input: what
    :func:`d2lcnn.torch.unpool.max_unpool2d` needs to put the maxima back.

    Args:
        input: ``(N, C, H, W)`` or ``(C, H, W)``, floating point.
        kernel_size: window size ``K`` or ``(kH, kW)``.
        stride: ``S`` or ``(sH, sW)``. Default: ``kernel_size``.
        padding: implicit ``-inf`` padding ``P`` on each side, at most ``kernel_size / 2``.
            Default 0.
        dilation: spacing ``D`` between the taps of a window. Default 1.
        ceil_mode: round the output size up, keeping a last partial window that starts
            inside the input or the left padding. Default False.
        return_indices: also return the position of each maximum. Default False.

    Returns:
        ``out``, ``(N, C, H_out, W_out)`` (or ``(C, H_out, W_out)``), on ``input``'s device and
        dtype; with ``return_indices``, ``(out, indices)``, ``indices`` the same shape, int64.

    Shape:
        .. math::
            H_{out} = \\left\\lfloor \\frac{H_{in} + 2P - D(K - 1) - 1}{S} \\right\\rfloor + 1

        (``ceil`` with ``ceil_mode``), and likewise for ``W_out``.

    Raises:
        ValueError: if ``input`` is not 3-D or 4-D, or the geometry is invalid (see
            :func:`d2lcnn.geometry.pool2d_output_shape`).

    Example:
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> max_pool2d(x, 2)
        tensor([[[[ 5.,  7.],
                  [13., 15.]]]])
        >>> max_pool2d(x, 2, return_indices=True)[1]
        tensor([[[[ 5,  7],
                  [13, 15]]]])
    """
    check_images(input, "input", "max_pool2d")
    k = pair(kernel_size, "kernel_size", minimum=1)
    s = k if stride is None else pair(stride, "stride", minimum=1)
    p = pair(padding, "padding", minimum=0)
    d = pair(dilation, "dilation", minimum=1)
    h, w = input.shape[-2:]
    out_hw = pool2d_output_shape((h, w), k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)
    unbatched = input.dim() == 3
    x4 = input.unsqueeze(0) if unbatched else input  # (N, C, H, W)
    taps = _windows(x4, k, s, p, d, out_hw, float("-inf")).flatten(-2)  # (N, C, Ho, Wo, K)
    # The input row (column) of each window's taps: (Ho, kH) and (Wo, kW).
    rows = _tap_positions(out_hw[0], k[0], s[0], p[0], d[0], input.device)
    cols = _tap_positions(out_hw[1], k[1], s[1], p[1], d[1], input.device)
    best = _window_argmax(taps, rows, cols, (h, w))  # (N, C, Ho, Wo): the winning tap
    out = taps.gather(-1, best.unsqueeze(-1)).squeeze(-1)  # (N, C, Ho, Wo)
    if return_indices:
        i, j = best.div(k[1], rounding_mode="floor"), best.remainder(k[1])  # tap row, column
        indices = (rows[:, :1] + i * d[0]) * w + cols[:, 0] + j * d[1]  # (N, C, Ho, Wo)
        return (out.squeeze(0), indices.squeeze(0)) if unbatched else (out, indices)
    return out.squeeze(0) if unbatched else out


def _tap_positions(out_size, kernel, stride, padding, dilation, device):
    """``(out_size, kernel)``: the input position, along one axis, of each window's taps."""
    start = torch.arange(out_size, device=device) * stride - padding
    return start[:, None] + torch.arange(kernel, device=device) * dilation


def _window_argmax(taps, rows, cols, hw):
    """Index ``t = i*kW + j`` of each window's maximum in ``taps`` ``(N, C, Ho, Wo, K)``,
    chosen as PyTorch's CPU kernel chooses it.

    ``max(dim)`` gives the first maximum. Two cases differ: in a window whose elements are
    all ``-inf`` the padding ties with them, but the kernel never visits the padding and
    keeps the first tap inside the input; and a window holding NaNs goes to its last NaN
    (the kernel takes every NaN it meets). Finding the last NaN costs another pass over the
    windows, so it runs only when some window is NaN: one host sync, and no cost otherwise.
    """
    values, best = taps.max(dim=-1)  # (N, C, Ho, Wo) each
    inside_r = (rows >= 0) & (rows < hw[0])  # (Ho, kH)
    inside_c = (cols >= 0) & (cols < hw[1])  # (Wo, kW)
    # The first tap inside pairs the first row inside with the first column inside: (Ho, Wo).
    first_inside = inside_r.byte().argmax(-1)[:, None] * cols.shape[1]
    first_inside = first_inside + inside_c.byte().argmax(-1)
    best = torch.where(values == float("-inf"), first_inside, best)
    if values.isnan().any():  # max propagates NaN: exactly the windows holding one
        k = taps.shape[-1]
        position = torch.arange(1, k + 1, device=taps.device)  # 1-based, so 0 means no NaN
        last_nan = (taps.isnan() * position).amax(dim=-1)  # (N, C, Ho, Wo)
        best = torch.where(last_nan > 0, last_nan - 1, best)
    return best


def _window_counts(size, kernel, stride, padding, out_size, count_include_pad, device):
    """Per-axis divisor, as PyTorch counts it: the window clipped to the padded input
    ``[-P, size + P)`` (a ceil_mode overhang is not counted), or with
    ``count_include_pad=False`` to the input ``[0, size)``."""
    start = torch.arange(out_size, device=device) * stride - padding
    end = torch.clamp(start + kernel, max=size + padding)
    if count_include_pad:
        return end - start
    return torch.clamp(end, max=size) - torch.clamp(start, min=0)


def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``, from ``unfold`` and ``sum``.

    Each output is its window's sum (zero padding) divided by the number of window positions
    inside the padded input (``count_include_pad=True``; a ``ceil_mode`` overhang past the
    padding is not counted) or inside the input itself (``count_include_pad=False``), or by
    ``divisor_override`` for every window when it is given (``1``: sum pooling).

    Args:
        input: ``(N, C, H, W)`` or ``(C, H, W)``, floating point.
        kernel_size: window size ``K`` or ``(kH, kW)``.
        stride: ``S`` or ``(sH, sW)``. Default: ``kernel_size``.
        padding: implicit zero padding ``P`` on each side, at most ``kernel_size / 2``.
            Default 0.
        ceil_mode: round the output size up. Default False.
        count_include_pad: count the zero padding in the divisor. Default True.
        divisor_override: a positive int to divide every window's sum by. Default None.

    Returns:
        ``(N, C, H_out, W_out)`` (or ``(C, H_out, W_out)``), on ``input``'s device and dtype.

    Shape:
        .. math::
            H_{out} = \\left\\lfloor \\frac{H_{in} + 2P - K}{S} \\right\\rfloor + 1

        (``ceil`` with ``ceil_mode``), and likewise for ``W_out``.

    Raises:
        ValueError: if ``input`` is not 3-D or 4-D, the geometry is invalid (see
            :func:`d2lcnn.geometry.pool2d_output_shape`), or ``divisor_override`` is not
            positive.
        TypeError: if ``input`` is not a floating-point tensor or ``divisor_override`` is not
            an int.

    Example:
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> avg_pool2d(x, 2)
        tensor([[[[ 2.5000,  4.5000],
                  [10.5000, 12.5000]]]])
        >>> avg_pool2d(x, 2, divisor_override=1)
        tensor([[[[10., 18.],
                  [42., 50.]]]])
    """
    check_images(input, "input", "avg_pool2d")
    if divisor_override is not None:  # PyTorch also divides by a negative int; not here
        check_int(divisor_override, "divisor_override", "avg_pool2d", minimum=1)
    k = pair(kernel_size, "kernel_size", minimum=1)
    s = k if stride is None else pair(stride, "stride", minimum=1)
    p = pair(padding, "padding", minimum=0)
    h, w = input.shape[-2:]
    out_hw = pool2d_output_shape((h, w), k, stride=s, padding=p, ceil_mode=ceil_mode)
    unbatched = input.dim() == 3
    x4 = input.unsqueeze(0) if unbatched else input  # (N, C, H, W)
    win = _windows(x4, k, s, p, (1, 1), out_hw, 0.0)  # (N, C, Ho, Wo, kH, kW)
    if divisor_override is not None:
        divisor = divisor_override
    else:
        count_h = _window_counts(h, k[0], s[0], p[0], out_hw[0], count_include_pad, input.device)
        count_w = _window_counts(w, k[1], s[1], p[1], out_hw[1], count_include_pad, input.device)
        divisor = torch.outer(count_h, count_w).to(input.dtype)  # (Ho, Wo)
    out = win.sum(dim=(-2, -1)) / divisor  # (N, C, Ho, Wo)
    return out.squeeze(0) if unbatched else out

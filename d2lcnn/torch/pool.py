"""2-D max and average pooling from tensor primitives (``F.pad``, ``Tensor.unfold``, a
reduction), with ``torch.nn.functional`` semantics; differentiable by autograd, on any device.

``x.unfold(2, span, stride)`` turns the rows into windows without copying; doing it for rows
and then columns gives a view ``(N, C, H_out, W_out, span_H, span_W)``, and ``[..., ::D]``
keeps the dilated taps. Pooling is then a reduction over the last two dimensions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from d2lcnn.geometry import pair, pool2d_output_shape

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


def _check(x, fn):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{fn}: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (3, 4):
        raise ValueError(
            f"{fn}: x must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{fn}: x must be floating point, got dtype {x.dtype}")


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """2-D max pooling, as ``torch.nn.functional.max_pool2d``, from ``unfold`` and ``max``.

    Padding is ``-inf`` (it never wins). ``Tensor.max(dim)`` returns the first maximum's
    index, so the gradient goes to the first maximum of each window in row-major order,
    as with PyTorch on the CPU (``amax`` would split it between ties instead). A window
    holding NaNs outputs NaN as in PyTorch, but its gradient goes to the first NaN where
    PyTorch's CPU kernel picks the last.

    Args:
        x: ``(N, C, H, W)`` or ``(C, H, W)``, floating point.
        kernel_size: window size ``K`` or ``(kH, kW)``.
        stride: ``S`` or ``(sH, sW)``. Default: ``kernel_size``.
        padding: implicit ``-inf`` padding ``P`` on each side, at most ``kernel_size / 2``.
            Default 0.
        dilation: spacing ``D`` between the taps of a window. Default 1.
        ceil_mode: round the output size up, keeping a last partial window that starts
            inside the input or the left padding. Default False.

    Returns:
        ``(N, C, H_out, W_out)`` (or ``(C, H_out, W_out)``), on ``x``'s device and dtype.

    Shape:
        .. math::
            H_{out} = \\left\\lfloor \\frac{H_{in} + 2P - D(K - 1) - 1}{S} \\right\\rfloor + 1

        (``ceil`` with ``ceil_mode``), and likewise for ``W_out``.

    Raises:
        ValueError: if ``x`` is not 3-D or 4-D, or the geometry is invalid (see
            :func:`d2lcnn.geometry.pool2d_output_shape`).

    Example:
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> max_pool2d(x, 2)
        tensor([[[[ 5.,  7.],
                  [13., 15.]]]])
    """
    _check(x, "max_pool2d")
    k = pair(kernel_size, "kernel_size", minimum=1)
    s = k if stride is None else pair(stride, "stride", minimum=1)
    p = pair(padding, "padding", minimum=0)
    d = pair(dilation, "dilation", minimum=1)
    out_hw = pool2d_output_shape(
        x.shape[-2:], k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode
    )
    unbatched = x.dim() == 3
    x4 = x.unsqueeze(0) if unbatched else x  # (N, C, H, W)
    win = _windows(x4, k, s, p, d, out_hw, float("-inf"))  # (N, C, Ho, Wo, kH, kW)
    out = win.flatten(-2).max(dim=-1).values  # (N, C, Ho, Wo)
    return out.squeeze(0) if unbatched else out


def _window_counts(size, kernel, stride, padding, out_size, count_include_pad, device):
    """Per-axis divisor, as PyTorch counts it: the window clipped to the padded input
    ``[-P, size + P)`` (a ceil_mode overhang is not counted), or with
    ``count_include_pad=False`` to the input ``[0, size)``."""
    start = torch.arange(out_size, device=device) * stride - padding
    end = torch.clamp(start + kernel, max=size + padding)
    if count_include_pad:
        return end - start
    return torch.clamp(end, max=size) - torch.clamp(start, min=0)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``, from ``unfold`` and ``sum``.

    Each output is its window's sum (zero padding) divided by the number of window positions
    inside the padded input (``count_include_pad=True``; a ``ceil_mode`` overhang past the
    padding is not counted) or inside the input itself (``count_include_pad=False``).

    Args:
        x: ``(N, C, H, W)`` or ``(C, H, W)``, floating point.
        kernel_size: window size ``K`` or ``(kH, kW)``.
        stride: ``S`` or ``(sH, sW)``. Default: ``kernel_size``.
        padding: implicit zero padding ``P`` on each side, at most ``kernel_size / 2``.
            Default 0.
        ceil_mode: round the output size up. Default False.
        count_include_pad: count the zero padding in the divisor. Default True.

    Returns:
        ``(N, C, H_out, W_out)`` (or ``(C, H_out, W_out)``), on ``x``'s device and dtype.

    Shape:
        .. math::
            H_{out} = \\left\\lfloor \\frac{H_{in} + 2P - K}{S} \\right\\rfloor + 1

        (``ceil`` with ``ceil_mode``), and likewise for ``W_out``.

    Raises:
        ValueError: if ``x`` is not 3-D or 4-D, or the geometry is invalid (see
            :func:`d2lcnn.geometry.pool2d_output_shape`).

    Example:
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> avg_pool2d(x, 2)
        tensor([[[[ 2.5000,  4.5000],
                  [10.5000, 12.5000]]]])
    """
    _check(x, "avg_pool2d")
    k = pair(kernel_size, "kernel_size", minimum=1)
    s = k if stride is None else pair(stride, "stride", minimum=1)
    p = pair(padding, "padding", minimum=0)
    h, w = x.shape[-2:]
    out_hw = pool2d_output_shape((h, w), k, stride=s, padding=p, ceil_mode=ceil_mode)
    unbatched = x.dim() == 3
    x4 = x.unsqueeze(0) if unbatched else x  # (N, C, H, W)
    win = _windows(x4, k, s, p, (1, 1), out_hw, 0.0)  # (N, C, Ho, Wo, kH, kW)
    count_h = _window_counts(h, k[0], s[0], p[0], out_hw[0], count_include_pad, x.device)
    count_w = _window_counts(w, k[1], s[1], p[1], out_hw[1], count_include_pad, x.device)
    divisor = torch.outer(count_h, count_w).to(x.dtype)  # (Ho, Wo)
    out = win.sum(dim=(-2, -1)) / divisor  # (N, C, Ho, Wo)
    return out.squeeze(0) if unbatched else out

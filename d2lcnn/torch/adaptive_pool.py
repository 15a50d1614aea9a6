"""2-D adaptive average pooling from tensor primitives (two matmuls with 0/1 window-membership
matrices), as ``torch.nn.functional.adaptive_avg_pool2d``; differentiable by autograd, on the
input's device. No pooling op is called.

Output row ``i`` averages input rows ``[floor(i H / H_out), ceil((i + 1) H / H_out))`` (and
likewise for columns); see :mod:`d2lcnn.numpy.adaptive_pool`.
"""

from __future__ import annotations

import torch

from d2lcnn.checks import check_size_pair
from d2lcnn.torch._checks import check_images

__all__ = ["adaptive_avg_pool2d"]


def _membership(size, out_size, dtype, device):
    """``(out_size, size)`` 0/1 matrix of the windows, and the window lengths ``(out_size,)``."""
    i = torch.arange(out_size, device=device)
    start = torch.div(i * size, out_size, rounding_mode="floor")
    end = -torch.div(-(i + 1) * size, out_size, rounding_mode="floor")  # ceil division
    j = torch.arange(size, device=device)
    m = (j >= start[:, None]) & (j < end[:, None])
    return m.to(dtype), (end - start).to(dtype)


def adaptive_avg_pool2d(input, output_size):
    """2-D adaptive average pooling, as ``torch.nn.functional.adaptive_avg_pool2d``.

    ``out = (M_H x M_W^T) / (|h-window| |w-window|)`` with ``M_H`` the ``(H_out, H)`` 0/1
    matrix whose row ``i`` marks window ``i``'s input rows.

    Args:
        input: ``(N, C, H, W)`` or ``(C, H, W)``, floating point.
        output_size: ``H_out`` or ``(H_out, W_out)``; a None entry keeps that input size.
            ``1`` is global average pooling.

    Returns:
        ``(N, C, H_out, W_out)`` (or ``(C, H_out, W_out)``), on ``input``'s device and dtype.

    Raises:
        ValueError: ``input`` not 3-D or 4-D, or an ``output_size`` below 1.
        TypeError: a non-tensor or non-float ``input``, or a non-int ``output_size``.

    Example:
        >>> adaptive_avg_pool2d(torch.arange(16.0).reshape(1, 1, 4, 4), 1)
        tensor([[[[7.5000]]]])
    """
    fn = "adaptive_avg_pool2d"
    check_images(input, "input", fn)
    h, w = input.shape[-2:]
    h_out, w_out = check_size_pair(output_size, "output_size", fn, default=(h, w))
    rows, len_h = _membership(h, h_out, input.dtype, input.device)  # (H_out, H), (H_out,)
    cols, len_w = _membership(w, w_out, input.dtype, input.device)  # (W_out, W), (W_out,)
    sums = rows @ input @ cols.T  # (..., H_out, W_out): window sums
    return sums / torch.outer(len_h, len_w)

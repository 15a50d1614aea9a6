"""2-D transposed convolution from tensor primitives: one batched matmul and col2im
(``F.fold``), with ``torch.nn.functional.conv_transpose2d``'s signature and semantics.

The transposed convolution is the adjoint (input-gradient) of ``conv2d`` with the same weights:
where :func:`d2lcnn.torch.conv2d` gathers windows with ``F.unfold`` and multiplies by the
weight matrix, this multiplies by the *transposed* weight matrix and scatters the columns
back with ``F.fold``, which adds overlapping kernel copies. Autograd differentiates the matmul
and the fold (the fold's backward is an unfold). No convolution op is called.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from d2lcnn.geometry import conv_transpose2d_output_shape, pair
from d2lcnn.torch._checks import check_bias, check_input_and_weight

__all__ = ["conv_transpose2d"]


def _check(x, weight, bias, groups, fn: str) -> None:
    groups = check_input_and_weight(
        x, weight, groups, fn, weight_layout="(C_in, C_out/groups, kH, kW)"
    )
    c_in = x.shape[1]
    if weight.shape[0] != c_in:
        raise ValueError(
            f"{fn}: weight.shape[0] must equal the channels of input, C_in = input.shape[1] = "
            f"{c_in}, got weight of shape {tuple(weight.shape)}"
        )
    check_bias(bias, x, weight.shape[1] * groups, fn, c_out_formula="weight.shape[1]*groups")


def conv_transpose2d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """2-D transposed convolution, as ``torch.nn.functional.conv_transpose2d``, from
    ``torch.matmul`` and ``F.fold``.

    Each input pixel adds a copy of its group's kernel, scaled by the pixel, onto the output
    at ``(S h, S w)``; ``padding`` rows/columns are then cropped from each side, and
    ``output_padding`` extra ones kept at the bottom/right. This is the gradient of
    :func:`d2lcnn.torch.conv2d` with respect to its input.

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``, floating point.
        weight: ``(C_in, C_out/groups, kH, kW)`` (``C_in`` first, as in PyTorch).
        bias: ``(C_out,)`` or None. Default None.
        stride: ``S`` or ``(sH, sW)``. Default 1.
        padding: ``P`` or ``(pH, pW)`` cropped from each side. Default 0.
        output_padding: ``P_out`` or a pair, added at the bottom/right; smaller than
            ``stride`` or ``dilation``. Default 0.
        groups: independent channel groups. Default 1.
        dilation: ``D`` or ``(dH, dW)``. Default 1.

    Returns:
        ``(N, C_out, H_out, W_out)`` (or ``(C_out, H_out, W_out)``), on ``input``'s device and
        dtype.

    Shape:
        .. math::
            H_{out} = (H_{in} - 1) S - 2P + D (kH - 1) + P_{out} + 1

    Raises:
        ValueError: wrong dimensions, channels that do not match ``groups``, a bias of the
            wrong shape, ``output_padding`` too large or an empty output.
        TypeError: non-tensor arguments or mismatched dtypes.

    Example:
        >>> x = torch.ones(1, 1, 2, 2)
        >>> conv_transpose2d(x, torch.ones(1, 1, 2, 2), stride=2).shape
        torch.Size([1, 1, 4, 4])
    """
    unbatched = isinstance(input, torch.Tensor) and input.dim() == 3
    input = input.unsqueeze(0) if unbatched else input  # (N, C_in, H, W)
    _check(input, weight, bias, groups, "conv_transpose2d")
    n, c_in, h, w = input.shape
    _, c_out_g, kh, kw = weight.shape
    c_out = c_out_g * groups
    s = pair(stride, "stride", minimum=1)
    p = pair(padding, "padding", minimum=0)
    op = pair(output_padding, "output_padding", minimum=0)
    d = pair(dilation, "dilation", minimum=1)
    h_out, w_out = conv_transpose2d_output_shape(
        (h, w), (kh, kw), stride=s, padding=p, output_padding=op, dilation=d
    )
    xg = input.reshape(n, groups, c_in // groups, h * w)  # (N, G, C_in/G, H*W)
    wg = weight.reshape(groups, c_in // groups, -1)  # (G, C_in/G, C_out/G*kH*kW)
    cols = torch.matmul(wg.transpose(1, 2), xg)  # (N, G, C_out/G*kH*kW, H*W)
    cols = cols.reshape(n, c_out * kh * kw, h * w)  # (N, C_out*kH*kW, L), fold's layout
    # Fold into the size the kernel copies span, without cropping: F.fold would derive the
    # number of windows from the cropped size, which is wrong when output_padding >= stride
    # (allowed when dilation > stride).
    span = ((h - 1) * s[0] + d[0] * (kh - 1) + 1, (w - 1) * s[1] + d[1] * (kw - 1) + 1)
    full = F.fold(cols, span, (kh, kw), dilation=d, stride=s)  # (N, C_out, H_span, W_span)
    full = F.pad(full, (0, op[1], 0, op[0]))  # output_padding rows/columns: nothing lands
    out = full[:, :, p[0] : p[0] + h_out, p[1] : p[1] + w_out]  # (N, C_out, H_out, W_out)
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1)
    return out.squeeze(0) if unbatched else out

"""2-D convolution from tensor primitives: im2col (``F.unfold``) and one batched matmul.

Two versions with ``torch.nn.functional.conv2d``'s signature and semantics:

- :func:`conv2d`: the forward pass only; autograd differentiates the unfold and the matmul.
- :func:`conv2d_manual`: the same forward inside :class:`Conv2dFunction`, whose backward is
  written by hand (the math of the NumPy reference layer):

  .. math::
      \\text{cols} = \\text{im2col}(x), \\quad
      \\text{out} = W_{2D} \\, \\text{cols} + b, \\qquad
      \\frac{\\partial L}{\\partial W_{2D}} = \\sum_n \\delta_n \\, \\text{cols}_n^\\top, \\quad
      \\frac{\\partial L}{\\partial x} = \\text{col2im}(W_{2D}^\\top \\delta), \\quad
      \\frac{\\partial L}{\\partial b} = \\sum_{n, h, w} \\delta

  where ``delta`` is the upstream gradient with its spatial dimensions flattened, and col2im
  (``F.fold``) adds every column entry back to the input pixel it was copied from.

Neither calls ``F.conv2d`` or any other convolution op, and both run on the input's device.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from d2lcnn.geometry import conv2d_output_shape, conv2d_padding, pair
from d2lcnn.torch._checks import check_bias, check_input_and_weight

__all__ = ["conv2d", "conv2d_manual", "Conv2dFunction"]


class _Geometry(NamedTuple):
    """Normalized hyperparameters of one convolution call."""

    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]  # (top, bottom, left, right)
    dilation: tuple[int, int]
    groups: int
    out_hw: tuple[int, int]  # (H_out, W_out)


def _check(x, weight, bias, stride, padding, dilation, groups, fn: str) -> _Geometry:
    """Validate the arguments as ``F.conv2d`` would, with messages that name them."""
    groups = check_input_and_weight(
        x, weight, groups, fn, weight_layout="(C_out, C_in/groups, kH, kW)"
    )
    n, c_in, h, w = x.shape
    c_out, c_in_g, kh, kw = weight.shape
    if c_out % groups:
        raise ValueError(
            f"{fn}: C_out = weight.shape[0] = {c_out} must be divisible by groups = {groups}"
        )
    if c_in_g * groups != c_in:
        raise ValueError(
            f"{fn}: weight.shape[1] must be C_in/groups = {c_in}/{groups} = {c_in // groups}, "
            f"got weight of shape {tuple(weight.shape)} for input of shape {tuple(x.shape)}"
        )
    check_bias(bias, x, c_out, fn)

    k = (kh, kw)
    s, d = pair(stride, "stride", minimum=1), pair(dilation, "dilation", minimum=1)
    try:
        pads = conv2d_padding(padding, k, stride=stride, dilation=dilation)
    except ValueError as e:
        raise ValueError(f"{fn}: {e}") from None
    top, bottom, left, right = pads
    if top != bottom or left != right:  # 'same' with an even kernel: the output is the input's size
        return _Geometry(k, s, pads, d, groups, (h, w))
    out_hw = conv2d_output_shape((h, w), k, stride=s, padding=(top, left), dilation=d)
    return _Geometry(k, s, pads, d, groups, out_hw)


def _im2col(x: torch.Tensor, g: _Geometry) -> torch.Tensor:
    """``(N, C, H, W) -> (N, C*kH*kW, H_out*W_out)``; row ``c*kH*kW + i*kW + j`` is tap
    ``(i, j)`` of channel ``c``, matching ``weight.reshape(C_out, -1)``."""
    top, bottom, left, right = g.padding
    if top == bottom and left == right:
        return F.unfold(x, g.kernel_size, dilation=g.dilation, padding=(top, left), stride=g.stride)
    x = F.pad(x, (left, right, top, bottom))  # asymmetric ('same' with an even kernel)
    return F.unfold(x, g.kernel_size, dilation=g.dilation, stride=g.stride)


def _col2im(cols: torch.Tensor, x_hw: tuple[int, int], g: _Geometry) -> torch.Tensor:
    """Adjoint of :func:`_im2col`: ``(N, C*kH*kW, L) -> (N, C, H, W)``, summing overlaps."""
    top, bottom, left, right = g.padding
    h, w = x_hw
    if top == bottom and left == right:
        return F.fold(
            cols, (h, w), g.kernel_size, dilation=g.dilation, padding=(top, left), stride=g.stride
        )
    padded = F.fold(
        cols,
        (h + top + bottom, w + left + right),
        g.kernel_size,
        dilation=g.dilation,
        stride=g.stride,
    )
    return padded[:, :, top : top + h, left : left + w]


def _forward(x, weight, bias, g: _Geometry) -> torch.Tensor:
    """The convolution as im2col + a matmul per group, from differentiable primitives."""
    n = x.shape[0]
    c_out = weight.shape[0]
    cols = _im2col(x, g)  # (N, C_in*kH*kW, L)
    cols = cols.view(n, g.groups, -1, cols.shape[-1])  # (N, G, C_in/G*kH*kW, L)
    w2 = weight.reshape(g.groups, c_out // g.groups, -1)  # (G, C_out/G, C_in/G*kH*kW)
    out = torch.matmul(w2, cols)  # (N, G, C_out/G, L), broadcast over N
    out = out.reshape(n, c_out, *g.out_hw)  # (N, C_out, H_out, W_out)
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1)
    return out


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) over an ``(N, C_in, H, W)`` input, as
    ``torch.nn.functional.conv2d``, built from ``F.unfold`` and ``torch.matmul``.

    .. math::
        \\text{out}(n, o, y, x) = b(o) + \\sum_{c, i, j}
        W(o, c, i, j) \\, \\text{in}(n, g(o) \\cdot C_{in}/G + c,\\;
        S_H y - P_H + D_H i,\\; S_W x - P_W + D_W j)

    with zero padding and ``g(o)`` the group of output channel ``o``. Gradients come from
    autograd; see :func:`conv2d_manual` for the hand-written backward.

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``, floating point.
        weight: ``(C_out, C_in / groups, kH, kW)``.
        bias: ``(C_out,)`` or None. Default None.
        stride: ``S`` or ``(sH, sW)``. Default 1.
        padding: zero padding ``P`` or ``(pH, pW)`` on each side, or ``'valid'`` (no padding)
            or ``'same'`` (output size = input size; stride 1 only). Default 0.
        dilation: spacing ``D`` between kernel taps, or ``(dH, dW)``. Default 1.
        groups: split the input and output channels into this many independent groups.
            Default 1.

    Returns:
        ``(N, C_out, H_out, W_out)`` (``(C_out, H_out, W_out)`` for unbatched ``input``), on
        ``input``'s device with its dtype.

    Shape:
        .. math::
            H_{out} = \\left\\lfloor \\frac{H_{in} + 2P_H - D_H(kH - 1) - 1}{S_H}
            \\right\\rfloor + 1

        and likewise for ``W_out``.

    Raises:
        ValueError: wrong number of dimensions, channels that do not match ``groups``, a bias
            of the wrong shape, or a kernel that does not fit (the message shows the formula).
        TypeError: non-tensor arguments, or dtypes that do not match.

    Example:
        >>> x = torch.randn(8, 3, 32, 32)
        >>> w = torch.randn(16, 3, 5, 5)
        >>> conv2d(x, w, padding=2).shape
        torch.Size([8, 16, 32, 32])
    """
    unbatched = isinstance(input, torch.Tensor) and input.dim() == 3
    input = input.unsqueeze(0) if unbatched else input  # (N, C_in, H, W)
    g = _check(input, weight, bias, stride, padding, dilation, groups, "conv2d")
    out = _forward(input, weight, bias, g)
    return out.squeeze(0) if unbatched else out


class Conv2dFunction(torch.autograd.Function):
    """Convolution with a hand-written backward, for ``Conv2dFunction.apply(x, weight, bias,
    stride, padding, dilation, groups)`` on a 4-D input (prefer :func:`conv2d_manual`).

    The forward is :func:`conv2d`'s im2col + matmul. The backward keeps only ``x`` and
    ``weight`` and recomputes the columns (they are ``kH*kW`` times larger than ``x``), then:

    - ``dW = sum_n delta_n @ cols_n^T`` per group,
    - ``dx = col2im(W^T @ delta)`` (``F.fold`` adds overlapping windows back together),
    - ``db = delta.sum(over N, H_out, W_out)``.
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        g = _check(x, weight, bias, stride, padding, dilation, groups, "Conv2dFunction")
        ctx.save_for_backward(x, weight)
        ctx.geometry = g
        ctx.has_bias = bias is not None
        return _forward(x, weight, bias, g)

    @staticmethod
    def backward(ctx, dout):
        x, weight = ctx.saved_tensors
        g = ctx.geometry
        n, _, h, w = x.shape
        c_out = weight.shape[0]
        delta = dout.reshape(n, g.groups, c_out // g.groups, -1)  # (N, G, C_out/G, L)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            w2 = weight.reshape(g.groups, c_out // g.groups, -1)  # (G, C_out/G, C_in/G*kH*kW)
            dcols = torch.matmul(w2.transpose(1, 2), delta)  # (N, G, C_in/G*kH*kW, L)
            dx = _col2im(dcols.reshape(n, -1, dcols.shape[-1]), (h, w), g)  # (N, C_in, H, W)
        if ctx.needs_input_grad[1]:
            cols = _im2col(x, g)  # (N, C_in*kH*kW, L), recomputed
            cols = cols.view(n, g.groups, -1, cols.shape[-1])  # (N, G, C_in/G*kH*kW, L)
            # One matmul per image over its L positions, then sum over the batch (measured
            # several times faster than a single einsum contracting both on the CPU).
            dw = torch.matmul(delta, cols.transpose(-1, -2))  # (N, G, C_out/G, C_in/G*kH*kW)
            dw = dw.sum(dim=0).reshape(weight.shape)  # (C_out, C_in/G, kH, kW)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = dout.sum(dim=(0, 2, 3))  # (C_out,)
        return dx, dw, db, None, None, None, None


def conv2d_manual(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """:func:`conv2d` with the hand-written backward of :class:`Conv2dFunction`.

    Same arguments, shapes, errors and results as :func:`conv2d` (and
    ``torch.nn.functional.conv2d``); only the gradients are computed by our own code.

    Example:
        >>> x = torch.randn(2, 4, 9, 9, dtype=torch.float64, requires_grad=True)
        >>> w = torch.randn(6, 2, 3, 3, dtype=torch.float64, requires_grad=True)
        >>> conv2d_manual(x, w, stride=2, groups=2).sum().backward()
        >>> x.grad.shape, w.grad.shape
        (torch.Size([2, 4, 9, 9]), torch.Size([6, 2, 3, 3]))
    """
    unbatched = isinstance(input, torch.Tensor) and input.dim() == 3
    input = input.unsqueeze(0) if unbatched else input  # (N, C_in, H, W)
    out = Conv2dFunction.apply(input, weight, bias, stride, padding, dilation, groups)
    return out.squeeze(0) if unbatched else out

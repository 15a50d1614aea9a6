"""2-D convolution in NumPy: forward and backward, a loop version and a fast im2col version.

Both follow ``torch.nn.functional.conv2d`` exactly: NCHW input, weights of shape
``(C_out, C_in/groups, kH, kW)``, ints or pairs for ``stride`` and ``dilation``, ints, pairs,
``"valid"`` or ``"same"`` for ``padding``, and output sizes that floor when the stride does
not tile the input.

The fast path is im2col ("image to columns"): every receptive field of a chunk of images is
copied into a column of a matrix, and the convolution becomes one matrix product per chunk
(and group), done by BLAS; the backward pass is the transposed products and col2im, the
scatter-add of the columns' gradient back onto the images. This file shows those steps;
the tuned building blocks they call (scratch buffers, the memory layout, the window views)
and the measurements behind them are in :mod:`d2lcnn.numpy._im2col`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from d2lcnn.geometry import conv2d_output_shape, conv2d_padding, pair
from d2lcnn.numpy import _im2col
from d2lcnn.numpy._checks import check_array, check_dout, check_input_and_weight

__all__ = ["conv2d_forward", "conv2d_backward", "conv2d_forward_naive", "ConvCache"]


class ConvCache(NamedTuple):
    """What :func:`conv2d_backward` needs from the forward pass.

    ``x`` and ``w`` are the caller's arrays, not copies: modifying them in place between
    forward and backward changes the gradients. (With ``padding="same"`` and an even
    kernel, ``x`` is the input with its extra last row or column of zeros, ``trim``.)
    """

    x: np.ndarray  # (N, C_in, H, W)
    w: np.ndarray  # (C_out, C_in/groups, kH, kW)
    has_bias: bool
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    out_shape: tuple[int, int, int, int]  # (N, C_out, H_out, W_out)
    trim: tuple[int, int] = (0, 0)  # rows, columns of x that are extra 'same' padding


# ----------------------------------------------------------------------------------------
# Argument checking, shared by both forward implementations
# ----------------------------------------------------------------------------------------


def _check_conv_args(input, weight, bias, stride, padding, dilation, groups, fn):
    """Validate the arguments of a forward call and build its :class:`ConvCache`."""
    groups = check_input_and_weight(
        input, weight, groups, fn, weight_layout="(C_out, C_in/groups, kH, kW)"
    )
    n, c_in, h, w_in = input.shape
    c_out, c_per_group, kh, kw = weight.shape
    if c_out % groups != 0:
        raise ValueError(
            f"{fn}: C_out = weight.shape[0] = {c_out} must be divisible by groups = {groups}"
        )
    if c_in != c_per_group * groups:
        raise ValueError(
            f"{fn}: input has C_in = input.shape[1] = {c_in} channels but weight expects "
            f"weight.shape[1] * groups = {c_per_group} * {groups} = {c_per_group * groups}"
        )
    if bias is not None:
        check_array(bias, "bias", fn, dtype=input.dtype, shape=(c_out,), shape_formula="(C_out,)")
    top, bottom, left, right = conv2d_padding(padding, (kh, kw), stride=stride, dilation=dilation)
    stride = pair(stride, "stride", minimum=1)
    dilation = pair(dilation, "dilation", minimum=1)
    trim = (bottom - top, right - left)  # 'same' with an even kernel: one more at the end
    if trim != (0, 0):
        input = np.pad(input, ((0, 0), (0, 0), (0, trim[0]), (0, trim[1])))
    # Raises a ValueError showing the formula when the kernel does not fit.
    h_out, w_out = conv2d_output_shape(
        input.shape[2:], (kh, kw), stride=stride, padding=(top, left), dilation=dilation
    )
    return ConvCache(
        input, weight, bias is not None, stride, (top, left), dilation, groups,
        (n, c_out, h_out, w_out), trim,
    )


# ----------------------------------------------------------------------------------------
# The algorithm as taught: loops
# ----------------------------------------------------------------------------------------


def conv2d_forward_naive(input, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) with explicit loops: the definition, slowly.

    For output channel ``o`` in group ``g = o // (C_out/groups)``, whose input channels are
    ``c = g*C_in/groups, ..., (g+1)*C_in/groups - 1``:

    .. math::
        \\text{out}[n, o, i, j] = b[o] + \\sum_{c, p, q}
            w[o, c - g C_{in}/G, p, q] \\,
            x_{\\text{pad}}[n, c, \\, i S_H + p D_H, \\, j S_W + q D_W]

    where :math:`x_{\\text{pad}}` is ``input`` with ``padding`` zeros on each side. The loops run
    over ``n, o, i, j``; the sum over one receptive field is a small dot product.
    About a thousand times slower than :func:`conv2d_forward`: use it to read, and on
    tiny inputs to check the fast version.

    Args and Returns: as :func:`conv2d_forward`; the cache works with
    :func:`conv2d_backward`.

    Example:
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> out, _ = conv2d_forward_naive(x, np.ones((1, 1, 2, 2)))
        >>> out[0, 0]
        array([[10., 14., 18.],
               [26., 30., 34.],
               [42., 46., 50.]])
    """
    cache = _check_conv_args(
        input, weight, bias, stride, padding, dilation, groups, "conv2d_forward_naive"
    )
    (sh, sw), (ph, pw), (dh, dw) = cache.stride, cache.padding, cache.dilation
    n_batch, c_out, h_out, w_out = cache.out_shape
    c_per_group = weight.shape[1]
    o_per_group = c_out // groups
    kh, kw = weight.shape[2:]
    xp = np.pad(cache.x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C_in, H + 2pH, W + 2pW)
    out = np.zeros(cache.out_shape, dtype=input.dtype)  # (N, C_out, H_out, W_out)
    for n in range(n_batch):
        for o in range(c_out):
            c0 = (o // o_per_group) * c_per_group  # first input channel of o's group
            for i in range(h_out):
                for j in range(w_out):
                    top, left = i * sh, j * sw
                    patch = xp[
                        n,
                        c0 : c0 + c_per_group,
                        top : top + dh * (kh - 1) + 1 : dh,
                        left : left + dw * (kw - 1) + 1 : dw,
                    ]  # (C_in/groups, kH, kW)
                    out[n, o, i, j] = np.vdot(patch, weight[o])
            if bias is not None:
                out[n, o] += bias[o]
    return out, cache


# ----------------------------------------------------------------------------------------
# The fast path: im2col in cache-sized chunks, one BLAS product per chunk and group
# ----------------------------------------------------------------------------------------


def conv2d_forward(input, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) over a batch of images, by im2col and BLAS.

    Computes exactly ``torch.nn.functional.conv2d(x, w, b, stride, padding, dilation,
    groups)``:

    .. math::
        \\text{out}[n, o] = b[o] + \\sum_{c \\in \\text{group}(o)} w[o, c] \\star x[n, c]

    where :math:`\\star` is the 2-D cross-correlation (see :func:`conv2d_forward_naive`).

    Args:
        input: ``(N, C_in, H, W)``, float32 or float64.
        weight: weights of shape ``(C_out, C_in/groups, kH, kW)``, same dtype as ``input``.
        bias: bias of shape ``(C_out,)`` or ``None`` (no bias). Default ``None``.
        stride: step between windows, an int or ``(sH, sW)``. Default 1.
        padding: zeros added on each side, an int or ``(pH, pW)``; or ``"valid"`` (none)
            or ``"same"`` (the output keeps the input's size; stride 1 only). Default 0.
        dilation: spacing between kernel taps, an int or ``(dH, dW)``. Default 1.
        groups: split the channels into this many independent convolutions; ``C_in`` and
            ``C_out`` must both be divisible by it. Default 1.

    Returns:
        ``(out, cache)``: ``out`` of shape ``(N, C_out, H_out, W_out)`` and the dtype of
        ``input`` (a new array); ``cache`` a :class:`ConvCache` for :func:`conv2d_backward`.

    Shape:
        - Input: ``(N, C_in, H_in, W_in)``
        - Output: ``(N, C_out, H_out, W_out)`` where

        .. math::
            H_{out} = \\left\\lfloor \\frac{H_{in} + 2 \\cdot \\text{padding}[0]
                - \\text{dilation}[0] \\cdot (kH - 1) - 1}{\\text{stride}[0]} \\right\\rfloor + 1

        and likewise for :math:`W_{out}` with index 1 and ``kW``.

    Raises:
        TypeError: ``input``, ``weight`` or ``bias`` not a floating-point array, or their
            dtypes differ; ``groups`` not an int.
        ValueError: ``input`` or ``weight`` not 4-D; ``C_in`` or ``C_out`` not divisible by
            ``groups``; ``C_in != w.shape[1] * groups``; ``bias`` not of shape ``(C_out,)``;
            a kernel that does not fit in the padded input.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((8, 3, 32, 32), dtype=np.float32)
        >>> w = rng.standard_normal((16, 3, 3, 3), dtype=np.float32)
        >>> out, cache = conv2d_forward(x, w, np.zeros(16, np.float32), padding=1)
        >>> out.shape
        (8, 16, 32, 32)
        >>> dx, dw, db = conv2d_backward(np.ones_like(out), cache)
    """
    cache = _check_conv_args(
        input, weight, bias, stride, padding, dilation, groups, "conv2d_forward"
    )
    c_out = cache.out_shape[1]
    lay = _im2col.layout(cache)
    w_mat = _im2col.weight_matrix(weight, cache.groups)  # (G, C_out/G, K), K = kH*kW*C_in/G
    out = np.empty(cache.out_shape, dtype=input.dtype)  # (N, C_out, H_out, W_out)
    for n0, n1 in lay.chunks(cache.x.shape[0]):
        cols = _im2col.im2col(cache.x[n0:n1], cache, lay)  # (G, K, M), M = n*h_work*w_work
        res = _im2col.product(w_mat, cols, "res")  # (G, C_out/G, M): one product per group
        valid = _im2col.outputs(res, cache, lay)  # (n, C_out, H_out, W_out), a view of res
        if bias is None:
            out[n0:n1] = valid
        else:  # the bias rides along with the copy into NCHW: one pass over out, not two
            np.add(valid, bias.reshape(1, c_out, 1, 1), out=out[n0:n1])
    return out, cache


def conv2d_backward(dout, cache: ConvCache):
    """Gradients of a convolution with respect to its input, weights and bias.

    With ``cols`` the im2col matrix (one row per weight, one column per output position)
    and ``W`` the weights as a ``(C_out, C_in*kH*kW)`` matrix (per group), the forward
    pass is ``out = W @ cols``, so

    .. math::
        dW = dout \\, cols^T, \\qquad dcols = W^T dout, \\qquad
        db[o] = \\sum_{n, i, j} dout[n, o, i, j]

    and ``dx`` is ``dcols`` scattered back ("col2im"): each input pixel receives the sum
    of the gradients of every window position that read it.

    Args:
        dout: upstream gradient of shape ``(N, C_out, H_out, W_out)``, same dtype as ``x``.
        cache: the :class:`ConvCache` from :func:`conv2d_forward` or
            :func:`conv2d_forward_naive`.

    Returns:
        ``(dx, dw, db)`` shaped like ``x``, ``w`` and ``b`` (new arrays); ``db`` is
        ``None`` when the forward pass had no bias.

    Raises:
        TypeError: ``dout`` not a floating-point array of the forward pass's dtype.
        ValueError: ``dout`` not of the forward pass's output shape.
    """
    dout = check_dout(
        dout, cache.out_shape, "conv2d_backward",
        layout="(N, C_out, H_out, W_out)", dtype=cache.x.dtype,
    )
    x, w = cache.x, cache.w
    h, w_in = x.shape[2:]
    lay = _im2col.layout(cache, whole_planes=True)
    w_mat = _im2col.weight_matrix(w, cache.groups)  # (G, C_out/G, K)
    g, c_out_g, k = w_mat.shape
    db = dout.sum(axis=(0, 2, 3)) if cache.has_bias else None  # (C_out,)
    dw_t = np.zeros((g, k, c_out_g), dtype=w.dtype)  # (G, K, C_out/G)
    dx = np.empty(x.shape, dtype=x.dtype)  # (N, C_in, H, W): every element written below
    for n0, n1 in lay.chunks(x.shape[0]):
        # Upstream gradient in the columns' layout, zero for the thrown-away outputs.
        dres = _im2col.output_grad(dout[n0:n1], cache, lay)  # (G, C_out/G, M)
        # Recompute this chunk's columns rather than keep all of them from the forward
        # pass: the copy is cheap next to the products, and the memory stays cache-sized.
        cols = _im2col.im2col(x[n0:n1], cache, lay)  # (G, K, M)
        # dW^T = cols @ dout^T: BLAS ran this orientation 1.1-1.4x faster than dout @ cols^T.
        dw_t += _im2col.product(cols, dres.transpose(0, 2, 1), "dw")  # (G, K, C_out/G)
        # dcols = W^T @ dout. The columns are used up: their buffer takes their gradient.
        dcols = np.matmul(w_mat.transpose(0, 2, 1), dres, out=cols)  # (G, K, M)
        dx[n0:n1] = _im2col.col2im(dcols, n1 - n0, cache, lay)  # (n, C_in, H, W)

    dw = _im2col.weight_from_matrix(dw_t, w.shape)  # (C_out, C_in/G, kH, kW), a new array
    if cache.trim != (0, 0):  # the gradient of the caller's input, without the extra zeros
        dx = np.ascontiguousarray(dx[:, :, : h - cache.trim[0], : w_in - cache.trim[1]])
    return dx, dw, db

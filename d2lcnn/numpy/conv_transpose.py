"""2-D transposed convolution in NumPy, forward and backward, as
``torch.nn.functional.conv_transpose2d`` (NCHW, weights ``(C_in, C_out/groups, kH, kW)``).

A transposed convolution is the *adjoint* of a convolution: with the same weights ``w`` (read
as a ``conv2d`` weight ``(C_out', C_in'/groups, kH, kW)`` that maps ``C_out`` channels to
``C_in`` channels), ``conv_transpose2d(y, w)`` is exactly the input-gradient that
``conv2d_backward`` computes for the upstream gradient ``y``:

.. math::
    \\langle \\text{conv2d}(x, w), y \\rangle = \\langle x, \\text{conv\\_transpose2d}(y, w)
    \\rangle \\quad \\text{for all } x, y.

Every input pixel *scatters* a copy of the kernel, scaled by its value, onto the output,
``stride`` pixels apart from its neighbour's copy; overlapping copies add up, then ``padding``
rows and columns are cropped from each side (``output_padding`` extra rows/columns are kept at
the bottom/right).

Implementation: one matmul per group turns every input pixel into its scaled kernel copy
(the "columns", ``(N, C_out, kH, kW, H, W)``), then col2im adds the ``kH * kW`` taps into the
output with one strided slice addition each. We prefer this to zero-insertion followed by an
ordinary convolution, which multiplies ``(S^2 - 1) / S^2`` of its inputs by inserted zeros
(3/4 of the work at stride 2), and because it *is* ``conv2d``'s input-gradient written out,
which is the lesson. The backward is the mirror image: im2col of ``dout`` by the same strided
slices, then matmuls — that is, an ordinary convolution of ``dout``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from d2lcnn.geometry import conv_transpose2d_output_shape, pair
from d2lcnn.numpy._checks import check_array, check_dout, check_input_and_weight

__all__ = [
    "ConvTranspose2dCache",
    "conv_transpose2d_forward",
    "conv_transpose2d_backward",
    "conv_transpose2d_forward_naive",
]


class ConvTranspose2dCache(NamedTuple):
    """What :func:`conv_transpose2d_backward` needs from the forward pass.

    ``x`` and ``w`` are the caller's arrays, not copies.
    """

    x: np.ndarray  # (N, C_in, H, W)
    w: np.ndarray  # (C_in, C_out/groups, kH, kW)
    has_bias: bool
    stride: tuple[int, int]
    padding: tuple[int, int]
    output_padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    out_shape: tuple[int, int, int, int]  # (N, C_out, H_out, W_out)


def _check_args(input, weight, bias, stride, padding, output_padding, dilation, groups, fn):
    """Validate a forward call as ``F.conv_transpose2d`` would and build the cache."""
    groups = check_input_and_weight(
        input, weight, groups, fn, weight_layout="(C_in, C_out/groups, kH, kW)"
    )
    n, c_in, h, w_in = input.shape
    if weight.shape[0] != c_in:
        raise ValueError(
            f"{fn}: weight.shape[0] must equal the channels of input, C_in = input.shape[1] = "
            f"{c_in}, got weight of shape {weight.shape}"
        )
    c_out = weight.shape[1] * groups
    if bias is not None:
        check_array(
            bias, "bias", fn, dtype=input.dtype,
            shape=(c_out,), shape_formula="(C_out,) = (weight.shape[1]*groups,)",
        )
    s = pair(stride, "stride", minimum=1)
    p = pair(padding, "padding", minimum=0)
    op = pair(output_padding, "output_padding", minimum=0)
    d = pair(dilation, "dilation", minimum=1)
    # Raises a ValueError showing the formula for output_padding too large or an empty output.
    h_out, w_out = conv_transpose2d_output_shape(
        (h, w_in), weight.shape[2:], stride=s, padding=p, output_padding=op, dilation=d
    )
    return ConvTranspose2dCache(
        input, weight, bias is not None, s, p, op, d, groups, (n, c_out, h_out, w_out)
    )


def _full_shape(cache: ConvTranspose2dCache) -> tuple[int, int]:
    """Size of the uncropped output: every kernel copy fits, plus ``output_padding``.

    ``H_full = (H - 1) S + D (kH - 1) + 1 + P_out = H_out + 2P``.
    """
    h_out, w_out = cache.out_shape[2:]
    return h_out + 2 * cache.padding[0], w_out + 2 * cache.padding[1]


def _tap(a, i, j, cache: ConvTranspose2dCache):
    """View of the output pixels that tap ``(i, j)`` of each input pixel's kernel copy lands
    on: ``(N, C, H, W)``, rows ``i*D + S*h`` and columns ``j*D + S*w``."""
    h, w = cache.x.shape[2:]
    (sh, sw), (dh, dw) = cache.stride, cache.dilation
    r0, c0 = i * dh, j * dw
    return a[:, :, r0 : r0 + sh * (h - 1) + 1 : sh, c0 : c0 + sw * (w - 1) + 1 : sw]


def conv_transpose2d_forward(
    input, weight, bias=None, *, stride=1, padding=0, output_padding=0, groups=1, dilation=1
) -> tuple[np.ndarray, ConvTranspose2dCache]:
    """2-D transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

    The adjoint of :func:`d2lcnn.numpy.conv2d_forward` with the same weights and geometry:
    ``conv_transpose2d_forward(y, w, stride=S, padding=P, ...)`` equals the ``dx`` that
    ``conv2d_backward`` returns for upstream gradient ``y`` (with ``output_padding`` choosing
    which of the input sizes that map to ``y``'s size). It upsamples by ``stride``: each input
    pixel adds ``x[n, c, h, w] * w[c, o]`` onto the output at ``(S h - P, S w - P)``.

    Args:
        input: ``(N, C_in, H, W)``, float32 or float64.
        weight: weights, ``(C_in, C_out/groups, kH, kW)``, same dtype as ``input`` (note: ``C_in``
            first, as in PyTorch).
        bias: bias ``(C_out,)`` or None. Default None.
        stride: ``S`` or ``(sH, sW)``: spacing of the kernel copies. Default 1.
        padding: ``P`` or ``(pH, pW)``: rows/columns cropped from each side of the full
            result (``dilation * (kernel_size - 1) - padding`` of zero padding in the
            equivalent convolution). Default 0.
        output_padding: ``P_out`` or a pair: extra rows/columns kept at the bottom/right,
            smaller than ``stride`` or ``dilation``. Default 0.
        groups: independent channel groups. Default 1.
        dilation: ``D`` or ``(dH, dW)``: spacing of the kernel taps. Default 1.

    Returns:
        ``(out, cache)``: ``out`` is ``(N, C_out, H_out, W_out)`` with ``input``'s dtype.

    Shape:
        .. math::
            H_{out} = (H_{in} - 1) S - 2P + D (kH - 1) + P_{out} + 1

        and likewise for ``W_out``.

    Raises:
        ValueError: wrong dimensions, channels that do not match ``groups``, a bias of the
            wrong shape, ``output_padding`` too large or an empty output (the message shows
            the formula).
        TypeError: non-array or non-float arguments, mismatched dtypes, non-int geometry.

    Example:
        >>> x = np.ones((1, 1, 2, 2))
        >>> w = np.ones((1, 1, 2, 2))
        >>> conv_transpose2d_forward(x, w)[0][0, 0]
        array([[1., 2., 1.],
               [2., 4., 2.],
               [1., 2., 1.]])
    """
    cache = _check_args(
        input, weight, bias, stride, padding, output_padding, dilation, groups,
        "conv_transpose2d_forward",
    )
    n, c_in, h, w_in = input.shape
    g = cache.groups
    c_out = cache.out_shape[1]
    kh, kw = weight.shape[2:]
    # One matmul per group: every input pixel times the whole kernel of its group.
    xg = input.reshape(n, g, c_in // g, h * w_in)  # (N, G, C_in/G, H*W)
    wg = weight.reshape(g, c_in // g, -1)  # (G, C_in/G, C_out/G*kH*kW)
    cols = np.matmul(wg.transpose(0, 2, 1), xg)  # (N, G, C_out/G*kH*kW, H*W)
    cols = cols.reshape(n, c_out, kh, kw, h, w_in)  # (N, C_out, kH, kW, H, W)
    # col2im: add tap (i, j) of every kernel copy onto its strided grid of output pixels.
    full = np.zeros((n, c_out, *_full_shape(cache)), dtype=input.dtype)  # (N, C_out, H_f, W_f)
    for i in range(kh):
        for j in range(kw):
            _tap(full, i, j, cache)[...] += cols[:, :, i, j]
    (ph, pw), (h_out, w_out) = cache.padding, cache.out_shape[2:]
    out = full[:, :, ph : ph + h_out, pw : pw + w_out]  # (N, C_out, H_out, W_out)
    out = np.ascontiguousarray(out)
    if bias is not None:
        out += bias.reshape(1, c_out, 1, 1)
    return out, cache


def conv_transpose2d_backward(dout, cache: ConvTranspose2dCache):
    """Backward pass of :func:`conv_transpose2d_forward`.

    The forward is linear in ``x`` and in ``w``. Its ``x``-gradient is an ordinary
    convolution of ``dout`` with the same weights (the adjoint of the adjoint): zero-pad
    ``dout`` back to the full size, gather the ``kH * kW`` taps that each input pixel wrote
    to (im2col), and contract with the kernel. The ``w``-gradient contracts the same columns
    with ``x``; ``db`` sums ``dout`` over everything but the channels.

    Args:
        dout: upstream gradient, ``(N, C_out, H_out, W_out)``.
        cache: from :func:`conv_transpose2d_forward`.

    Returns:
        ``(dx, dw, db)`` shaped like ``x``, ``w`` and ``b`` (``db`` is None without a bias).

    Raises:
        ValueError: if ``dout`` does not have the forward output's shape.
    """
    dout = check_dout(dout, cache.out_shape, "conv_transpose2d_backward")
    x, w, g = cache.x, cache.w, cache.groups
    n, c_in, h, w_in = x.shape
    c_out = cache.out_shape[1]
    kh, kw = w.shape[2:]
    (ph, pw), (h_out, w_out) = cache.padding, cache.out_shape[2:]
    full = np.zeros((n, c_out, *_full_shape(cache)), dtype=dout.dtype)  # (N, C_out, H_f, W_f)
    full[:, :, ph : ph + h_out, pw : pw + w_out] = dout
    dcols = np.empty((n, c_out, kh, kw, h, w_in), dtype=dout.dtype)  # im2col of dout
    for i in range(kh):
        for j in range(kw):
            dcols[:, :, i, j] = _tap(full, i, j, cache)
    dcols = dcols.reshape(n, g, -1, h * w_in)  # (N, G, C_out/G*kH*kW, H*W)
    wg = w.reshape(g, c_in // g, -1)  # (G, C_in/G, C_out/G*kH*kW)
    dx = np.matmul(wg, dcols).reshape(x.shape)  # (N, C_in, H, W)
    xg = x.reshape(n, g, c_in // g, h * w_in)  # (N, G, C_in/G, H*W)
    # Sum over the batch inside one contraction: (G, C_in/G, C_out/G*kH*kW).
    dw = np.einsum("ngcl,ngkl->gck", xg, dcols, optimize=True).reshape(w.shape)
    db = dout.sum(axis=(0, 2, 3)) if cache.has_bias else None
    return dx.astype(x.dtype, copy=False), dw.astype(w.dtype, copy=False), db


def conv_transpose2d_forward_naive(
    input, weight, bias=None, *, stride=1, padding=0, output_padding=0, groups=1, dilation=1
) -> tuple[np.ndarray, ConvTranspose2dCache]:
    """The transposed convolution as taught: loop over input pixels, scatter kernel copies.

    Same arguments and result as :func:`conv_transpose2d_forward`, ``(out, cache)`` with a
    cache for :func:`conv_transpose2d_backward`; slow, for reading and for testing the
    vectorized version.
    """
    cache = _check_args(
        input, weight, bias, stride, padding, output_padding, dilation, groups,
        "conv_transpose2d_forward_naive",
    )
    n, c_in, h, w_in = input.shape
    c_in_g, (c_out_g, kh, kw) = c_in // cache.groups, weight.shape[1:]
    (sh, sw), (dh, dw) = cache.stride, cache.dilation
    full = np.zeros((n, cache.out_shape[1], *_full_shape(cache)), dtype=input.dtype)
    for c in range(c_in):
        group = c // c_in_g
        outs = slice(group * c_out_g, (group + 1) * c_out_g)  # this group's output channels
        for r in range(h):
            for q in range(w_in):
                for i in range(kh):
                    for j in range(kw):
                        # (N, 1) * (C_out/G,) -> (N, C_out/G): pixel value times tap (i, j)
                        full[:, outs, r * sh + i * dh, q * sw + j * dw] += (
                            input[:, c, r, q, None] * weight[c, :, i, j]
                        )
    (ph, pw), (h_out, w_out) = cache.padding, cache.out_shape[2:]
    out = full[:, :, ph : ph + h_out, pw : pw + w_out].copy()
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out, cache

"""2-D convolution in NumPy: forward and backward, a loop version and a fast im2col version.

Both follow ``torch.nn.functional.conv2d`` exactly: NCHW input, weights of shape
``(C_out, C_in/groups, kH, kW)``, ints or pairs for ``stride``, ``padding`` and
``dilation``, and output sizes that floor when the stride does not tile the input.

The fast path is im2col ("image to columns"): every receptive field of a chunk of
images is copied into a column of a matrix, and the convolution becomes one matrix
product per chunk (and group), done by BLAS. The copy reads a zero-copy window view of
the padded input (:func:`numpy.lib.stride_tricks.as_strided`). The layout notes above
``_CHUNK_BYTES`` below explain the choices and their measurements.

Thread safety: the scratch buffers used by the fast path are per thread
(:class:`threading.local`), so calls from different threads do not interfere; arrays
returned to the caller are always freshly allocated, never views of a scratch buffer.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from d2lcnn.geometry import conv2d_output_shape, pair

__all__ = ["conv2d_forward", "conv2d_backward", "conv2d_forward_naive", "ConvCache"]


class ConvCache(NamedTuple):
    """What :func:`conv2d_backward` needs from the forward pass.

    ``x`` and ``w`` are the caller's arrays, not copies: modifying them in place between
    forward and backward changes the gradients.
    """

    x: np.ndarray  # (N, C_in, H, W)
    w: np.ndarray  # (C_out, C_in/groups, kH, kW)
    has_bias: bool
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    out_shape: tuple[int, int, int, int]  # (N, C_out, H_out, W_out)


# ----------------------------------------------------------------------------------------
# Argument checking, shared by both forward implementations
# ----------------------------------------------------------------------------------------


def _require_float_array(a, name: str) -> None:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(
            f"{name} must be a floating-point array (float32 or float64), got dtype {a.dtype}"
        )


def _check_conv_args(x, w, b, stride, padding, dilation, groups):
    """Validate the arguments of a forward call and build its :class:`ConvCache`."""
    _require_float_array(x, "x")
    _require_float_array(w, "w")
    if x.ndim != 4:
        raise ValueError(
            f"x must be 4-D (N, C_in, H, W), got a {x.ndim}-D array of shape {x.shape}"
        )
    if w.ndim != 4:
        raise ValueError(
            f"w must be 4-D (C_out, C_in/groups, kH, kW), got a {w.ndim}-D array of shape "
            f"{w.shape}"
        )
    if w.dtype != x.dtype:
        raise TypeError(f"w must have the same dtype as x ({x.dtype}), got {w.dtype}")
    if isinstance(groups, bool) or not isinstance(groups, int | np.integer):
        raise TypeError(f"groups must be an int, got {type(groups).__name__} {groups!r}")
    groups = int(groups)
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    n, c_in, h, w_in = x.shape
    c_out, c_per_group, kh, kw = w.shape
    if c_out % groups != 0:
        raise ValueError(
            f"w: C_out = w.shape[0] = {c_out} must be divisible by groups = {groups}"
        )
    if c_in % groups != 0:
        raise ValueError(f"x: C_in = x.shape[1] = {c_in} must be divisible by groups = {groups}")
    if c_in != c_per_group * groups:
        raise ValueError(
            f"x has C_in = x.shape[1] = {c_in} channels but w expects "
            f"w.shape[1] * groups = {c_per_group} * {groups} = {c_per_group * groups}"
        )
    if b is not None:
        _require_float_array(b, "b")
        if b.shape != (c_out,):
            raise ValueError(f"b must have shape (C_out,) = ({c_out},), got {b.shape}")
        if b.dtype != x.dtype:
            raise TypeError(f"b must have the same dtype as x ({x.dtype}), got {b.dtype}")
    stride = pair(stride, "stride", minimum=1)
    padding = pair(padding, "padding", minimum=0)
    dilation = pair(dilation, "dilation", minimum=1)
    # Raises a ValueError showing the formula when the kernel does not fit.
    h_out, w_out = conv2d_output_shape(
        (h, w_in), (kh, kw), stride=stride, padding=padding, dilation=dilation
    )
    return ConvCache(
        x, w, b is not None, stride, padding, dilation, groups, (n, c_out, h_out, w_out)
    )


# ----------------------------------------------------------------------------------------
# The algorithm as taught: loops
# ----------------------------------------------------------------------------------------


def conv2d_forward_naive(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) with explicit loops: the definition, slowly.

    For output channel ``o`` in group ``g = o // (C_out/groups)``, whose input channels are
    ``c = g*C_in/groups, ..., (g+1)*C_in/groups - 1``:

    .. math::
        \\text{out}[n, o, i, j] = b[o] + \\sum_{c, p, q}
            w[o, c - g C_{in}/G, p, q] \\,
            x_{\\text{pad}}[n, c, \\, i S_H + p D_H, \\, j S_W + q D_W]

    where :math:`x_{\\text{pad}}` is ``x`` with ``padding`` zeros on each side. The loops run
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
    cache = _check_conv_args(x, w, b, stride, padding, dilation, groups)
    (sh, sw), (ph, pw), (dh, dw) = cache.stride, cache.padding, cache.dilation
    n_batch, c_out, h_out, w_out = cache.out_shape
    c_per_group = w.shape[1]
    o_per_group = c_out // groups
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C_in, H + 2pH, W + 2pW)
    out = np.zeros(cache.out_shape, dtype=x.dtype)  # (N, C_out, H_out, W_out)
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
                    out[n, o, i, j] = np.vdot(patch, w[o])
            if b is not None:
                out[n, o] += b[o]
    return out, cache


# ----------------------------------------------------------------------------------------
# The fast path: im2col in cache-sized chunks, one BLAS product per chunk and group
# ----------------------------------------------------------------------------------------
#
# Layout. A chunk of n images is copied, zero-padded, into a flat scratch buffer laid out
# (C, n, hp, wp), channel-major, so that the columns of the whole chunk form one matrix
# and each pass is one large product per group. (Per-image products ran BLAS at ~100
# GFLOP/s on the 14x14 shape, one product per chunk at ~170.) The rows of that matrix
# are ordered (group, kernel tap p, kernel tap q, channel) and its columns (image, i, j).
#
# Stride 1: outputs are computed on padded rows, w_work = wp, not only on the valid
# W_out columns. The window of output (i, j) then starts at flat offset i*wp + j of its
# plane, so for one kernel tap the columns of an image are ONE contiguous run of the
# buffer, shifted by p*dH*wp + q*dW. Outputs in the extra columns (and rows, below)
# read across the end of a row (or plane, or into the `tail` zeros after the buffer) and
# are thrown away; in the backward pass their upstream gradient is zero, so they add
# nothing to dx or dw.
# How many rows is where forward and backward differ (times: float32, 2 threads):
#
# - Forward: h_work = H_out rows per plane. Each tap's columns are one run of H_out*wp
#   per (channel, image), long enough to copy at full speed, and the product does
#   H_out*wp / (H_out*W_out) times the needed multiply-adds: 1.14x on 14x14 with a 3x3
#   kernel and padding 1, 1.06x on 32x32, against 1.31x and 1.13x for whole planes.
#   Forward, best of 21: 4.40 against 4.81 ms on (128, 16, 14, 14), 41.9 against 48.1 ms
#   on (64, 64, 32, 32).
# - Backward: h_work = hp, whole planes. Then the runs of consecutive images join up:
#   one tap of one channel is a single run over the whole chunk, and col2im is kH*kW*C
#   contiguous additions. NumPy's per-run cost dominates these additions: col2im took
#   0.81 ms with whole planes and 1.65 ms with H_out rows on 14x14 (6.6 and 15.8 ms on
#   32x32), more than the products save, and 20 ms with exact windows on 32x32.
#
# Other strides: exact windows, (h_work, w_work) = (H_out, W_out), no tail.
#
# col2im by np.add.at with precomputed flat indices was measured too: 2.5-3x slower
# than the slice additions on all four benchmark shapes (e.g. 56 ms against 20 ms, and
# against 5.5 ms for the contiguous runs, on 64x64x32x32), with an index array as big
# as the column matrix. So: slice additions.
#
# Measured and rejected (best of 15-25 runs, float32, 2 threads):
# - dx as the "full" convolution of dout with the flipped weights (im2col of dout, one
#   product with K = kH*kW*C_out): per chunk 0.43 against 0.32 ms on 14x14, 0.60 against
#   0.57 ms on 32x32, 0.52 against 0.19 ms on LeNet. The product is no faster (OpenBLAS
#   runs W^T @ dout, contracting only C_out, at the same ~190 GFLOP/s), and im2col of
#   dout writes a kH*kW*C_out-row matrix, while col2im accumulates into C_in rows that
#   stay in cache.
# - dW without im2col, as one product per tap on a shifted view of the padded buffer:
#   59 against 132 GFLOP/s on 14x14 (long, thin products), 118 against 176 on 32x32.
# - The transposed orientation, (positions, K) @ (K, C_out): within 5% either way.
# - Splitting im2col's copy between two threads: 0.08 against 0.05 ms per chunk.
# - db summed per chunk from the gradient buffer: 1.15 against 0.7 ms for one
#   dout.sum() on 32x32, even with the chunk in cache.

# Target size of one chunk's column matrix: the columns written by the copy are still in
# cache when the product reads them. 1-8 MiB measured about equally good; 0.5 MiB (more
# chunks, more per-call overhead) and 16 MiB worse.
_CHUNK_BYTES = 2 * 2**20

_scratch = threading.local()  # per-thread, so concurrent calls never share a buffer


def _workspace(role: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialized scratch array of ``shape``, reused between calls.

    One flat buffer per (thread, role, dtype), grown when a call needs more. Callers
    overwrite what they read and never return the buffer or a view of it.
    """
    buffers = getattr(_scratch, "buffers", None)
    if buffers is None:
        buffers = _scratch.buffers = {}
    size = int(np.prod(shape))
    key = (role, np.dtype(dtype))
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        buf = buffers[key] = np.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


class _Layout(NamedTuple):
    """Sizes of the fast path's scratch buffers for one convolution."""

    chunk: int  # images per chunk
    hp: int  # padded input height, H + 2*pH
    wp: int  # padded input width, W + 2*pW
    h_work: int  # output rows computed per image: H_out, or hp for whole planes
    w_work: int  # output columns computed per row: wp when stride is 1, else W_out
    tail: int  # zeros after the padded chunk, read only by thrown-away outputs


def _layout(cache: ConvCache, *, whole_planes: bool = False) -> _Layout:
    """The forward pass's layout, or with ``whole_planes`` the backward pass's (which
    differs only for stride 1; see the notes above ``_CHUNK_BYTES``)."""
    _, c_in, h, w = cache.x.shape
    _, _, kh, kw = cache.w.shape
    _, _, h_out, w_out = cache.out_shape
    (ph, pw), (dh, dw) = cache.padding, cache.dilation
    hp, wp = h + 2 * ph, w + 2 * pw
    if cache.stride == (1, 1) and whole_planes:
        h_work, w_work, tail = hp, wp, (kh - 1) * dh * wp + (kw - 1) * dw
    elif cache.stride == (1, 1):
        h_work, w_work, tail = h_out, wp, (kw - 1) * dw
    else:
        h_work, w_work, tail = h_out, w_out, 0
    col_bytes = c_in * kh * kw * h_work * w_work * cache.x.dtype.itemsize  # per image
    chunk = max(1, _CHUNK_BYTES // max(col_bytes, 1))
    return _Layout(chunk, hp, wp, h_work, w_work, tail)


def _weight_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """``(C_out, C_in/G, kH, kW)`` weights as ``(G, C_out/G, kH*kW*C_in/G)`` matrices,
    columns ordered (p, q, c) like the rows of the column matrix (a copy)."""
    c_out, c_group, kh, kw = w.shape
    w = w.reshape(groups, c_out // groups, c_group, kh, kw).transpose(0, 1, 3, 4, 2)
    return w.reshape(groups, c_out // groups, kh * kw * c_group)


def _padded_chunk(x_chunk: np.ndarray, cache: ConvCache, lay: _Layout) -> np.ndarray:
    """``x_chunk`` (n, C, H, W) zero-padded into flat scratch laid out (C, n, hp, wp),
    followed by ``lay.tail`` zeros."""
    n, c, h, w = x_chunk.shape
    ph, pw = cache.padding
    size = c * n * lay.hp * lay.wp
    buf = _workspace("xpad", (size + lay.tail,), x_chunk.dtype)
    if ph or pw:
        buf.fill(0)  # one memset beats zeroing the border strips one by one
    else:
        buf[size:] = 0
    img = buf[:size].reshape(c, n, lay.hp, lay.wp)
    img[:, :, ph : ph + h, pw : pw + w] = x_chunk.transpose(1, 0, 2, 3)
    return buf


def _windows(buf: np.ndarray, n: int, cache: ConvCache, lay: _Layout, *, writeable: bool):
    """Zero-copy view ``(G, kH, kW, C_in/G, n, h_work, w_work)`` of a padded chunk:
    ``[g, p, q, c, m, i, j]`` is the input value that tap ``(p, q)`` of channel ``c`` in
    group ``g`` multiplies for output ``(i, j)`` of image ``m``. Taps overlap in memory."""
    g = cache.groups
    c_group = cache.w.shape[1]
    kh, kw = cache.w.shape[2:]
    (sh, sw), (dh, dw) = cache.stride, cache.dilation
    plane = lay.hp * lay.wp
    strides = (c_group * n * plane, dh * lay.wp, dw, n * plane, plane, sh * lay.wp, sw)
    return as_strided(
        buf,
        shape=(g, kh, kw, c_group, n, lay.h_work, lay.w_work),
        strides=tuple(buf.itemsize * s for s in strides),
        writeable=writeable,
    )


def _im2col(xbuf: np.ndarray, n: int, cache: ConvCache, lay: _Layout) -> np.ndarray:
    """Columns of a padded chunk, in scratch: ``(G, kH*kW*C_in/G, n*h_work*w_work)``."""
    windows = _windows(xbuf, n, cache, lay, writeable=False)
    cols = _workspace("cols", windows.shape, xbuf.dtype)
    np.copyto(cols, windows)  # stride 1: block copies of H_out*wp (or n*hp*wp) values
    return cols.reshape(cache.groups, -1, n * lay.h_work * lay.w_work)


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) over a batch of images, by im2col and BLAS.

    Computes exactly ``torch.nn.functional.conv2d(x, w, b, stride, padding, dilation,
    groups)``:

    .. math::
        \\text{out}[n, o] = b[o] + \\sum_{c \\in \\text{group}(o)} w[o, c] \\star x[n, c]

    where :math:`\\star` is the 2-D cross-correlation (see :func:`conv2d_forward_naive`).

    Args:
        x: input of shape ``(N, C_in, H, W)``, float32 or float64.
        w: weights of shape ``(C_out, C_in/groups, kH, kW)``, same dtype as ``x``.
        b: bias of shape ``(C_out,)`` or ``None`` (no bias). Default ``None``.
        stride: step between windows, an int or ``(sH, sW)``. Default 1.
        padding: zeros added on each side, an int or ``(pH, pW)``. Default 0.
        dilation: spacing between kernel taps, an int or ``(dH, dW)``. Default 1.
        groups: split the channels into this many independent convolutions; ``C_in`` and
            ``C_out`` must both be divisible by it. Default 1.

    Returns:
        ``(out, cache)``: ``out`` of shape ``(N, C_out, H_out, W_out)`` and the dtype of
        ``x`` (a new array); ``cache`` a :class:`ConvCache` for :func:`conv2d_backward`.

    Shape:
        - Input: ``(N, C_in, H_in, W_in)``
        - Output: ``(N, C_out, H_out, W_out)`` where

        .. math::
            H_{out} = \\left\\lfloor \\frac{H_{in} + 2 \\cdot \\text{padding}[0]
                - \\text{dilation}[0] \\cdot (kH - 1) - 1}{\\text{stride}[0]} \\right\\rfloor + 1

        and likewise for :math:`W_{out}` with index 1 and ``kW``.

    Raises:
        TypeError: ``x``, ``w`` or ``b`` not a floating-point array, or their dtypes differ.
        ValueError: ``x`` or ``w`` not 4-D; ``C_in`` or ``C_out`` not divisible by
            ``groups``; ``C_in != w.shape[1] * groups``; ``b`` not of shape ``(C_out,)``;
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
    cache = _check_conv_args(x, w, b, stride, padding, dilation, groups)
    n_batch, c_out, h_out, w_out = cache.out_shape
    g = cache.groups
    lay = _layout(cache)
    w_mat = _weight_matrix(w, g)  # (G, C_out/G, K) with K = kH*kW*C_in/G
    out = np.empty(cache.out_shape, dtype=x.dtype)  # (N, C_out, H_out, W_out)
    for n0 in range(0, n_batch, lay.chunk):
        n1 = min(n0 + lay.chunk, n_batch)
        xbuf = _padded_chunk(x[n0:n1], cache, lay)
        cols = _im2col(xbuf, n1 - n0, cache, lay)  # (G, K, M) with M = n*h_work*w_work
        res = _workspace("res", (g, c_out // g, cols.shape[2]), x.dtype)
        np.matmul(w_mat, cols, out=res)  # (G, C_out/G, M): one product per group
        res = res.reshape(c_out, n1 - n0, lay.h_work, lay.w_work)
        valid = res[:, :, :h_out, :w_out].transpose(1, 0, 2, 3)  # (n, C_out, H_out, W_out)
        if b is None:
            out[n0:n1] = valid
        else:  # the bias rides along with the copy into NCHW: one pass over out, not two
            np.add(valid, b.reshape(1, c_out, 1, 1), out=out[n0:n1])
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
    _require_float_array(dout, "dout")
    if dout.shape != cache.out_shape:
        raise ValueError(
            f"dout must have the forward output's shape (N, C_out, H_out, W_out) = "
            f"{cache.out_shape}, got {dout.shape}"
        )
    x, w = cache.x, cache.w
    if dout.dtype != x.dtype:
        raise TypeError(f"dout must have the forward pass's dtype {x.dtype}, got {dout.dtype}")
    n_batch, c_out, h_out, w_out = cache.out_shape
    _, c_in, h, w_in = x.shape
    c_group, kh, kw = w.shape[1:]
    ph, pw = cache.padding
    g = cache.groups
    lay = _layout(cache, whole_planes=True)
    w_mat = _weight_matrix(w, g)  # (G, C_out/G, K)
    db = dout.sum(axis=(0, 2, 3)) if cache.has_bias else None  # (C_out,)
    dw_t = np.zeros((g, w_mat.shape[2], c_out // g), dtype=w.dtype)  # (G, K, C_out/G)
    dx = np.empty(x.shape, dtype=x.dtype)  # (N, C_in, H, W): every element written below
    plane_size = c_in * lay.hp * lay.wp  # per image

    for n0 in range(0, n_batch, lay.chunk):
        n1 = min(n0 + lay.chunk, n_batch)
        n = n1 - n0
        # Upstream gradient in the columns' layout, zero for the thrown-away outputs.
        dres = _workspace("res", (c_out, n, lay.h_work, lay.w_work), x.dtype)
        if (lay.h_work, lay.w_work) != (h_out, w_out):
            dres.fill(0)
        dres[:, :, :h_out, :w_out] = dout[n0:n1].transpose(1, 0, 2, 3)
        dres = dres.reshape(g, c_out // g, -1)  # (G, C_out/G, M)

        # Recompute this chunk's columns rather than keep all of them from the forward
        # pass: the copy is cheap next to the products, and the memory stays cache-sized.
        cols = _im2col(_padded_chunk(x[n0:n1], cache, lay), n, cache, lay)  # (G, K, M)
        # dW^T = cols @ dout^T: BLAS ran this orientation 1.1-1.4x faster than dout @ cols^T.
        dw_part = _workspace("dw", dw_t.shape, x.dtype)
        np.matmul(cols, dres.transpose(0, 2, 1), out=dw_part)  # (G, K, C_out/G)
        dw_t += dw_part

        dcols = cols  # the columns are used up: their buffer takes their gradient
        np.matmul(w_mat.transpose(0, 2, 1), dres, out=dcols)  # (G, K, M)

        # col2im: one slice addition per kernel tap adds the gradient of every window of
        # the chunk at once (with stride 1, one run per channel). Taps overlap, so they
        # must be separate additions; within a tap no two windows share an element.
        dxbuf = _workspace("dxpad", (n * plane_size + lay.tail,), x.dtype)
        dxbuf.fill(0)
        dx_windows = _windows(dxbuf, n, cache, lay, writeable=True)
        dcols = dcols.reshape(dx_windows.shape)  # (G, kH, kW, C_in/G, n, h_work, w_work)
        for p in range(kh):
            for q in range(kw):
                dx_windows[:, p, q] += dcols[:, p, q]
        dx_img = dxbuf[: n * plane_size].reshape(c_in, n, lay.hp, lay.wp)
        dx[n0:n1] = dx_img[:, :, ph : ph + h, pw : pw + w_in].transpose(1, 0, 2, 3)

    # (G, kH*kW*C_in/G, C_out/G) -> (C_out, C_in/G, kH, kW), a new array
    dw = dw_t.reshape(g, kh, kw, c_group, c_out // g).transpose(0, 4, 3, 1, 2)
    return dx, dw.reshape(w.shape), db

"""The engine under :func:`d2lcnn.numpy.conv.conv2d_forward` and ``conv2d_backward``: im2col
in cache-sized chunks, tuned and measured.

:mod:`d2lcnn.numpy.conv` shows the algorithm (per chunk of images: copy every receptive
field into a column, one matrix product per group, and for the backward pass the transposed
products and col2im); this module holds the building blocks it calls and the reasons for
their shapes. Nothing here checks arguments: :mod:`d2lcnn.numpy.conv` has done that.

Layout. A chunk of n images is copied, zero-padded, into a flat scratch buffer laid out
(C, n, hp, wp), channel-major, so that the columns of the whole chunk form one matrix and
each pass is one large product per group. (Per-image products ran BLAS at ~100 GFLOP/s on
the 14x14 shape, one product per chunk at ~170.) The rows of that matrix are ordered
(group, kernel tap p, kernel tap q, channel) and its columns (image, i, j). The copy reads
a zero-copy window view of the padded buffer (:func:`numpy.lib.stride_tricks.as_strided`).

Stride 1: outputs are computed on padded rows, ``w_work = wp``, not only on the valid
``W_out`` columns. The window of output (i, j) then starts at flat offset ``i*wp + j`` of its
plane, so for one kernel tap the columns of an image are ONE contiguous run of the buffer,
shifted by ``p*dH*wp + q*dW``. Outputs in the extra columns (and rows, below) read across the
end of a row (or plane, or into the ``tail`` zeros after the buffer) and are thrown away; in
the backward pass their upstream gradient is zero, so they add nothing to dx or dw. How many
rows is where forward and backward differ (times: float32, 2 threads):

- Forward: ``h_work = H_out`` rows per plane. Each tap's columns are one run of
  ``H_out*wp`` per (channel, image), long enough to copy at full speed, and the product does
  ``H_out*wp / (H_out*W_out)`` times the needed multiply-adds: 1.14x on 14x14 with a 3x3
  kernel and padding 1, 1.06x on 32x32, against 1.31x and 1.13x for whole planes.
  Forward, best of 21: 4.40 against 4.81 ms on (128, 16, 14, 14), 41.9 against 48.1 ms
  on (64, 64, 32, 32).
- Backward: ``h_work = hp``, whole planes. Then the runs of consecutive images join up:
  one tap of one channel is a single run over the whole chunk, and col2im is ``kH*kW*C``
  contiguous additions. NumPy's per-run cost dominates these additions: col2im took
  0.81 ms with whole planes and 1.65 ms with ``H_out`` rows on 14x14 (6.6 and 15.8 ms on
  32x32), more than the products save, and 20 ms with exact windows on 32x32.

Other strides: exact windows, ``(h_work, w_work) = (H_out, W_out)``, no tail.

col2im by ``np.add.at`` with precomputed flat indices was measured too: 2.5-3x slower than
the slice additions on all four benchmark shapes (e.g. 56 ms against 20 ms, and against
5.5 ms for the contiguous runs, on 64x64x32x32), with an index array as big as the column
matrix. So: slice additions.

Measured and rejected (best of 15-25 runs, float32, 2 threads):

- dx as the "full" convolution of dout with the flipped weights (im2col of dout, one
  product with ``K = kH*kW*C_out``): per chunk 0.43 against 0.32 ms on 14x14, 0.60 against
  0.57 ms on 32x32, 0.52 against 0.19 ms on LeNet. The product is no faster (OpenBLAS runs
  ``W^T @ dout``, contracting only ``C_out``, at the same ~190 GFLOP/s), and im2col of dout
  writes a ``kH*kW*C_out``-row matrix, while col2im accumulates into ``C_in`` rows that stay
  in cache.
- dW without im2col, as one product per tap on a shifted view of the padded buffer:
  59 against 132 GFLOP/s on 14x14 (long, thin products), 118 against 176 on 32x32.
- The transposed orientation, ``(positions, K) @ (K, C_out)``: within 5% either way.
- Splitting im2col's copy between two threads: 0.08 against 0.05 ms per chunk.
- db summed per chunk from the gradient buffer: 1.15 against 0.7 ms for one
  ``dout.sum()`` on 32x32, even with the chunk in cache.

Thread safety: the scratch buffers are per thread (:class:`threading.local`), so calls from
different threads do not interfere. Every function that returns scratch says so; the
convolution copies out of it and never returns scratch (or a view of it) to its caller.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

if TYPE_CHECKING:
    from d2lcnn.numpy.conv import ConvCache

__all__ = [
    "CHUNK_BYTES",
    "Layout",
    "layout",
    "workspace",
    "weight_matrix",
    "weight_from_matrix",
    "im2col",
    "product",
    "outputs",
    "output_grad",
    "col2im",
]

# Target size of one chunk's column matrix: the columns written by the copy are still in
# cache when the product reads them. 1-8 MiB measured about equally good; 0.5 MiB (more
# chunks, more per-call overhead) and 16 MiB worse.
CHUNK_BYTES = 2 * 2**20

_scratch = threading.local()  # per-thread, so concurrent calls never share a buffer


def workspace(role: str, shape: tuple[int, ...], dtype) -> np.ndarray:
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


class Layout(NamedTuple):
    """Sizes of the scratch buffers for one convolution."""

    chunk: int  # images per chunk
    hp: int  # padded input height, H + 2*pH
    wp: int  # padded input width, W + 2*pW
    h_work: int  # output rows computed per image: H_out, or hp for whole planes
    w_work: int  # output columns computed per row: wp when stride is 1, else W_out
    tail: int  # zeros after the padded chunk, read only by thrown-away outputs

    def chunks(self, n_batch: int) -> Iterator[tuple[int, int]]:
        """``(n0, n1)``: the images ``n0 <= n < n1`` of each chunk of a batch."""
        for n0 in range(0, n_batch, self.chunk):
            yield n0, min(n0 + self.chunk, n_batch)


def layout(cache: ConvCache, *, whole_planes: bool = False) -> Layout:
    """The forward pass's layout, or with ``whole_planes`` the backward pass's (which
    differs only for stride 1; see the module's notes)."""
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
    chunk = max(1, CHUNK_BYTES // max(col_bytes, 1))
    return Layout(chunk, hp, wp, h_work, w_work, tail)


def weight_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """``(C_out, C_in/G, kH, kW)`` weights as ``(G, C_out/G, kH*kW*C_in/G)`` matrices,
    columns ordered (p, q, c) like the rows of the column matrix (a copy)."""
    c_out, c_group, kh, kw = w.shape
    w = w.reshape(groups, c_out // groups, c_group, kh, kw).transpose(0, 1, 3, 4, 2)
    return w.reshape(groups, c_out // groups, kh * kw * c_group)


def weight_from_matrix(w_t: np.ndarray, shape: tuple[int, int, int, int]) -> np.ndarray:
    """The inverse of :func:`weight_matrix`, transposed: ``(G, kH*kW*C_in/G, C_out/G)``
    back to ``shape = (C_out, C_in/G, kH, kW)`` (a new array)."""
    c_out, c_group, kh, kw = shape
    g = w_t.shape[0]
    return w_t.reshape(g, kh, kw, c_group, c_out // g).transpose(0, 4, 3, 1, 2).reshape(shape)


def _padded_chunk(x_chunk: np.ndarray, cache: ConvCache, lay: Layout) -> np.ndarray:
    """``x_chunk`` (n, C, H, W) zero-padded into flat scratch laid out (C, n, hp, wp),
    followed by ``lay.tail`` zeros."""
    n, c, h, w = x_chunk.shape
    ph, pw = cache.padding
    size = c * n * lay.hp * lay.wp
    buf = workspace("xpad", (size + lay.tail,), x_chunk.dtype)
    if ph or pw:
        buf.fill(0)  # one memset beats zeroing the border strips one by one
    else:
        buf[size:] = 0
    img = buf[:size].reshape(c, n, lay.hp, lay.wp)
    img[:, :, ph : ph + h, pw : pw + w] = x_chunk.transpose(1, 0, 2, 3)
    return buf


def _windows(buf: np.ndarray, n: int, cache: ConvCache, lay: Layout, *, writeable: bool):
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


def im2col(x_chunk: np.ndarray, cache: ConvCache, lay: Layout) -> np.ndarray:
    """The columns of a chunk of images ``(n, C_in, H, W)``, in scratch:
    ``(G, kH*kW*C_in/G, n*h_work*w_work)``, one column per output position, one row per
    weight of a group."""
    n = x_chunk.shape[0]
    windows = _windows(_padded_chunk(x_chunk, cache, lay), n, cache, lay, writeable=False)
    cols = workspace("cols", windows.shape, x_chunk.dtype)
    np.copyto(cols, windows)  # stride 1: block copies of H_out*wp (or n*hp*wp) values
    return cols.reshape(cache.groups, -1, n * lay.h_work * lay.w_work)


def product(a: np.ndarray, b: np.ndarray, role: str) -> np.ndarray:
    """``a @ b`` for stacks of matrices ``(G, m, k) @ (G, k, n)``, into the scratch buffer
    named ``role``: ``(G, m, n)``."""
    out = workspace(role, (a.shape[0], a.shape[1], b.shape[2]), a.dtype)
    return np.matmul(a, b, out=out)


def outputs(res: np.ndarray, cache: ConvCache, lay: Layout) -> np.ndarray:
    """The valid outputs of a chunk's product ``(G, C_out/G, n*h_work*w_work)``, as a view
    ``(n, C_out, H_out, W_out)`` (the computed-and-thrown-away ones dropped)."""
    _, c_out, h_out, w_out = cache.out_shape
    res = res.reshape(c_out, -1, lay.h_work, lay.w_work)
    return res[:, :, :h_out, :w_out].transpose(1, 0, 2, 3)


def output_grad(dout_chunk: np.ndarray, cache: ConvCache, lay: Layout) -> np.ndarray:
    """The inverse of :func:`outputs`: a chunk of the upstream gradient ``(n, C_out, H_out,
    W_out)`` in the columns' layout ``(G, C_out/G, n*h_work*w_work)``, in scratch, zero for
    the thrown-away outputs."""
    n = dout_chunk.shape[0]
    _, c_out, h_out, w_out = cache.out_shape
    dres = workspace("res", (c_out, n, lay.h_work, lay.w_work), dout_chunk.dtype)
    if (lay.h_work, lay.w_work) != (h_out, w_out):
        dres.fill(0)
    dres[:, :, :h_out, :w_out] = dout_chunk.transpose(1, 0, 2, 3)
    return dres.reshape(cache.groups, c_out // cache.groups, -1)


def col2im(dcols: np.ndarray, n: int, cache: ConvCache, lay: Layout) -> np.ndarray:
    """Scatter-add column gradients ``(G, kH*kW*C_in/G, n*h_work*w_work)`` back onto the
    chunk's ``n`` images: every input pixel receives the sum over the windows that read it.
    Returns a view of scratch, ``(n, C_in, H, W)``, padding cropped.

    One slice addition per kernel tap adds the gradient of every window of the chunk at once
    (with stride 1, one run per channel). Taps overlap, so they must be separate additions;
    within a tap no two windows share an element.
    """
    _, c_in, h, w = cache.x.shape
    ph, pw = cache.padding
    kh, kw = cache.w.shape[2:]
    plane_size = c_in * lay.hp * lay.wp  # per image
    dxbuf = workspace("dxpad", (n * plane_size + lay.tail,), dcols.dtype)
    dxbuf.fill(0)
    dx_windows = _windows(dxbuf, n, cache, lay, writeable=True)
    dcols = dcols.reshape(dx_windows.shape)  # (G, kH, kW, C_in/G, n, h_work, w_work)
    for p in range(kh):
        for q in range(kw):
            dx_windows[:, p, q] += dcols[:, p, q]
    dx_img = dxbuf[: n * plane_size].reshape(c_in, n, lay.hp, lay.wp)
    return dx_img[:, :, ph : ph + h, pw : pw + w].transpose(1, 0, 2, 3)

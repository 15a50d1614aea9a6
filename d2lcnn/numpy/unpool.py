"""2-D max unpooling in NumPy, forward and backward, with ``torch.nn.functional.max_unpool2d``
semantics (NCHW): the partial inverse of max pooling.

Max pooling with ``return_indices=True`` remembers where each maximum came from (the flat
position ``h * W + w`` in its ``(n, c)`` plane). Unpooling writes every value back to its
position in a zero plane of the pre-pooling size: the maxima return to their places, every
other element is 0. Nothing is learned and nothing is interpolated.

Where it is used:

- **SegNet-style decoders** (Badrinarayanan et al., 2017): each decoder stage unpools with the
  indices of the matching encoder pooling, so boundaries come back at the positions where
  the encoder found them, and only a few integers per window cross from encoder to decoder
  (a U-Net copies whole feature maps instead).
- **Visualizing a CNN** (Zeiler and Fergus's deconvnet, 2014): the "switches" of each pooling
  route a feature's activation back towards the pixels that caused it.

It is the *transposed* view of pooling, next to ``conv_transpose2d_forward`` (the transposed
view of convolution): once the winners are chosen, max pooling is a linear map that selects
one element per window, and unpooling applies its transpose. So when the windows do not
overlap, ``max_unpool2d_forward(dout, indices)`` is exactly the ``max_pool2d_backward`` of
``dout``; and the backward of unpooling selects again (a gather).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from d2lcnn.geometry import max_unpool2d_output_shape
from d2lcnn.numpy._checks import check_array, check_dout

__all__ = ["MaxUnpool2dCache", "max_unpool2d_forward", "max_unpool2d_backward"]


class MaxUnpool2dCache(NamedTuple):
    """What :func:`max_unpool2d_backward` needs from the forward pass."""

    input_shape: tuple[int, int, int, int]  # (N, C, H_in, W_in)
    indices: np.ndarray  # (N, C, H_in * W_in), intp: each input's flat position in its plane
    out_shape: tuple[int, int, int, int]  # (N, C, H_out, W_out)


def _check_indices(indices, input_shape, plane: int, fn: str) -> None:
    """``indices``: an integer array of ``input``'s shape, each in ``[0, plane)``."""
    check_array(indices, "indices", fn, floating=False)
    if not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"{fn}: indices must be an integer array, got dtype {indices.dtype}")
    if indices.shape != tuple(input_shape):
        raise ValueError(
            f"{fn}: indices must have input's shape {tuple(input_shape)}, got {indices.shape}"
        )
    bad = (indices < 0) | (indices >= plane)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{fn}: indices must lie in [0, H_out * W_out) = [0, {plane}), got "
            f"{indices[where]} at {where}"
        )


def max_unpool2d_forward(
    input: np.ndarray, indices: np.ndarray, *, kernel_size, stride=None, padding=0, output_size=None
) -> tuple[np.ndarray, MaxUnpool2dCache]:
    """2-D max unpooling, as ``torch.nn.functional.max_unpool2d``: put each value of ``input``
    at its position ``indices`` in a zero ``(H_out, W_out)`` plane.

    ``indices`` are those of :func:`d2lcnn.numpy.pool.max_pool2d_forward` with
    ``return_indices=True`` (flat positions ``h * W_out + w``), and ``kernel_size``,
    ``stride``, ``padding`` those of that pooling; they only set the default output size.
    Where several values share a position (overlapping windows that picked the same
    maximum) the last one in row-major order is kept, as PyTorch does on the CPU.

    Args:
        input: ``(N, C, H_in, W_in)``, floating point, e.g. pooled features.
        indices: integer array of ``input``'s shape, each in ``[0, H_out * W_out)``.
        kernel_size: the pooling window ``K`` or ``(kH, kW)``.
        stride: the pooling stride ``S`` or ``(sH, sW)``. Default: ``kernel_size``.
        padding: the pooling padding ``P`` or ``(pH, pW)``. Default 0.
        output_size: ``(H_out, W_out)`` or ``(N, C, H_out, W_out)``, to undo a pooling that
            rounded its output size down; strictly within one stride of the default.
            Default None (the default size below).

    Returns:
        ``(out, cache)``: ``out`` is ``(N, C, H_out, W_out)`` with ``input``'s dtype, zero
        except at ``indices``; ``cache`` is a :class:`MaxUnpool2dCache` for
        :func:`max_unpool2d_backward`.

    Shape:
        - Input and indices: :math:`(N, C, H_{in}, W_{in})`
        - Output: :math:`(N, C, H_{out}, W_{out})`, by default

          .. math::
              H_{out} = (H_{in} - 1) S - 2P + K

          and likewise for ``W_out``.

    Raises:
        TypeError: if ``input`` is not a floating-point array, ``indices`` not an integer
            array, or an argument not an int/pair.
        ValueError: if ``input`` is not 4-D, ``indices`` has another shape or a position
            outside the output plane, or ``output_size`` is invalid.

    Example:
        >>> from d2lcnn.numpy.pool import max_pool2d_forward
        >>> x = np.array([[[[1.0, 2.0], [4.0, 3.0]]]])
        >>> (y, indices), _ = max_pool2d_forward(x, kernel_size=2, return_indices=True)
        >>> y, indices
        (array([[[[4.]]]]), array([[[[2]]]]))
        >>> max_unpool2d_forward(y, indices, kernel_size=2)[0]
        array([[[[0., 0.],
                 [4., 0.]]]])
    """
    fn = "max_unpool2d_forward"
    check_array(input, "input", fn, ndim=4, layout="(N, C, H, W)")
    n, c, h, w = input.shape
    try:
        h_out, w_out = max_unpool2d_output_shape(
            (h, w), kernel_size, stride=stride, padding=padding, output_size=output_size
        )
    except (TypeError, ValueError) as error:  # name the function too
        raise type(error)(f"{fn}: {error}") from None
    _check_indices(indices, input.shape, h_out * w_out, fn)
    flat = indices.reshape(n, c, h * w).astype(np.intp, copy=False)  # (N, C, H_in*W_in)
    out = np.zeros((n, c, h_out * w_out), dtype=input.dtype)  # (N, C, H_out*W_out)
    # A scatter; with repeated positions NumPy's assignment keeps the last value.
    np.put_along_axis(out, flat, input.reshape(n, c, h * w), axis=2)
    out_shape = (n, c, h_out, w_out)
    return out.reshape(out_shape), MaxUnpool2dCache(input.shape, flat, out_shape)


def max_unpool2d_backward(dout: np.ndarray, cache: MaxUnpool2dCache) -> np.ndarray:
    """Backward pass of :func:`max_unpool2d_forward`: the gradient with respect to ``input``.

    Each input value was copied to one output position, so its gradient is ``dout`` read at
    that position (a gather, the transpose of the forward's scatter). A value that lost a
    repeated position to a later one still receives that position's gradient, as in PyTorch.
    ``indices`` are integers and get no gradient.

    Args:
        dout: upstream gradient, ``(N, C, H_out, W_out)``.
        cache: from :func:`max_unpool2d_forward`.

    Returns:
        ``dx``, ``(N, C, H_in, W_in)``.

    Raises:
        ValueError: if ``dout`` does not have the forward output's shape.
    """
    dout = check_dout(dout, cache.out_shape, "max_unpool2d_backward")
    n, c = cache.out_shape[:2]
    dx = np.take_along_axis(dout.reshape(n, c, -1), cache.indices, axis=2)  # (N, C, H_in*W_in)
    return dx.reshape(cache.input_shape)

"""2-D max unpooling from a tensor primitive (``Tensor.scatter``), with
``torch.nn.functional.max_unpool2d`` semantics; differentiable by autograd, on any device.

The partial inverse of max pooling, used by SegNet-style decoders; see
:mod:`d2lcnn.numpy.unpool` for what it is for and why it is pooling's transpose.
"""

from __future__ import annotations

import torch

from d2lcnn.geometry import max_unpool2d_output_shape
from d2lcnn.torch._checks import check_images, check_tensor

__all__ = ["max_unpool2d"]


def _check_indices(indices, input, plane: int, fn: str) -> None:
    """``indices``: an integer tensor of ``input``'s shape and device, each in ``[0, plane)``."""
    check_tensor(indices, "indices", fn, floating=False)
    if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
        raise TypeError(f"{fn}: indices must be an integer tensor, got dtype {indices.dtype}")
    if indices.shape != input.shape:
        raise ValueError(
            f"{fn}: indices must have input's shape {tuple(input.shape)}, got "
            f"{tuple(indices.shape)}"
        )
    if indices.device != input.device:
        raise ValueError(
            f"{fn}: indices must be on input's device {input.device}, got {indices.device}"
        )
    bad = (indices < 0) | (indices >= plane)
    if bad.any():  # one device sync, for an error message instead of a device assert
        where = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"{fn}: indices must lie in [0, H_out * W_out) = [0, {plane}), got "
            f"{indices[where].item()} at {where}"
        )


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """2-D max unpooling, as ``torch.nn.functional.max_unpool2d``, from ``scatter``: put each
    value of ``input`` at its position ``indices`` in a zero ``(H_out, W_out)`` plane.

    ``indices`` are those of :func:`d2lcnn.torch.pool.max_pool2d` with ``return_indices=True``
    (flat positions ``h * W_out + w``), and ``kernel_size``, ``stride``, ``padding`` those of
    that pooling; they only set the default output size. It is the decoder half of a
    SegNet-style encoder-decoder, and pooling's transpose as ``conv_transpose2d`` is
    convolution's (see :mod:`d2lcnn.numpy.unpool`). Autograd's backward of ``scatter`` is a
    gather: each input value receives the gradient at its position. Where several values
    share a position, which one is kept is not specified (as in PyTorch); they are equal when
    the indices come from one max pooling.

    Args:
        input: ``(N, C, H_in, W_in)`` or ``(C, H_in, W_in)``, floating point.
        indices: integer tensor of ``input``'s shape and device, each in
            ``[0, H_out * W_out)``. (``F.max_unpool2d`` wants int64; any integer type works.)
        kernel_size: the pooling window ``K`` or ``(kH, kW)``.
        stride: the pooling stride ``S`` or ``(sH, sW)``. Default: ``kernel_size``.
        padding: the pooling padding ``P`` or ``(pH, pW)``. Default 0.
        output_size: ``(H_out, W_out)`` or ``(N, C, H_out, W_out)``, strictly within one
            stride of the default. Default None.

    Returns:
        ``(N, C, H_out, W_out)`` (or ``(C, H_out, W_out)``), on ``input``'s device and dtype,
        zero except at ``indices``.

    Shape:
        .. math::
            H_{out} = (H_{in} - 1) S - 2P + K

        by default, and likewise for ``W_out``.

    Raises:
        TypeError: if ``input`` is not a floating-point tensor, ``indices`` not an integer
            tensor, or an argument not an int/pair.
        ValueError: if ``input`` is not 3-D or 4-D, ``indices`` has another shape or device
            or a position outside the output plane, or ``output_size`` is invalid.

    Example:
        >>> from d2lcnn.torch.pool import max_pool2d
        >>> x = torch.tensor([[[[1.0, 2.0], [4.0, 3.0]]]])
        >>> y, indices = max_pool2d(x, 2, return_indices=True)
        >>> max_unpool2d(y, indices, 2)
        tensor([[[[0., 0.],
                  [4., 0.]]]])
    """
    fn = "max_unpool2d"
    check_images(input, "input", fn)
    try:
        h_out, w_out = max_unpool2d_output_shape(
            tuple(input.shape[-2:]), kernel_size, stride=stride, padding=padding,
            output_size=output_size,
        )
    except (TypeError, ValueError) as error:  # name the function too
        raise type(error)(f"{fn}: {error}") from None
    _check_indices(indices, input, h_out * w_out, fn)
    flat = indices.flatten(-2).long()  # (N, C, H_in*W_in) or (C, H_in*W_in)
    zeros = input.new_zeros((*input.shape[:-2], h_out * w_out))  # (..., H_out*W_out)
    out = zeros.scatter(-1, flat, input.flatten(-2))
    return out.unflatten(-1, (h_out, w_out))  # (N, C, H_out, W_out) or (C, H_out, W_out)

"""Resizing 4-D images like ``torch.nn.functional.interpolate`` (``'nearest'``,
``'bilinear'`` and ``'bicubic'``), from index arithmetic and weighted gathers; differentiable by
autograd (the gathers' backward adds each output's gradient back to the pixels it read, times
its weight), on the input's device.

The mapping and its arithmetic are PyTorch's, computed in the input's dtype (float32 for
float32 input, as in PyTorch's CPU kernels); see :mod:`d2lcnn.numpy.upsample` for the
formulas. No upsampling or interpolation op is called.
"""

from __future__ import annotations

import torch

from d2lcnn.checks import check_interpolate_mode
from d2lcnn.geometry import interpolate_output_shape
from d2lcnn.torch._checks import check_tensor

__all__ = ["interpolate"]
# upsample_nearest2d / upsample_bilinear2d below are shorthands named after PyTorch's
# deprecated F.upsample_*; importable from this module, not part of the package API.

_CUBIC_A = -0.75  # Keys' free parameter, as PyTorch (Keys himself proposed -0.5)


def _nearest_index(n_in, n_out, scale, device):
    """``min(floor(o * scale), n_in - 1)`` in float32, with PyTorch's exact shortcuts."""
    o = torch.arange(n_out, device=device)
    if n_out == n_in:
        return o  # a copy, whatever the scale_factor says
    if n_out == 2 * n_in:
        return o // 2
    if scale is not None:
        s = torch.tensor(1.0 / scale, dtype=torch.float32)  # rounded once to float32
    else:
        s = torch.tensor(n_in, dtype=torch.float32) / n_out
    src = torch.floor(o.to(torch.float32) * s.to(device)).long()
    return torch.clamp(src, max=n_in - 1)


def _source_coordinate(n_in, n_out, scale, align_corners, dtype, device):
    """``src`` of each output pixel (unclamped), ``(n_out,)``, in ``dtype`` arithmetic like
    PyTorch's ``area_pixel_compute_source_index``."""
    of = torch.arange(n_out, device=device).to(dtype)
    if align_corners:
        if n_out > 1:
            ratio = torch.tensor(n_in - 1, dtype=dtype) / (n_out - 1)
        else:
            ratio = torch.zeros((), dtype=dtype)
        return ratio.to(device) * of
    if scale is not None:
        ratio = torch.tensor(1.0 / scale, dtype=dtype)
    else:
        ratio = torch.tensor(n_in, dtype=dtype) / n_out
    return ratio.to(device) * (of + 0.5) - 0.5


def _floor_and_fraction(src, n_in):
    """``(i, t)``: ``i = min(floor(src), n_in - 1)``, ``t = clamp(src - i, 0, 1)``; floored in
    float32 even for float64 ``src``, as PyTorch's ``floorf``."""
    index = torch.clamp(torch.floor(src.float()).long(), max=n_in - 1)
    return index, torch.clamp(src - index.to(src.dtype), 0, 1)


def _bilinear_weights(n_in, n_out, scale, align_corners, dtype, device):
    """``(index, weight)``, each ``(n_out, 2)``: the two source pixels of each output pixel
    and their weights, in ``dtype`` arithmetic like PyTorch's kernel."""
    if n_out == n_in:  # PyTorch copies exactly when the size does not change
        o = torch.arange(n_out, device=device)
        return o[:, None], torch.ones(n_out, 1, dtype=dtype, device=device)
    src = torch.clamp(_source_coordinate(n_in, n_out, scale, align_corners, dtype, device), min=0)
    index0, lambda1 = _floor_and_fraction(src, n_in)
    index1 = torch.clamp(index0 + 1, max=n_in - 1)
    return torch.stack([index0, index1], dim=1), torch.stack([1 - lambda1, lambda1], dim=1)


def _cubic_near(x):
    """Keys' kernel ``W(x)`` for ``|x| <= 1`` (PyTorch's ``cubic_convolution1``)."""
    return ((_CUBIC_A + 2) * x - (_CUBIC_A + 3)) * x * x + 1


def _cubic_far(x):
    """Keys' kernel ``W(x)`` for ``1 < |x| < 2`` (PyTorch's ``cubic_convolution2``)."""
    return ((_CUBIC_A * x - 5 * _CUBIC_A) * x + 8 * _CUBIC_A) * x - 4 * _CUBIC_A


def _bicubic_weights(n_in, n_out, scale, align_corners, dtype, device):
    """``(index, weight)``, each ``(n_out, 4)``: source pixels ``i - 1 .. i + 2`` clamped to
    the image and their cubic weights. No shortcut for an unchanged size (PyTorch's forward
    interpolates then too, when a ``scale_factor`` other than 1 is given)."""
    src = _source_coordinate(n_in, n_out, scale, align_corners, dtype, device)  # may be < 0
    index, t = _floor_and_fraction(src, n_in)
    # W at the distances from src to pixels i - 1, i, i + 1, i + 2; they sum to 1.
    weight = torch.stack(
        [_cubic_far(t + 1.0), _cubic_near(t), _cubic_near(1.0 - t), _cubic_far((1.0 - t) + 1.0)],
        dim=1,
    )
    taps = torch.clamp(index[:, None] + torch.arange(-1, 3, device=device), 0, n_in - 1)
    return taps, weight


def _resample(input, rows, cols):
    """Weighted gathers along the columns, then the rows, each sum over the taps left to
    right (PyTorch's order). ``rows``/``cols`` are ``(index, weight)``, each ``(out, taps)``."""
    (ri, rw), (ci, cw) = rows, cols
    tmp = input[..., ci[:, 0]] * cw[:, 0]  # (N, C, H, W_out)
    for k in range(1, ci.shape[1]):
        tmp = tmp + input[..., ci[:, k]] * cw[:, k]
    out = tmp[:, :, ri[:, 0], :] * rw[:, 0, None]  # (N, C, H_out, W_out)
    for k in range(1, ri.shape[1]):
        out = out + tmp[:, :, ri[:, k], :] * rw[:, k, None]
    return out


def interpolate(
    input,
    size=None,
    scale_factor=None,
    mode="nearest",
    align_corners=None,
    recompute_scale_factor=None,
):
    """Resize ``(N, C, H, W)`` images, as ``torch.nn.functional.interpolate`` for modes
    ``'nearest'``, ``'bilinear'`` and ``'bicubic'``, by gathering rows and columns.

    Args:
        input: ``(N, C, H, W)``, floating point.
        size: ``H_out`` or ``(H_out, W_out)``. Give this or ``scale_factor``.
        scale_factor: a number or a pair: ``H_out = floor(H * scale_factor)``.
        mode: ``'nearest'``, ``'bilinear'`` (2x2 neighbours) or ``'bicubic'`` (4x4
            neighbours, Keys' kernel with ``a = -0.75``, border pixels repeated outward).
            Default ``'nearest'``. Bicubic weights can be negative, so its output is *not*
            bounded by the input's range: it overshoots at edges.
        align_corners: bilinear and bicubic only: align the corner pixels (True) or the pixel
            areas (False; None means False). Must be None for nearest.
        recompute_scale_factor: if True, map coordinates with ``in / out`` instead of the
            given ``1 / scale_factor``. Default None (like False).

    Returns:
        ``(N, C, H_out, W_out)`` on ``input``'s device with its dtype, computed as PyTorch's
        CPU kernels do on every device, with the exact autograd gradient. PyTorch itself
        special-cases bicubic when neither spatial size changes: its CPU backward returns the
        upstream gradient unchanged (and on CUDA its forward copies too), even when a
        ``scale_factor`` other than 1 makes its CPU forward interpolate.

    Raises:
        ValueError: a non-4-D ``input``, an unknown mode, ``align_corners`` with nearest, or bad
            ``size`` / ``scale_factor``.
        TypeError: a non-tensor or non-float ``input``.

    Example:
        >>> x = torch.tensor([[[[1.0, 2.0]]]])
        >>> interpolate(x, scale_factor=2, mode="bilinear")
        tensor([[[[1.0000, 1.2500, 1.7500, 2.0000],
                  [1.0000, 1.2500, 1.7500, 2.0000]]]])
        >>> interpolate(x, size=(1, 4), mode="bicubic")  # beyond [1, 2]
        tensor([[[[0.8945, 1.2266, 1.7734, 2.1055]]]])
    """
    check_tensor(input, "input", "interpolate", ndim=4, layout="(N, C, H, W)")
    check_interpolate_mode(mode, align_corners, "interpolate")
    h, w = input.shape[2:]
    (h_out, w_out), (scale_h, scale_w) = interpolate_output_shape(
        (h, w), size=size, scale_factor=scale_factor,
        recompute_scale_factor=recompute_scale_factor,
    )
    if mode == "nearest":
        rows = _nearest_index(h, h_out, scale_h, input.device)  # (H_out,)
        cols = _nearest_index(w, w_out, scale_w, input.device)  # (W_out,)
        return input[:, :, rows[:, None], cols[None, :]]  # (N, C, H_out, W_out)
    weights = _bilinear_weights if mode == "bilinear" else _bicubic_weights
    corners, dtype, device = bool(align_corners), input.dtype, input.device
    rows = weights(h, h_out, scale_h, corners, dtype, device)  # (H_out, taps) twice
    cols = weights(w, w_out, scale_w, corners, dtype, device)  # (W_out, taps) twice
    return _resample(input, rows, cols)  # (N, C, H_out, W_out)


def upsample_nearest2d(input, size=None, scale_factor=None):
    """``interpolate(x, size, scale_factor, mode='nearest')``, like ``F.upsample_nearest``."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear2d(input, size=None, scale_factor=None):
    """``interpolate(..., mode='bilinear', align_corners=True)``, like the deprecated
    ``F.upsample_bilinear``."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)

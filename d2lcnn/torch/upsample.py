"""Resizing 4-D images like ``torch.nn.functional.interpolate`` (``'nearest'`` and
``'bilinear'``), from index arithmetic and gathers; differentiable by autograd (the gathers'
backward adds each output's gradient back to the pixels it read), on the input's device.

The mapping and its arithmetic are PyTorch's, computed in the input's dtype (float32 for
float32 input, as in PyTorch's CPU kernels); see :mod:`d2lcnn.numpy.upsample` for the
formulas. No upsampling or interpolation op is called.
"""

from __future__ import annotations

import torch

from d2lcnn.geometry import interpolate_output_shape

__all__ = ["interpolate", "upsample_nearest2d", "upsample_bilinear2d"]

_MODES = ("nearest", "bilinear")


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


def _bilinear_weights(n_in, n_out, scale, align_corners, dtype, device):
    """``(index0, index1, lambda0, lambda1)``, each ``(n_out,)``: the two source pixels of
    each output pixel and their weights, in ``dtype`` arithmetic like PyTorch's kernel."""
    o = torch.arange(n_out, device=device)
    if n_out == n_in:  # PyTorch copies exactly when the size does not change
        ones = torch.ones(n_out, dtype=dtype, device=device)
        return o, o, ones, torch.zeros_like(ones)
    of = o.to(dtype)
    if align_corners:
        if n_out > 1:
            ratio = torch.tensor(n_in - 1, dtype=dtype) / (n_out - 1)
        else:
            ratio = torch.zeros((), dtype=dtype)
        src = ratio.to(device) * of
    else:
        if scale is not None:
            ratio = torch.tensor(1.0 / scale, dtype=dtype)
        else:
            ratio = torch.tensor(n_in, dtype=dtype) / n_out
        src = torch.clamp(ratio.to(device) * (of + 0.5) - 0.5, min=0)
    index0 = torch.clamp(torch.floor(src).long(), max=n_in - 1)
    lambda1 = torch.clamp(src - index0.to(dtype), 0, 1)
    index1 = torch.clamp(index0 + 1, max=n_in - 1)
    return index0, index1, 1 - lambda1, lambda1


def interpolate(
    x,
    size=None,
    scale_factor=None,
    mode="nearest",
    align_corners=None,
    recompute_scale_factor=None,
):
    """Resize ``(N, C, H, W)`` images, as ``torch.nn.functional.interpolate`` for modes
    ``'nearest'`` and ``'bilinear'``, by gathering rows and columns.

    Args:
        x: ``(N, C, H, W)``, floating point.
        size: ``H_out`` or ``(H_out, W_out)``. Give this or ``scale_factor``.
        scale_factor: a number or a pair: ``H_out = floor(H * scale_factor)``.
        mode: ``'nearest'`` or ``'bilinear'``. Default ``'nearest'``.
        align_corners: bilinear only: align the corner pixels (True) or the pixel areas
            (False; None means False). Must be None for nearest.
        recompute_scale_factor: if True, map coordinates with ``in / out`` instead of the
            given ``1 / scale_factor``. Default None (like False).

    Returns:
        ``(N, C, H_out, W_out)`` on ``x``'s device with its dtype.

    Raises:
        ValueError: a non-4-D ``x``, an unknown mode, ``align_corners`` with nearest, or bad
            ``size`` / ``scale_factor``.
        TypeError: a non-tensor or non-float ``x``.

    Example:
        >>> x = torch.tensor([[[[1.0, 2.0]]]])
        >>> interpolate(x, scale_factor=2, mode="bilinear")
        tensor([[[[1.0000, 1.2500, 1.7500, 2.0000],
                  [1.0000, 1.2500, 1.7500, 2.0000]]]])
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"interpolate: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"interpolate: x must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"interpolate: x must be floating point, got dtype {x.dtype}")
    if mode not in _MODES:
        raise ValueError(f"interpolate: mode must be one of {_MODES}, got {mode!r}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError(
            f"interpolate: align_corners can only be set with mode='bilinear', got "
            f"align_corners={align_corners!r} with mode='nearest'"
        )
    h, w = x.shape[2:]
    (h_out, w_out), (scale_h, scale_w) = interpolate_output_shape(
        (h, w), size=size, scale_factor=scale_factor,
        recompute_scale_factor=recompute_scale_factor,
    )
    if mode == "nearest":
        rows = _nearest_index(h, h_out, scale_h, x.device)  # (H_out,)
        cols = _nearest_index(w, w_out, scale_w, x.device)  # (W_out,)
        return x[:, :, rows[:, None], cols[None, :]]  # (N, C, H_out, W_out)
    h0, h1, lh0, lh1 = _bilinear_weights(h, h_out, scale_h, bool(align_corners), x.dtype, x.device)
    w0, w1, lw0, lw1 = _bilinear_weights(w, w_out, scale_w, bool(align_corners), x.dtype, x.device)
    # Columns, then rows: l0h (l0w x00 + l1w x01) + l1h (l0w x10 + l1w x11), PyTorch's order.
    tmp = x[..., w0] * lw0 + x[..., w1] * lw1  # (N, C, H, W_out)
    return tmp[:, :, h0, :] * lh0[:, None] + tmp[:, :, h1, :] * lh1[:, None]


def upsample_nearest2d(x, size=None, scale_factor=None):
    """``interpolate(x, size, scale_factor, mode='nearest')``, like ``F.upsample_nearest``."""
    return interpolate(x, size, scale_factor, mode="nearest")


def upsample_bilinear2d(x, size=None, scale_factor=None):
    """``interpolate(..., mode='bilinear', align_corners=True)``, like the deprecated
    ``F.upsample_bilinear``."""
    return interpolate(x, size, scale_factor, mode="bilinear", align_corners=True)

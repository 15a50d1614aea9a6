"""Output-size arithmetic for convolution and pooling, and receptive fields.

Every layer in both backends computes its output size here, so a geometry that
does not fit fails in one place with one clear message.

Rounding policy (the seeds' "stride 3 on a 7x7 input with a 3x3 filter doesn't
fit"): we follow ``torch.nn.functional`` and **floor**. With that input, the
third window would start at row 6 and run off the edge, so PyTorch silently
ignores the last row and column and returns a 2x2 output. That is convenient
and occasionally a bug, so :func:`conv2d_output_shape` and
:func:`pool2d_output_shape` take ``strict=True`` to raise a ``ValueError`` that
shows the arithmetic instead. Layers never use strict mode: they must agree
with torch bit for bit on every geometry torch accepts.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

__all__ = [
    "pair",
    "conv2d_output_shape",
    "conv2d_padding",
    "conv_transpose2d_output_shape",
    "interpolate_output_shape",
    "max_unpool2d_output_shape",
    "pool2d_output_shape",
    "receptive_field",
]


def pair(value, name: str, *, minimum: int = 0) -> tuple[int, int]:
    """Normalize an int or a pair of ints to a ``(height, width)`` tuple.

    Args:
        value: an ``int`` (used for both dimensions) or a sequence of two ints.
        name: the argument's name, quoted in error messages.
        minimum: the smallest value allowed for each entry.

    Raises:
        TypeError: if ``value`` is not an int or a pair of ints.
        ValueError: if an entry is smaller than ``minimum``.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a pair of ints, got bool {value!r}")
    if isinstance(value, int) or (hasattr(value, "__index__") and not isinstance(value, str)):
        hw = (int(value), int(value))
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
        hw = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(hw) < minimum:
        raise ValueError(f"{name} must be >= {minimum} in each dimension, got {value!r}")
    return hw


def _out_size(size, kernel, stride, padding, dilation, *, axis, what, strict, ceil_mode=False):
    """One dimension of ``floor((H + 2P - D(K-1) - 1) / S) + 1``, with the checks."""
    span = dilation * (kernel - 1) + 1  # extent of the (dilated) kernel
    padded = size + 2 * padding
    formula = (
        f"{axis}_out = floor(({axis}_in + 2*padding - dilation*(kernel_size-1) - 1) / stride) + 1"
        f" = floor(({size} + 2*{padding} - {dilation}*({kernel}-1) - 1) / {stride}) + 1"
    )
    numerator = padded - span
    if ceil_mode:
        out = -(-numerator // stride) + 1
        # torch: the last window must start inside the input or the left padding.
        if (out - 1) * stride >= size + padding:
            out -= 1
    else:
        out = numerator // stride + 1
    if out < 1:
        raise ValueError(
            f"{what}: the kernel does not fit in the input along {axis}: the padded input is "
            f"{size} + 2*{padding} = {padded} but the (dilated) kernel spans "
            f"dilation*(kernel_size-1)+1 = {dilation}*({kernel}-1)+1 = {span}; "
            f"{formula} = {out} < 1"
        )
    if strict and numerator % stride != 0:
        raise ValueError(
            f"{what}: stride {stride} does not fit along {axis}: {formula} = "
            f"floor({numerator / stride + 1:.4g}); ({numerator}) is not divisible by {stride}, "
            f"so the last {numerator % stride} row(s)/column(s) would be ignored. "
            f"Change the padding or the stride, or pass strict=False to floor like PyTorch."
        )
    return out


def conv2d_output_shape(
    input_size, kernel_size, *, stride=1, padding=0, dilation=1, strict: bool = False
) -> tuple[int, int]:
    """Spatial output size of a 2-D convolution (``torch.nn.Conv2d``'s formula).

    .. math::
        H_{out} = \\left\\lfloor \\frac{H_{in} + 2P - D(K - 1) - 1}{S} \\right\\rfloor + 1

    With ``D = 1`` this is the familiar ``(N - F + 2P) / S + 1``.

    Args:
        input_size: ``H`` or ``(H, W)`` of the input.
        kernel_size: ``K`` or ``(kH, kW)``.
        stride: ``S`` or ``(sH, sW)``, each >= 1. Default 1.
        padding: zero padding ``P`` on each side, or ``(pH, pW)``, each >= 0. Default 0.
        dilation: spacing ``D`` between kernel taps, each >= 1. Default 1.
        strict: if True, raise when the stride does not tile the padded input exactly
            (PyTorch floors silently). Default False.

    Returns:
        ``(H_out, W_out)``.

    Raises:
        ValueError: when the kernel is larger than the padded input, an argument is out of
            range, or (``strict=True``) the stride does not fit; the message shows the formula
            with the numbers.

    Example:
        >>> conv2d_output_shape(7, 3, stride=2)
        (3, 3)
        >>> conv2d_output_shape(32, 5, padding=2)
        (32, 32)
    """
    size = pair(input_size, "input_size", minimum=1)
    k = pair(kernel_size, "kernel_size", minimum=1)
    s = pair(stride, "stride", minimum=1)
    p = pair(padding, "padding", minimum=0)
    d = pair(dilation, "dilation", minimum=1)
    return tuple(
        _out_size(size[i], k[i], s[i], p[i], d[i], axis=ax, what="conv2d", strict=strict)
        for i, ax in enumerate("HW")
    )


def conv2d_padding(padding, kernel_size, *, stride=1, dilation=1) -> tuple[int, int, int, int]:
    """A convolution's ``padding`` argument as zeros ``(top, bottom, left, right)``.

    ``padding`` is what ``torch.nn.functional.conv2d`` accepts: an int, a pair of ints
    (the same on both sides), ``"valid"`` (no padding) or ``"same"`` (the output has the
    input's size; stride 1 only). ``"same"`` pads ``d (k - 1)`` (dilation times kernel size
    minus one) per axis in total; when that is odd the extra row or column goes at the bottom
    or right, as PyTorch does.

    Raises:
        ValueError: ``"same"`` with a stride other than 1, an unknown string, or a
            negative padding.
        TypeError: anything else that is not an int or a pair of ints.

    Example:
        >>> conv2d_padding("same", 4)
        (1, 2, 1, 2)
        >>> conv2d_padding((1, 0), 3)
        (1, 1, 0, 0)
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(
                f"padding must be an int, a pair of ints, 'valid' or 'same', got {padding!r}"
            )
        if pair(stride, "stride", minimum=1) != (1, 1):
            raise ValueError(f"padding='same' needs stride=1, got stride={stride!r}")
        (kh, kw), (dh, dw) = pair(kernel_size, "kernel_size", minimum=1), pair(
            dilation, "dilation", minimum=1
        )
        th, tw = dh * (kh - 1), dw * (kw - 1)
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    ph, pw = pair(padding, "padding", minimum=0)
    return (ph, ph, pw, pw)


def conv_transpose2d_output_shape(
    input_size, kernel_size, *, stride=1, padding=0, output_padding=0, dilation=1
) -> tuple[int, int]:
    """Spatial output size of a transposed convolution (``torch.nn.ConvTranspose2d``).

    .. math::
        H_{out} = (H_{in} - 1) S - 2P + D(K - 1) + P_{out} + 1

    ``output_padding`` must be smaller than either ``stride`` or ``dilation`` (as in torch).
    """
    size = pair(input_size, "input_size", minimum=1)
    k = pair(kernel_size, "kernel_size", minimum=1)
    s = pair(stride, "stride", minimum=1)
    p = pair(padding, "padding", minimum=0)
    op = pair(output_padding, "output_padding", minimum=0)
    d = pair(dilation, "dilation", minimum=1)
    out = []
    for i, ax in enumerate("HW"):
        if op[i] >= max(s[i], d[i]):
            raise ValueError(
                f"conv_transpose2d: output_padding along {ax} must be smaller than stride or "
                f"dilation, got output_padding={op[i]}, stride={s[i]}, dilation={d[i]}"
            )
        o = (size[i] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1
        if o < 1:
            raise ValueError(
                f"conv_transpose2d: {ax}_out = ({ax}_in-1)*stride - 2*padding + "
                f"dilation*(kernel_size-1) + output_padding + 1 = ({size[i]}-1)*{s[i]} - "
                f"2*{p[i]} + {d[i]}*({k[i]}-1) + {op[i]} + 1 = {o} < 1"
            )
        out.append(o)
    return tuple(out)


def pool2d_output_shape(
    input_size,
    kernel_size,
    *,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    strict: bool = False,
) -> tuple[int, int]:
    """Spatial output size of 2-D max/average pooling (``torch.nn.MaxPool2d``'s formula).

    Same formula as :func:`conv2d_output_shape`, with ``stride`` defaulting to
    ``kernel_size`` and, as in PyTorch, ``padding`` at most half the kernel size.
    With no padding and no dilation it is the seeds' ``(W - F) / S + 1``.

    Raises:
        ValueError: as :func:`conv2d_output_shape`, and when ``padding > kernel_size / 2``.
    """
    k = pair(kernel_size, "kernel_size", minimum=1)
    s = k if stride is None else pair(stride, "stride", minimum=1)
    p = pair(padding, "padding", minimum=0)
    d = pair(dilation, "dilation", minimum=1)
    size = pair(input_size, "input_size", minimum=1)
    for i, ax in enumerate("HW"):
        if 2 * p[i] > k[i]:
            raise ValueError(
                f"pool2d: padding should be at most half of kernel_size along {ax}, "
                f"got padding={p[i]} and kernel_size={k[i]}"
            )
    return tuple(
        _out_size(
            size[i], k[i], s[i], p[i], d[i],
            axis=ax, what="pool2d", strict=strict, ceil_mode=ceil_mode,
        )
        for i, ax in enumerate("HW")
    )


def max_unpool2d_output_shape(
    input_size, kernel_size, *, stride=None, padding=0, output_size=None
) -> tuple[int, int]:
    """Spatial output size of max unpooling, checked as ``torch.nn.functional`` checks it.

    The default inverts max pooling's size formula (without dilation or ceil_mode),
    ``(H_in - 1) * S - 2P + K``. Pooling rounds down, so several input sizes pool to the same
    size; ``output_size`` picks one, and must lie strictly within one stride of the default.
    It is ``(H, W)`` or, as PyTorch allows, a full ``(N, C, H, W)`` shape (``N, C`` ignored).

    Raises:
        TypeError: ``output_size`` is not a sequence of ints, or a bad kernel/stride/padding.
        ValueError: ``output_size`` outside the allowed range, or a negative output size.

    Example:
        >>> max_unpool2d_output_shape((3, 4), 2)
        (6, 8)
    """
    hw_in = pair(input_size, "input_size", minimum=0)
    k = pair(kernel_size, "kernel_size", minimum=1)
    s = k if stride is None else pair(stride, "stride", minimum=1)
    p = pair(padding, "padding", minimum=0)
    default = tuple((size - 1) * s[i] - 2 * p[i] + k[i] for i, size in enumerate(hw_in))
    if output_size is None:
        hw = default
    else:
        if not isinstance(output_size, Sequence) or isinstance(output_size, str):
            raise TypeError(
                f"output_size must be a sequence (H, W) or (N, C, H, W) of ints, "
                f"got {output_size!r}"
            )
        if len(output_size) not in (2, 4):
            raise ValueError(
                f"output_size must have 2 elements (H, W) or 4 (N, C, H, W), got "
                f"{len(output_size)}: {tuple(output_size)!r}"
            )
        hw = tuple(output_size[-2:])
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in hw):
            raise TypeError(f"output_size must hold ints, got {tuple(output_size)!r}")
        for i, axis in enumerate("HW"):
            low, high = default[i] - s[i], default[i] + s[i]
            if not low < hw[i] < high:
                raise ValueError(
                    f"output_size {axis}={hw[i]} must lie strictly between {low} and "
                    f"{high} (the default {default[i]} = (size - 1) * stride - 2 * padding + "
                    f"kernel_size, plus or minus the stride {s[i]})"
                )
    for i, axis in enumerate("HW"):
        if hw[i] < 0:
            raise ValueError(
                f"the output {axis} = (size - 1) * stride - 2 * padding + kernel_size "
                f"must be >= 0, got {hw[i]} (input {axis} {hw_in[i]}, kernel_size {k[i]}, "
                f"stride {s[i]}, padding {p[i]})"
            )
    return int(hw[0]), int(hw[1])


def _positive_pair(value, name):
    """A positive number or a pair of them, as a tuple of two."""
    items = value if isinstance(value, tuple | list) else (value, value)
    if len(items) != 2 or any(
        isinstance(v, bool) or not isinstance(v, numbers.Real)
        for v in items
    ):
        raise TypeError(f"{name} must be a number or a pair of numbers, got {value!r}")
    if min(items) <= 0:
        raise ValueError(f"{name} must be > 0 in each dimension, got {value!r}")
    return tuple(items)


def interpolate_output_shape(
    input_size, *, size=None, scale_factor=None, recompute_scale_factor=None
):
    """Output size of ``interpolate`` (both backends) and the scale factors its mapping uses.

    Exactly one of ``size`` and ``scale_factor`` must be given. With ``scale_factor``,
    ``H_out = floor(H_in * scale_factor)``, and unless ``recompute_scale_factor`` is True the
    coordinate mapping uses ``1 / scale_factor`` (PyTorch's default); otherwise, and with
    ``size``, it uses ``H_in / H_out``.

    Args:
        input_size: ``(H_in, W_in)``.
        size: ``H_out`` or ``(H_out, W_out)``, ints >= 1.
        scale_factor: a positive number or a pair.
        recompute_scale_factor: see above; must not be True together with ``size``.

    Returns:
        ``((H_out, W_out), (scale_h, scale_w))``, the scales being None when ``in/out`` is used.

    Raises:
        ValueError: both or neither of ``size`` and ``scale_factor``, non-positive values, or
            an empty output.
        TypeError: values that are not numbers / ints.
    """
    if (size is None) == (scale_factor is None):
        raise ValueError(
            f"exactly one of size and scale_factor must be given, got size={size!r} and "
            f"scale_factor={scale_factor!r}"
        )
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(
                "recompute_scale_factor=True is not meaningful with an explicit size"
            )
        items = size if isinstance(size, tuple | list) else (size, size)
        if len(items) != 2 or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in items
        ):
            raise TypeError(f"size must be an int or a pair of ints, got {size!r}")
        if min(items) < 1:
            raise ValueError(f"size must be >= 1 in each dimension, got {size!r}")
        return (int(items[0]), int(items[1])), (None, None)
    scales = tuple(float(v) for v in _positive_pair(scale_factor, "scale_factor"))
    out = tuple(math.floor(float(n) * s) for n, s in zip(input_size, scales, strict=True))
    if min(out) < 1:
        raise ValueError(
            f"scale_factor={scale_factor!r} gives an empty output: (H_out, W_out) = "
            f"floor({tuple(input_size)} * scale_factor) = {out}"
        )
    return out, ((None, None) if recompute_scale_factor else scales)


def receptive_field(layers) -> int:
    """Receptive field (in input pixels, along one axis) of a stack of conv/pool layers.

    Each layer is a ``kernel_size`` int, or a dict / tuple ``(kernel_size, stride, dilation)``
    (stride and dilation default to 1). The recurrence, from the input up:

    .. math::
        r_\\ell = r_{\\ell-1} + d_\\ell (k_\\ell - 1) \\, j_{\\ell-1}, \\qquad
        j_\\ell = j_{\\ell-1} s_\\ell,

    with ``r_0 = 1`` and jump ``j_0 = 1`` (the distance in input pixels between
    neighbouring units of a layer); ``k``, ``s`` and ``d`` are each layer's kernel size,
    stride and dilation, as in the book's notation table.

    Example:
        >>> receptive_field([3, 3, 3])          # three 3x3 convs see 7x7
        7
        >>> receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)])  # dilations 1, 2, 4
        15
    """
    r, jump = 1, 1
    for i, layer in enumerate(layers):
        if isinstance(layer, dict):
            k = layer.get("kernel_size")
            s, d = layer.get("stride", 1), layer.get("dilation", 1)
        elif isinstance(layer, tuple | list):
            k, s, d = (*layer, 1, 1)[:3]
        else:
            k, s, d = layer, 1, 1
        for name, v in (("kernel_size", k), ("stride", s), ("dilation", d)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"layers[{i}]: {name} must be an int >= 1, got {v!r}")
        r += d * (k - 1) * jump
        jump *= s
    return r

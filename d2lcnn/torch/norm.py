"""Normalization layers from tensor primitives (``mean``, ``rsqrt``, arithmetic), with the
signatures and semantics of ``torch.nn.functional``: batch, layer, group, instance and RMS
normalization, local response normalization, and conv-BatchNorm folding.

Batch, layer, group and instance norm are one computation,
``(x - mean) * rsqrt(var + eps) * weight + bias`` with the biased variance, over different
sets of elements; autograd differentiates through the statistics (the NumPy reference layers
in :mod:`d2lcnn.numpy.norm` and :mod:`d2lcnn.numpy.batch_norm` write that backward pass by
hand). None of these functions calls a normalization op, so they run on any device autograd
does.
"""

from __future__ import annotations

import math

import torch

from d2lcnn.checks import (
    check_both_or_neither,
    check_int,
    check_probability,
    running_average_weight,
)
from d2lcnn.torch._checks import check_tensor

__all__ = [
    "batch_norm",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "rms_norm",
    "local_response_norm",
    "fuse_conv_bn",
]


# --------------------------------------------------------------------------- argument checks


def _check_channel_vectors(input, running_mean, running_var, weight, bias, fn: str) -> None:
    """Batch and instance norm's ``(C,)`` vectors, each None or a tensor; the running
    statistics come both or neither."""
    vectors = dict(running_mean=running_mean, running_var=running_var, weight=weight, bias=bias)
    for name, a in vectors.items():
        check_tensor(a, name, fn, optional=True, floating=False, shape=(input.shape[1],))
    check_both_or_neither(running_mean, running_var, ("running_mean", "running_var"), fn)


def _normalized_shape(normalized_shape, x, fn: str) -> tuple[int, ...]:
    if isinstance(normalized_shape, bool):
        raise TypeError(f"{fn}: normalized_shape must be an int or a tuple of ints, got bool")
    if isinstance(normalized_shape, int):
        shape = (normalized_shape,)
    else:
        try:
            shape = tuple(int(d) for d in normalized_shape)
        except TypeError:
            raise TypeError(
                f"{fn}: normalized_shape must be an int or a tuple of ints, "
                f"got {normalized_shape!r}"
            ) from None
    if not shape or len(shape) > x.dim() or shape != tuple(x.shape[x.dim() - len(shape) :]):
        raise ValueError(
            f"{fn}: normalized_shape must be non-empty and equal the trailing dimensions of "
            f"input, got normalized_shape {shape} for input of shape {tuple(x.shape)}"
        )
    return shape


def _channel_shape(x) -> tuple[int, ...]:
    """``(1, C, 1, ..., 1)``: a per-channel ``(C,)`` vector broadcast against ``(N, C, *)``."""
    return (1, x.shape[1]) + (1,) * (x.dim() - 2)


def _affine(y, weight, bias, shape):
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


# --------------------------------------------------------------------------- batch norm


def batch_norm(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training=False,
    momentum=0.1,
    eps=1e-5,
    *,
    num_batches_tracked=None,
):
    """Batch normalization, as ``torch.nn.functional.batch_norm``.

    Per channel, ``(x - mean) / sqrt(var + eps) * weight + bias``, the statistics taken over
    every dimension but 1. In training they are the batch mean and biased variance, and the
    running statistics (if given) are updated in place, ``momentum`` weighting the new
    batch and ``running_var`` tracking the *unbiased* variance; in eval the running
    statistics are used. Gradients flow through the batch statistics in training.

    Args:
        input: ``(N, C, *)``, floating point.
        running_mean, running_var: ``(C,)`` (start at 0 and 1), or ``None`` in training.
        weight, bias: ``(C,)`` affine parameters, or ``None``.
        training: use batch statistics (and update the running ones). Default False.
        momentum: weight of the new batch. Default 0.1. ``None``: cumulative average with
            weight ``1 / (num_batches_tracked + 1)``, as ``nn.BatchNorm2d(momentum=None)``.
        eps: added to the variance. Default 1e-5.
        num_batches_tracked: with ``momentum=None``, batches already averaged (keyword only,
            not in ``torch.nn.functional.batch_norm``).

    Returns:
        A tensor like ``input``.

    Raises:
        ValueError: if ``input`` has fewer than 2 dimensions, a vector is not ``(C,)``, running
            statistics are missing in eval, or a channel has one value in training
            ("Expected more than 1 value per channel when training").

    Example:
        >>> x = torch.tensor([[1.0, 10.0], [3.0, 30.0]])
        >>> rm, rv = torch.zeros(2), torch.ones(2)
        >>> batch_norm(x, rm, rv, training=True, eps=0.0)
        tensor([[-1., -1.],
                [ 1.,  1.]])
        >>> rm, rv
        (tensor([0.2000, 2.0000]), tensor([ 1.1000, 20.9000]))
    """
    fn = "batch_norm"
    check_tensor(input, "input", fn, min_dim=2)
    c = input.shape[1]
    _check_channel_vectors(input, running_mean, running_var, weight, bias, fn)
    shape = _channel_shape(input)
    dims = (0, *range(2, input.dim()))
    if training:
        m = input.numel() // c
        if m <= 1:
            raise ValueError(
                f"{fn}: Expected more than 1 value per channel when training, got input of "
                f"shape {tuple(input.shape)}"
            )
        if momentum is None and isinstance(num_batches_tracked, torch.Tensor):
            num_batches_tracked = int(num_batches_tracked)  # nn.BatchNorm2d keeps a tensor
        factor = running_average_weight(momentum, num_batches_tracked, fn)
        mean = input.mean(dims)  # (C,)
        xc = input - mean.reshape(shape)  # (N, C, *)
        var = (xc * xc).mean(dims)  # (C,), biased
        if running_mean is not None:
            with torch.no_grad():
                running_mean.mul_(1 - factor).add_(mean, alpha=factor)
                running_var.mul_(1 - factor).add_(var, alpha=factor * m / (m - 1))
    else:
        if running_mean is None:
            raise ValueError(f"{fn}: running_mean and running_var are required in eval mode")
        xc = input - running_mean.reshape(shape)
        var = running_var
    y = xc * torch.rsqrt(var + eps).reshape(shape)
    return _affine(y, weight, bias, shape)


# --------------------------------------------------------------------------- per-sample norms


def _standardize(x, dims, eps):
    """``(x - mean) * rsqrt(var + eps)`` over ``dims``, biased variance."""
    xc = x - x.mean(dims, keepdim=True)
    return xc * torch.rsqrt((xc * xc).mean(dims, keepdim=True) + eps)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalization, as ``torch.nn.functional.layer_norm``: each sample normalized
    over its trailing ``normalized_shape`` dimensions; ``weight``/``bias`` elementwise of
    shape ``normalized_shape``.

    Raises:
        ValueError: if ``normalized_shape`` is not the trailing shape of ``input`` or
            ``weight``/``bias`` do not have that shape.
    """
    fn = "layer_norm"
    check_tensor(input, "input", fn, min_dim=1)
    shape = _normalized_shape(normalized_shape, input, fn)
    check_tensor(weight, "weight", fn, optional=True, floating=False, shape=shape)
    check_tensor(bias, "bias", fn, optional=True, floating=False, shape=shape)
    y = _standardize(input, tuple(range(input.dim() - len(shape), input.dim())), eps)
    return _affine(y, weight, bias, shape)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalization, as ``torch.nn.functional.group_norm``: the channels of
    ``(N, C, *)`` split into ``num_groups`` consecutive groups, each (sample, group)
    normalized over its channels and positions; ``weight``/``bias`` per channel ``(C,)``.

    Raises:
        ValueError: if ``num_groups`` does not divide ``C`` or a vector is not ``(C,)``.
        TypeError: if ``num_groups`` is not an int.
    """
    fn = "group_norm"
    check_tensor(input, "input", fn, min_dim=2)
    num_groups = check_int(num_groups, "num_groups", fn)
    n, c = input.shape[:2]
    if num_groups < 1 or c % num_groups:
        raise ValueError(
            f"{fn}: num_groups must be a positive divisor of the number of channels "
            f"C = {c}, got num_groups = {num_groups}"
        )
    check_tensor(weight, "weight", fn, optional=True, floating=False, shape=(c,))
    check_tensor(bias, "bias", fn, optional=True, floating=False, shape=(c,))
    y = _standardize(input.reshape(n, num_groups, -1), 2, eps).reshape(input.shape)  # (N, C, *)
    return _affine(y, weight, bias, _channel_shape(input))


def instance_norm(
    input,
    running_mean=None,
    running_var=None,
    weight=None,
    bias=None,
    use_input_stats=True,
    momentum=0.1,
    eps=1e-5,
):
    """Instance normalization, as ``torch.nn.functional.instance_norm``: each (sample,
    channel) of ``(N, C, *)`` normalized over its positions; ``weight``/``bias`` per channel.

    With ``use_input_stats`` (the default) each instance's own mean and biased variance are
    used, and the running statistics, if given, are updated in place with the batch
    average of the per-instance mean and *unbiased* variance, ``momentum`` weighting the
    new value. Without it, ``running_mean``/``running_var`` (required) normalize every
    instance, and are left unchanged. See :func:`d2lcnn.numpy.norm.instance_norm_forward`.

    Args:
        input: ``(N, C, *)`` with at least one spatial dimension, floating point.
        running_mean, running_var: ``(C,)`` (start at 0 and 1), or ``None``.
        weight, bias: ``(C,)`` affine parameters, or ``None``.
        use_input_stats: normalize with each instance's statistics. Default True.
        momentum: weight of the new statistics in the running averages. Default 0.1.
        eps: added to the variance. Default 1e-5.

    Returns:
        A tensor like ``input``.

    Raises:
        ValueError: if ``input`` has fewer than 3 dimensions, one spatial element with
            ``use_input_stats``, a vector is not ``(C,)``, only one running statistic is
            given or none without ``use_input_stats``, or ``momentum`` is not in ``[0, 1]``.
        TypeError: if ``momentum`` is not a real number.
    """
    fn = "instance_norm"
    check_tensor(input, "input", fn, min_dim=3)
    _check_channel_vectors(input, running_mean, running_var, weight, bias, fn)
    momentum = check_probability(momentum, "momentum", fn)
    shape = _channel_shape(input)
    if not use_input_stats:
        if running_mean is None:
            raise ValueError(
                f"{fn}: running_mean and running_var are required when use_input_stats=False"
            )
        y = (input - running_mean.reshape(shape)) * torch.rsqrt(running_var + eps).reshape(shape)
        return _affine(y, weight, bias, shape)
    length = math.prod(input.shape[2:])
    if length <= 1:
        raise ValueError(
            f"{fn}: Expected more than 1 spatial element when training, got input of shape "
            f"{tuple(input.shape)}"
        )
    dims = tuple(range(2, input.dim()))
    if running_mean is not None:
        with torch.no_grad():
            mean = input.mean(dims, keepdim=True)  # (N, C, 1, ..., 1)
            xc = input - mean
            unbiased_var = (xc * xc).sum(dims) / (length - 1)  # (N, C)
            running_mean.mul_(1 - momentum).add_(mean.flatten(1).mean(0), alpha=momentum)
            running_var.mul_(1 - momentum).add_(unbiased_var.mean(0), alpha=momentum)
    y = _standardize(input, dims, eps)
    return _affine(y, weight, bias, shape)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """RMS normalization, as ``torch.nn.functional.rms_norm``:
    ``x * rsqrt(mean(x^2) + eps) * weight`` over the trailing ``normalized_shape``;
    ``eps=None`` means ``torch.finfo(x.dtype).eps``.

    Raises:
        ValueError: if ``normalized_shape`` is not the trailing shape of ``input`` or
            ``weight`` does not have that shape.
    """
    fn = "rms_norm"
    check_tensor(input, "input", fn, min_dim=1)
    shape = _normalized_shape(normalized_shape, input, fn)
    check_tensor(weight, "weight", fn, optional=True, floating=False, shape=shape)
    if eps is None:
        eps = torch.finfo(input.dtype).eps
    dims = tuple(range(input.dim() - len(shape), input.dim()))
    y = input * torch.rsqrt((input * input).mean(dims, keepdim=True) + eps)
    return _affine(y, weight, None, shape)


# --------------------------------------------------------------------------- LRN


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalization across channels, as
    ``torch.nn.functional.local_response_norm``:
    ``x_c / (k + alpha/size * sum_{c'} x_{c'}^2) ** beta`` with ``c'`` from
    ``c - size//2`` to ``c + (size-1)//2`` (zeros outside the channels). ``alpha`` is
    divided by ``size``, as in PyTorch.

    Raises:
        ValueError: if ``input`` has fewer than 3 dimensions or ``size`` < 1.
        TypeError: if ``size`` is not an int.
    """
    fn = "local_response_norm"
    check_tensor(input, "input", fn, min_dim=3)
    size = check_int(size, "size", fn, minimum=1)
    n, c = input.shape[:2]
    rest = tuple(input.shape[2:])
    before, after = size // 2, (size - 1) // 2
    pad_before, pad_after = input.new_zeros((n, before, *rest)), input.new_zeros((n, after, *rest))
    sq = torch.cat([pad_before, input * input, pad_after], dim=1)  # (N, C + size - 1, *)
    window_sum = sum(sq.narrow(1, t, c) for t in range(size))  # (N, C, *)
    return input / (k + (alpha / size) * window_sum) ** beta


# --------------------------------------------------------------------------- conv-BN folding


def fuse_conv_bn(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """Fold an eval-mode BatchNorm into the convolution before it:
    ``w' = s w``, ``b' = s (b - running_mean) + beta`` per output channel, with
    ``s = gamma / sqrt(running_var + eps)`` (see :func:`d2lcnn.numpy.batch_norm.fuse_conv_bn`).

    Args (those of ``torch.nn.utils.fusion.fuse_conv_bn_weights``, in its order):
        conv_w: ``(C_out, C_in/groups, kH, kW)``; conv_b: ``(C_out,)`` or ``None``;
        bn_rm, bn_rv: running mean and variance ``(C_out,)``; bn_eps: BatchNorm's eps;
        bn_w, bn_b: BatchNorm's weight (gamma) and bias (beta), ``(C_out,)`` or ``None``.

    Returns:
        ``(w_fused, b_fused)``.
    """
    fn = "fuse_conv_bn"
    layout = "(C_out, C_in/groups, kH, kW)"
    check_tensor(conv_w, "conv_w", fn, floating=False, ndim=4, layout=layout)
    c = (conv_w.shape[0],)
    for name, a in (("conv_b", conv_b), ("bn_w", bn_w), ("bn_b", bn_b)):
        check_tensor(a, name, fn, optional=True, floating=False, shape=c)
    for name, a in (("bn_rm", bn_rm), ("bn_rv", bn_rv)):
        check_tensor(a, name, fn, floating=False, shape=c)
    scale = torch.rsqrt(bn_rv + bn_eps)  # (C_out,)
    if bn_w is not None:
        scale = bn_w * scale
    w_fused = conv_w * scale.reshape(-1, 1, 1, 1)
    b_fused = (-bn_rm if conv_b is None else conv_b - bn_rm) * scale
    if bn_b is not None:
        b_fused = b_fused + bn_b
    return w_fused, b_fused

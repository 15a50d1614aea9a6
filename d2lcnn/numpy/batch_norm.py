"""Batch normalization in NumPy, forward and backward, with ``torch.nn.functional``
semantics, and folding an inference-mode BatchNorm into the preceding convolution.

BatchNorm normalizes each channel of an ``(N, C, *)`` input with one mean and (biased)
variance pooled over ``N`` and every spatial position, then applies a per-channel affine map:

.. math::
    \\hat x = \\frac{x - \\mu_c}{\\sqrt{\\sigma_c^2 + \\epsilon}}, \\qquad
    y = \\gamma_c \\hat x + \\beta_c.

In training the statistics are the batch's and the running averages are updated; in eval the
running averages are used, and the layer is an affine map per channel that can be folded into
the convolution before it (:func:`fuse_conv_bn`). The family of per-sample normalizations
(layer, group, instance, RMS) and the compact backward formula they share with BatchNorm are
in :mod:`d2lcnn.numpy.norm`, which also re-exports everything here.

The forward pass reduces over axes 0 and 2 of an ``(N, C, L)`` view, with ``einsum``
reductions and in-place updates (see the notes in :func:`batch_norm_forward`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from d2lcnn.checks import check_both_or_neither, check_nonnegative, running_average_weight
from d2lcnn.numpy._checks import check_array, check_dout

__all__ = [
    "BatchNormCache",
    "batch_norm_forward",
    "batch_norm_backward",
    "fuse_conv_bn",
]


class BatchNormCache(NamedTuple):
    """What :func:`batch_norm_backward` needs from the forward pass."""

    x_hat: np.ndarray  # (N, C, L): the normalized input, L = H*W (1 for an (N, C) input)
    inv_std: np.ndarray  # (C,): 1 / sqrt(var + eps), batch var in training, running in eval
    weight: np.ndarray | None  # (C,)
    has_bias: bool
    training: bool
    x_shape: tuple[int, ...]  # (N, C, *)


# --------------------------------------------------------------------------- batch norm


def batch_norm_forward(
    input: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    *,
    training: bool = False,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
    num_batches_tracked: int | None = None,
) -> tuple[np.ndarray, BatchNormCache]:
    """Batch normalization, as ``torch.nn.functional.batch_norm``.

    Each channel ``c`` is normalized with one mean and variance shared by all its elements
    (over ``N`` for an ``(N, C)`` input, over ``N, H, W`` for ``(N, C, H, W)``):

    .. math::
        y = \\gamma_c \\frac{x - \\mu_c}{\\sqrt{\\sigma_c^2 + \\epsilon}} + \\beta_c

    - ``training=True``: :math:`\\mu_c, \\sigma_c^2` are the batch mean and *biased* batch
      variance, and the running statistics (if given) are updated **in place**, with
      PyTorch's convention that ``momentum`` weights the *new* batch and that the running
      variance tracks the *unbiased* batch variance (``m / (m - 1)`` times the biased one,
      ``m`` elements per channel)::

          running_mean = (1 - momentum) * running_mean + momentum * mean
          running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1)

    - ``training=False``: :math:`\\mu_c, \\sigma_c^2` are ``running_mean, running_var``,
      left unchanged; the layer is then an affine map per channel.

    Args:
        input: ``(N, C)``, ``(N, C, H, W)`` or generally ``(N, C, *)``, floating point.
        running_mean: ``(C,)``, input's dtype (start at 0); updated in place in training.
            May be ``None`` in training (then nothing is tracked).
        running_var: ``(C,)``, input's dtype (start at **1**); updated in place in training.
        weight: the scale :math:`\\gamma`, ``(C,)``, or ``None`` for 1.
        bias: the shift :math:`\\beta`, ``(C,)``, or ``None`` for 0.
        training: use (and track) batch statistics, or use the running ones. Default
            False, as ``F.batch_norm`` (the layer objects pass their own mode).
        momentum: weight of the new batch in the running averages. Default 0.1.
            ``None`` gives the cumulative average (as ``nn.BatchNorm2d(momentum=None)``):
            the weight is ``1 / (num_batches_tracked + 1)``.
        eps: added to the variance for numerical stability. Default 1e-5.
        num_batches_tracked: with ``momentum=None``, how many batches the running
            statistics already average (0 for the first batch); the caller increments it.

    Returns:
        ``(out, cache)``: ``out`` has ``input``'s shape and dtype; ``cache`` is a
        :class:`BatchNormCache` for :func:`batch_norm_backward`.

    Raises:
        ValueError: if ``input`` has fewer than 2 dimensions, a parameter or running statistic
            is not ``(C,)``, running statistics are missing in eval mode, ``momentum=None`` comes
            without ``num_batches_tracked``, or a channel has only one value in training
            ("Expected more than 1 value per channel when training", as PyTorch says).
        TypeError: if an array is not floating point or does not have ``input``'s dtype.

    Example:
        >>> x = np.array([[1.0, 10.0], [3.0, 30.0]])
        >>> rm, rv = np.zeros(2), np.ones(2)
        >>> out, _ = batch_norm_forward(x, rm, rv, training=True, eps=0.0)
        >>> out
        array([[-1., -1.],
               [ 1.,  1.]])
        >>> rm, rv  # 0.9 * old + 0.1 * (mean, unbiased var)
        (array([0.2, 2. ]), array([ 1.1, 20.9]))
    """
    fn = "batch_norm_forward"
    check_array(input, "input", fn, min_ndim=2, layout="(N, C, *)")
    c = input.shape[1]
    _check_channel_vectors(input, running_mean, running_var, weight, bias, fn)
    eps = check_nonnegative(eps, "eps", fn)
    if not isinstance(training, bool | np.bool_):
        raise TypeError(f"{fn}: training must be a bool, got {type(training).__name__}")

    n = input.shape[0]
    x3 = input.reshape(n, c, -1)  # (N, C, L): a view, since x's layout is kept
    m = n * x3.shape[2]  # elements per channel
    if training:
        if m <= 1:
            raise ValueError(
                f"{fn}: Expected more than 1 value per channel when training, got input of "
                f"shape {input.shape}"
            )
        factor = running_average_weight(momentum, num_batches_tracked, fn)
        # Sum over L (contiguous, pairwise summation: accurate in float32), then over N.
        mean = x3.sum(axis=2).sum(axis=0) / m  # (C,)
        x_hat = x3 - mean[:, None]  # (N, C, L): centred, normalized in place below
        var = np.einsum("ncl,ncl->c", x_hat, x_hat) / m  # (C,), biased
        if running_mean is not None:
            _update_running_stats(running_mean, running_var, mean, var * (m / (m - 1)), factor)
    else:
        if running_mean is None:
            raise ValueError(f"{fn}: running_mean and running_var are required in eval mode")
        var = running_var
        x_hat = x3 - running_mean[:, None]  # (N, C, L)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(input.dtype)  # (C,)
    x_hat *= inv_std[:, None]

    out = x_hat * weight[:, None] if weight is not None else x_hat.copy()  # (N, C, L)
    if bias is not None:
        out += bias[:, None]
    cache = BatchNormCache(x_hat, inv_std, weight, bias is not None, bool(training), input.shape)
    return out.reshape(input.shape), cache


def _check_channel_vectors(input, running_mean, running_var, weight, bias, fn: str) -> None:
    """Batch and instance norm's ``(C,)`` vectors, each None or of ``input``'s dtype; the
    running statistics come both or neither."""
    vectors = dict(running_mean=running_mean, running_var=running_var, weight=weight, bias=bias)
    for name, a in vectors.items():
        check_array(a, name, fn, optional=True, dtype=input.dtype, shape=(input.shape[1],))
    check_both_or_neither(running_mean, running_var, ("running_mean", "running_var"), fn)


def _update_running_stats(running_mean, running_var, mean, unbiased_var, factor: float) -> None:
    """In place, PyTorch's convention (``factor`` weights the new statistics):
    ``running = (1 - factor) * running + factor * new``. Instance norm tracks its running
    statistics the same way (:func:`d2lcnn.numpy.norm.instance_norm_forward`)."""
    running_mean *= 1 - factor
    running_mean += factor * mean
    running_var *= 1 - factor
    running_var += factor * unbiased_var


def batch_norm_backward(
    dout: np.ndarray, cache: BatchNormCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Backward pass of :func:`batch_norm_forward`.

    With :math:`g = \\gamma \\, \\partial L / \\partial y` and ``m`` elements per channel,
    in training (the statistics depend on ``x``):

    .. math::
        \\frac{\\partial L}{\\partial x} = \\frac{\\gamma}{m \\sqrt{\\sigma^2 + \\epsilon}}
            \\Big( m \\frac{\\partial L}{\\partial y} - \\frac{\\partial L}{\\partial \\beta}
            - \\hat x \\, \\frac{\\partial L}{\\partial \\gamma} \\Big)

    and in eval mode (fixed running statistics) just
    :math:`\\gamma / \\sqrt{\\sigma^2_{run} + \\epsilon} \\cdot \\partial L / \\partial y`.
    In both, :math:`\\partial L/\\partial \\gamma = \\sum \\hat x \\, \\partial L/\\partial y`
    and :math:`\\partial L / \\partial \\beta = \\sum \\partial L/\\partial y` per channel.

    Args:
        dout: upstream gradient, ``x``'s shape.
        cache: from :func:`batch_norm_forward`.

    Returns:
        ``(dx, dweight, dbias)``; ``dweight``/``dbias`` are ``None`` when ``weight``/``bias``
        were.

    Raises:
        ValueError: if ``dout`` does not have the forward output's shape.
    """
    dout = check_dout(dout, cache.x_shape, "batch_norm_backward")
    x_hat, inv_std, weight = cache.x_hat, cache.inv_std, cache.weight
    n, c, length = x_hat.shape
    d3 = dout.reshape(n, c, length)  # (N, C, L)
    dbias = d3.sum(axis=2).sum(axis=0)  # (C,)
    dweight = np.einsum("ncl,ncl->c", d3, x_hat)  # (C,)
    scale = inv_std if weight is None else weight * inv_std  # (C,)
    if cache.training:
        m = n * length
        dx = x_hat * (-dweight / m)[:, None]  # (N, C, L)
        dx += d3
        dx -= (dbias / m)[:, None]
        dx *= scale[:, None]
    else:
        dx = d3 * scale[:, None]
    return (
        dx.reshape(cache.x_shape),
        dweight if weight is not None else None,
        dbias if cache.has_bias else None,
    )


# --------------------------------------------------------------------------- conv-BN folding


def fuse_conv_bn(
    conv_w: np.ndarray,
    conv_b: np.ndarray | None,
    bn_rm: np.ndarray,
    bn_rv: np.ndarray,
    bn_eps: float,
    bn_w: np.ndarray | None,
    bn_b: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fold an eval-mode BatchNorm into the convolution before it.

    In eval mode BatchNorm is a per-channel affine map, ``y = s (z - mu) + beta`` with
    ``s = gamma / sqrt(running_var + eps)``; applied to a convolution ``z = w * x + b`` it
    gives a convolution with

    .. math::
        w' = s_o \\, w_o, \\qquad b' = s_o (b_o - \\mu_o) + \\beta_o

    for each output channel ``o``: one layer instead of two at inference.

    The parameters are those of ``torch.nn.utils.fusion.fuse_conv_bn_weights``, in its
    order.

    Args:
        conv_w: conv weights ``(C_out, C_in/groups, kH, kW)``.
        conv_b: conv bias ``(C_out,)`` or ``None``.
        bn_rm, bn_rv: BatchNorm's running mean and variance ``(C_out,)``.
        bn_eps: BatchNorm's eps.
        bn_w, bn_b: BatchNorm's weight (gamma) and bias (beta) ``(C_out,)``, or ``None``
            for 1 and 0.

    Returns:
        ``(w_fused, b_fused)``, new arrays with ``conv_w``'s dtype.

    Raises:
        ValueError: if ``conv_w`` is not 4-D or a vector is not ``(C_out,)``.
        TypeError: if an array is not floating point or does not have ``conv_w``'s dtype.
    """
    fn = "fuse_conv_bn"
    check_array(conv_w, "conv_w", fn, ndim=4, layout="(C_out, C_in/groups, kH, kW)")
    c = (conv_w.shape[0],)
    for name, a in (("conv_b", conv_b), ("bn_w", bn_w), ("bn_b", bn_b)):
        check_array(a, name, fn, optional=True, dtype=conv_w.dtype, dtype_of="conv_w", shape=c)
    for name, a in (("bn_rm", bn_rm), ("bn_rv", bn_rv)):
        check_array(a, name, fn, dtype=conv_w.dtype, dtype_of="conv_w", shape=c)
    bn_eps = check_nonnegative(bn_eps, "bn_eps", fn)
    scale = 1.0 / np.sqrt(bn_rv + bn_eps)  # (C_out,)
    if bn_w is not None:
        scale = bn_w * scale
    w_fused = conv_w * scale[:, None, None, None]
    b_fused = ((0 if conv_b is None else conv_b) - bn_rm) * scale
    if bn_b is not None:
        b_fused = b_fused + bn_b
    return w_fused.astype(conv_w.dtype, copy=False), b_fused.astype(conv_w.dtype, copy=False)

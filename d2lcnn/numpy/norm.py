"""Normalization layers in NumPy, forward and backward, with ``torch.nn.functional``
semantics: layer, group, instance and RMS normalization and local response normalization
(AlexNet's "norm" layer). Batch normalization and conv-BN folding live in
:mod:`d2lcnn.numpy.batch_norm` and are re-exported here, so
``from d2lcnn.numpy.norm import batch_norm_forward`` works as well.

Batch, layer, group and instance normalization all compute

.. math::
    \\hat x = \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}}, \\qquad y = \\gamma \\hat x + \\beta

and differ only in which elements share a mean :math:`\\mu` and (biased) variance
:math:`\\sigma^2`: for an ``(N, C, H, W)`` input, BatchNorm pools ``N, H, W`` per channel,
LayerNorm the trailing ``normalized_shape`` per sample, GroupNorm ``C/G, H, W`` per sample
and group, InstanceNorm ``H, W`` per sample and channel. When the statistics are computed
from the same ``m`` elements they normalize, the backward pass has the compact form

.. math::
    \\frac{\\partial L}{\\partial x} = \\frac{1}{m \\sqrt{\\sigma^2 + \\epsilon}}
        \\Big( m\\, g - \\sum g - \\hat x \\sum g \\hat x \\Big),
    \\qquad g = \\gamma \\, \\frac{\\partial L}{\\partial y},

with the sums over each group of ``m`` elements. The last two terms are the gradient
through :math:`\\mu` and :math:`\\sigma^2`; with fixed running statistics (BatchNorm in
eval mode, InstanceNorm with ``use_input_stats=False``) they drop out and only the affine
``weight / sqrt(running_var + eps)`` is left.

Layer, group and instance norm reshape their input to ``(rows, m)`` and share
:func:`_normalize_rows` / :func:`_normalize_rows_backward`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from d2lcnn.checks import check_int, check_nonnegative, check_probability
from d2lcnn.numpy._checks import check_array, check_dout
from d2lcnn.numpy.batch_norm import (
    BatchNormCache,
    _check_channel_vectors,
    _update_running_stats,
    batch_norm_backward,
    batch_norm_forward,
    fuse_conv_bn,
)

__all__ = [
    "BatchNormCache",
    "RowNormCache",
    "RMSNormCache",
    "LocalResponseNormCache",
    "batch_norm_forward",
    "batch_norm_backward",
    "layer_norm_forward",
    "layer_norm_backward",
    "group_norm_forward",
    "group_norm_backward",
    "instance_norm_forward",
    "instance_norm_backward",
    "rms_norm_forward",
    "rms_norm_backward",
    "local_response_norm_forward",
    "local_response_norm_backward",
    "fuse_conv_bn",
]


class RowNormCache(NamedTuple):
    """What the backward passes of layer, group and instance norm need."""

    x_hat: np.ndarray  # (rows, m): each row normalized by its own statistics
    inv_std: np.ndarray  # (rows, 1)
    weight: np.ndarray | None  # broadcastable against x_shape
    has_bias: bool
    x_shape: tuple[int, ...]
    param_axes: tuple[int, ...]  # the axes of x that weight's gradient sums over
    # False: fixed (running) statistics normalized x, so the gradient does not flow
    # through a mean and variance (instance norm with use_input_stats=False)
    input_stats: bool = True


class RMSNormCache(NamedTuple):
    """What :func:`rms_norm_backward` needs from the forward pass."""

    x_hat: np.ndarray  # (rows, m): x / rms(x) per row
    inv_rms: np.ndarray  # (rows, 1)
    weight: np.ndarray | None  # normalized_shape
    x_shape: tuple[int, ...]


class LocalResponseNormCache(NamedTuple):
    """What :func:`local_response_norm_backward` needs from the forward pass."""

    x: np.ndarray  # (N, C, ...), a private copy
    denom: np.ndarray  # (N, C, ...): k + alpha/size * (window sum of x^2)
    size: int
    alpha: float
    beta: float


# --------------------------------------------------------------------------- argument checks


def _normalized_shape(normalized_shape, x: np.ndarray, fn: str) -> tuple[int, ...]:
    """An int or a sequence of ints that must equal the trailing dimensions of ``x``."""
    if isinstance(normalized_shape, bool):
        raise TypeError(f"{fn}: normalized_shape must be an int or a tuple of ints, got bool")
    if isinstance(normalized_shape, int | np.integer):
        shape = (int(normalized_shape),)
    else:
        try:
            shape = tuple(normalized_shape)
        except TypeError:
            raise TypeError(
                f"{fn}: normalized_shape must be an int or a tuple of ints, "
                f"got {type(normalized_shape).__name__}"
            ) from None
        if not all(isinstance(d, int | np.integer) and not isinstance(d, bool) for d in shape):
            raise TypeError(
                f"{fn}: normalized_shape must be an int or a tuple of ints, got {shape!r}"
            )
        shape = tuple(int(d) for d in shape)
    if not shape or shape != x.shape[x.ndim - len(shape) :] or len(shape) > x.ndim:
        raise ValueError(
            f"{fn}: normalized_shape must be non-empty and equal the trailing dimensions of "
            f"input, got normalized_shape {shape} for input of shape {x.shape}"
        )
    return shape


# --------------------------------------------------------------------------- per-row norms


def _normalize_rows(x2: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalize each row of ``(rows, m)`` by its own mean and biased variance."""
    mean = x2.mean(axis=1, keepdims=True)  # (rows, 1)
    x_hat = x2 - mean  # (rows, m)
    var = np.mean(x_hat * x_hat, axis=1, keepdims=True)  # (rows, 1)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x2.dtype)
    x_hat *= inv_std
    return x_hat, inv_std


def _normalize_rows_backward(g: np.ndarray, x_hat: np.ndarray, inv_std: np.ndarray):
    """``dL/dx`` for ``x_hat = _normalize_rows(x)`` given ``g = dL/dx_hat``, all ``(rows, m)``:
    ``inv_std * (g - mean(g) - x_hat * mean(g * x_hat))`` per row."""
    mean_g = g.mean(axis=1, keepdims=True)
    mean_gx = np.mean(g * x_hat, axis=1, keepdims=True)
    return inv_std * (g - mean_g - x_hat * mean_gx)


def _affine(x_hat, weight, bias):
    out = x_hat * weight if weight is not None else x_hat.copy()
    if bias is not None:
        out += bias
    return out


def _row_norm_backward(dout, cache: RowNormCache, fn: str):
    """Backward of layer/group/instance norm: gradients of the affine map, then of the
    per-row normalization. ``weight`` broadcasts against ``x`` (trailing or per-channel)."""
    dout = check_dout(dout, cache.x_shape, fn)
    x_hat = cache.x_hat.reshape(cache.x_shape)
    weight = cache.weight
    dweight = dbias = None
    if weight is not None:
        dweight = np.sum(dout * x_hat, axis=cache.param_axes).reshape(weight.shape)
    if cache.has_bias:
        dbias = np.sum(dout, axis=cache.param_axes).reshape(
            weight.shape if weight is not None else _param_shape(cache)
        )
    g = (dout * weight if weight is not None else dout).reshape(cache.x_hat.shape)  # dL/dx_hat
    if cache.input_stats:
        dx = _normalize_rows_backward(g, cache.x_hat, cache.inv_std)  # (rows, m)
    else:
        dx = g * cache.inv_std  # x_hat = (x - running_mean) * inv_std is affine in x
    return dx.reshape(cache.x_shape), dweight, dbias


def _param_shape(cache: RowNormCache) -> tuple[int, ...]:
    kept = [d for i, d in enumerate(cache.x_shape) if i not in cache.param_axes]
    return tuple(kept)


def layer_norm_forward(
    input: np.ndarray,
    normalized_shape,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    *,
    eps: float = 1e-5,
) -> tuple[np.ndarray, RowNormCache]:
    """Layer normalization, as ``torch.nn.functional.layer_norm``.

    Each sample is normalized over its trailing ``normalized_shape`` dimensions (e.g.
    ``(C, H, W)``) with its own mean and biased variance; ``weight``/``bias`` are
    elementwise over ``normalized_shape``. The same in training and at inference.

    Args:
        input: ``(*, *normalized_shape)``, floating point.
        normalized_shape: an int or tuple of ints, the trailing dimensions of ``input``.
        weight: scale of shape ``normalized_shape``, or ``None`` for 1.
        bias: shift of shape ``normalized_shape``, or ``None`` for 0.
        eps: added to the variance. Default 1e-5.

    Returns:
        ``(out, cache)``, ``out`` with ``input``'s shape and dtype.

    Raises:
        ValueError: if ``normalized_shape`` is not the trailing shape of ``input``, or
            ``weight``/``bias`` do not have shape ``normalized_shape``.
        TypeError: if an array is not floating point or does not have ``input``'s dtype.
    """
    fn = "layer_norm_forward"
    check_array(input, "input", fn, min_ndim=1)
    shape = _normalized_shape(normalized_shape, input, fn)
    check_array(weight, "weight", fn, optional=True, dtype=input.dtype, shape=shape)
    check_array(bias, "bias", fn, optional=True, dtype=input.dtype, shape=shape)
    eps = check_nonnegative(eps, "eps", fn)
    m = math.prod(shape)
    x_hat, inv_std = _normalize_rows(input.reshape(-1, m), eps)  # (rows, m)
    out = _affine(x_hat.reshape(input.shape), weight, bias)
    lead = tuple(range(input.ndim - len(shape)))
    return out, RowNormCache(x_hat, inv_std, weight, bias is not None, input.shape, lead)


def layer_norm_backward(dout: np.ndarray, cache: RowNormCache):
    """Backward pass of :func:`layer_norm_forward`: ``(dx, dweight, dbias)`` (``None`` for
    an absent ``weight``/``bias``). ``dx`` follows the compact formula of the module
    docstring per sample; ``dweight``/``dbias`` sum over the leading dimensions."""
    return _row_norm_backward(dout, cache, "layer_norm_backward")


def group_norm_forward(
    input: np.ndarray,
    num_groups: int,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    *,
    eps: float = 1e-5,
) -> tuple[np.ndarray, RowNormCache]:
    """Group normalization, as ``torch.nn.functional.group_norm``.

    The ``C`` channels are split into ``num_groups`` consecutive groups of ``C / G``;
    each sample's group is normalized over its channels and spatial positions together.
    ``weight``/``bias`` are per channel. ``G = 1`` is LayerNorm over ``(C, H, W)`` with
    per-channel affine; ``G = C`` is InstanceNorm.

    Args:
        input: ``(N, C, *)``, floating point, with ``C`` divisible by ``num_groups``.
        num_groups: ``G``.
        weight: scale ``(C,)``, or ``None``.
        bias: shift ``(C,)``, or ``None``.
        eps: added to the variance. Default 1e-5.

    Returns:
        ``(out, cache)``, ``out`` with ``input``'s shape and dtype.

    Raises:
        ValueError: if ``input`` has fewer than 2 dimensions, ``num_groups`` is not positive or
            does not divide ``C``, or ``weight``/``bias`` are not ``(C,)``.
        TypeError: if ``num_groups`` is not an int or an array is not floating point.
    """
    fn = "group_norm_forward"
    check_array(input, "input", fn, min_ndim=2)
    num_groups = check_int(num_groups, "num_groups", fn)
    c = input.shape[1]
    if num_groups < 1 or c % num_groups:
        raise ValueError(
            f"{fn}: num_groups must be a positive divisor of the number of channels "
            f"C = {c}, got num_groups = {num_groups}"
        )
    check_array(weight, "weight", fn, optional=True, dtype=input.dtype, shape=(c,))
    check_array(bias, "bias", fn, optional=True, dtype=input.dtype, shape=(c,))
    eps = check_nonnegative(eps, "eps", fn)
    return _per_channel_norm(input, input.shape[0] * num_groups, weight, bias, eps)


def _per_channel_norm(x, rows, weight, bias, eps):
    """Normalize ``x`` as ``rows`` equal rows and apply a per-channel affine."""
    x_hat, inv_std = _normalize_rows(x.reshape(rows, -1), eps)  # (rows, m)
    return _per_channel_affine(x, x_hat, inv_std, weight, bias, input_stats=True)


def _per_channel_affine(x, x_hat, inv_std, weight, bias, *, input_stats):
    """``weight * x_hat + bias`` with ``(C,)`` parameters, and the cache for the backward."""
    bshape = (x.shape[1],) + (1,) * (x.ndim - 2)  # broadcast (C,) over (N, C, *)
    g = None if weight is None else weight.reshape(bshape)
    b = None if bias is None else bias.reshape(bshape)
    out = _affine(x_hat.reshape(x.shape), g, b)
    axes = (0, *range(2, x.ndim))
    return out, RowNormCache(x_hat, inv_std, g, bias is not None, x.shape, axes, input_stats)


def _per_channel_backward(dout, cache, fn):
    dx, dweight, dbias = _row_norm_backward(dout, cache, fn)
    # weight was cached as (C, 1, ..., 1) to broadcast; hand back (C,) gradients
    return (
        dx,
        None if dweight is None else dweight.reshape(-1),
        None if dbias is None else dbias.reshape(-1),
    )


def group_norm_backward(dout: np.ndarray, cache: RowNormCache):
    """Backward pass of :func:`group_norm_forward`: ``(dx, dweight, dbias)``, with the
    compact formula per (sample, group) and per-channel parameter gradients."""
    return _per_channel_backward(dout, cache, "group_norm_backward")


def instance_norm_forward(
    input: np.ndarray,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    *,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, RowNormCache]:
    """Instance normalization, as ``torch.nn.functional.instance_norm``: each (sample,
    channel) of ``(N, C, *)`` is normalized over its spatial positions,
    :math:`y = \\gamma_c (x - \\mu) / \\sqrt{\\sigma^2 + \\epsilon} + \\beta_c`.

    - ``use_input_stats=True`` (the default, and what ``nn.InstanceNorm2d`` does unless
      ``track_running_stats=True`` in eval mode): :math:`\\mu, \\sigma^2` are each
      instance's own mean and biased variance. Running statistics, if given, are updated
      **in place** with the *batch average* of the per-instance statistics, the variance
      unbiased (``L / (L - 1)`` times the biased one, ``L`` positions), ``momentum``
      weighting the new value as in :func:`~d2lcnn.numpy.batch_norm.batch_norm_forward`::

          running_mean = (1 - momentum) * running_mean + momentum * mean_n(mean_nc)
          running_var  = (1 - momentum) * running_var  + momentum * mean_n(var_nc * L / (L - 1))

    - ``use_input_stats=False``: every instance of channel ``c`` is normalized with
      ``running_mean[c], running_var[c]`` (required, left unchanged); the layer is then an
      affine map per channel, like BatchNorm in eval mode.

    Args:
        input: ``(N, C, *)`` with at least one spatial dimension, floating point.
        running_mean: ``(C,)``, input's dtype (start at 0), or ``None``. Default ``None``.
        running_var: ``(C,)``, input's dtype (start at **1**), or ``None``. Default ``None``.
        weight: scale ``(C,)``, or ``None`` for 1. Default ``None``.
        bias: shift ``(C,)``, or ``None`` for 0. Default ``None``.
        use_input_stats: normalize with each instance's statistics (and track them), or
            with the running ones. Default True.
        momentum: weight of the new statistics in the running averages, in ``[0, 1]``.
            Default 0.1.
        eps: added to the variance. Default 1e-5.

    Returns:
        ``(out, cache)``, ``out`` with ``input``'s shape and dtype.

    Raises:
        ValueError: if ``input`` has fewer than 3 dimensions, a single spatial element with
            ``use_input_stats`` (PyTorch: "Expected more than 1 spatial element when
            training"), a vector is not ``(C,)``, only one running statistic is given, or
            none with ``use_input_stats=False``; or ``momentum`` is outside ``[0, 1]``.
        TypeError: if an array is not floating point or does not have ``input``'s dtype,
            ``use_input_stats`` is not a bool or ``momentum`` not a float.

    Example:
        >>> x = np.array([[[1.0, 3.0], [10.0, 30.0]], [[3.0, 5.0], [10.0, 20.0]]])  # (2, 2, 2)
        >>> rm, rv = np.zeros(2), np.ones(2)
        >>> out, _ = instance_norm_forward(x, rm, rv, momentum=1.0, eps=0.0)
        >>> out
        array([[[-1.,  1.],
                [-1.,  1.]],
        <BLANKLINE>
               [[-1.,  1.],
                [-1.,  1.]]])
        >>> rm, rv  # batch means of the instance means, and of the unbiased variances
        (array([ 3. , 17.5]), array([  2., 125.]))
    """
    fn = "instance_norm_forward"
    check_array(input, "input", fn, min_ndim=3)
    c = input.shape[1]
    _check_channel_vectors(input, running_mean, running_var, weight, bias, fn)
    if not isinstance(use_input_stats, bool | np.bool_):
        raise TypeError(
            f"{fn}: use_input_stats must be a bool, got {type(use_input_stats).__name__}"
        )
    momentum = check_probability(momentum, "momentum", fn)
    eps = check_nonnegative(eps, "eps", fn)

    n, length = input.shape[0], math.prod(input.shape[2:])
    x3 = input.reshape(n, c, length)  # (N, C, L)
    if not use_input_stats:
        if running_mean is None:
            raise ValueError(
                f"{fn}: running_mean and running_var are required when use_input_stats=False"
            )
        inv_std = (1.0 / np.sqrt(running_var + eps)).astype(input.dtype)  # (C,)
        x_hat = (x3 - running_mean[:, None]) * inv_std[:, None]  # (N, C, L)
        rows_inv_std = np.tile(inv_std, n)[:, None]  # (N*C, 1): row n*C + c has channel c's
        return _per_channel_affine(
            input, x_hat.reshape(n * c, length), rows_inv_std, weight, bias, input_stats=False
        )
    if length <= 1:
        raise ValueError(
            f"{fn}: Expected more than 1 spatial element when training, got input of shape "
            f"{input.shape}"
        )
    if running_mean is not None:
        mean = x3.mean(axis=2).mean(axis=0)  # (C,): the batch average of instance means
        unbiased_var = x3.var(axis=2, ddof=1).mean(axis=0)  # (C,)
        _update_running_stats(running_mean, running_var, mean, unbiased_var, momentum)
    return _per_channel_norm(input, n * c, weight, bias, eps)


def instance_norm_backward(dout: np.ndarray, cache: RowNormCache):
    """Backward pass of :func:`instance_norm_forward`: ``(dx, dweight, dbias)``, the
    ``(C,)`` parameter gradients summed over samples and positions. With the instances' own
    statistics, ``dx`` is the compact formula of the module docstring per (sample, channel);
    with running statistics only the affine part is left,
    ``dx = weight / sqrt(running_var + eps) * dout``."""
    return _per_channel_backward(dout, cache, "instance_norm_backward")


# --------------------------------------------------------------------------- RMS norm


def rms_norm_forward(
    input: np.ndarray,
    normalized_shape,
    weight: np.ndarray | None = None,
    *,
    eps: float | None = None,
) -> tuple[np.ndarray, RMSNormCache]:
    """Root-mean-square normalization, as ``torch.nn.functional.rms_norm``:

    .. math::
        y = \\gamma \\, \\frac{x}{\\sqrt{\\operatorname{mean}(x^2) + \\epsilon}}

    over the trailing ``normalized_shape`` dimensions. No centring and no shift.

    Args:
        input: ``(*, *normalized_shape)``, floating point.
        normalized_shape: an int or tuple of ints, the trailing dimensions of ``input``.
        weight: scale of shape ``normalized_shape``, or ``None``.
        eps: added to the mean square. Default ``None``: ``np.finfo(x.dtype).eps``, as
            PyTorch does.

    Returns:
        ``(out, cache)``, ``out`` with ``input``'s shape and dtype.

    Raises:
        ValueError: if ``normalized_shape`` is not the trailing shape of ``input`` or ``weight``
            has the wrong shape.
        TypeError: if an array is not floating point or does not have ``input``'s dtype.
    """
    fn = "rms_norm_forward"
    check_array(input, "input", fn, min_ndim=1)
    shape = _normalized_shape(normalized_shape, input, fn)
    check_array(weight, "weight", fn, optional=True, dtype=input.dtype, shape=shape)
    eps = float(np.finfo(input.dtype).eps) if eps is None else check_nonnegative(eps, "eps", fn)
    x2 = input.reshape(-1, math.prod(shape))  # (rows, m)
    inv_rms = (1.0 / np.sqrt(np.mean(x2 * x2, axis=1, keepdims=True) + eps)).astype(input.dtype)
    x_hat = x2 * inv_rms  # (rows, m)
    out = _affine(x_hat.reshape(input.shape), weight, None)
    return out, RMSNormCache(x_hat, inv_rms, weight, input.shape)


def rms_norm_backward(dout: np.ndarray, cache: RMSNormCache):
    """Backward pass of :func:`rms_norm_forward`: ``(dx, dweight)``.

    With :math:`g = \\gamma \\, \\partial L/\\partial y` and :math:`r` the row's RMS,
    :math:`\\partial L/\\partial x = (g - \\hat x \\operatorname{mean}(g \\hat x)) / r`.
    """
    dout = check_dout(dout, cache.x_shape, "rms_norm_backward")
    x_hat, weight = cache.x_hat, cache.weight
    rows, m = x_hat.shape
    d2 = dout.reshape(rows, m)
    dweight = None
    if weight is not None:
        dweight = np.sum(d2 * x_hat, axis=0).reshape(weight.shape)
        g = d2 * weight.reshape(1, m)
    else:
        g = d2
    dx = cache.inv_rms * (g - x_hat * np.mean(g * x_hat, axis=1, keepdims=True))
    return dx.reshape(cache.x_shape), dweight


# --------------------------------------------------------------------------- LRN


def _channel_window_sum(a: np.ndarray, before: int, after: int) -> np.ndarray:
    """``out[:, c] = sum(a[:, c - before : c + after + 1])``, zeros outside the channels."""
    n, c = a.shape[:2]
    padded = np.zeros((n, c + before + after, *a.shape[2:]), dtype=a.dtype)
    padded[:, before : before + c] = a
    out = padded[:, :c].copy()
    for t in range(1, before + after + 1):
        out += padded[:, t : t + c]
    return out


def local_response_norm_forward(
    input: np.ndarray, size: int, *, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> tuple[np.ndarray, LocalResponseNormCache]:
    """Local response normalization across channels (AlexNet), as
    ``torch.nn.functional.local_response_norm``:

    .. math::
        y_c = x_c \\Big/ \\Big(k + \\frac{\\alpha}{n}
              \\sum_{c' = c - \\lfloor n/2 \\rfloor}^{c + \\lfloor (n-1)/2 \\rfloor}
              x_{c'}^2\\Big)^{\\beta}

    with ``n = size`` and channels outside ``[0, C)`` counting as zero. Note PyTorch's two
    conventions, kept here: ``alpha`` is divided by ``size`` (an average, not a sum, of the
    squares; AlexNet's paper uses the sum), and for an even ``size`` the window reaches one
    channel further back than forward.

    Args:
        input: ``(N, C, *)`` with at least one spatial dimension, floating point.
        size: ``n``, the number of channels in the window (>= 1).
        alpha: scale of the average of squares. Default 1e-4.
        beta: exponent. Default 0.75.
        k: additive constant. Default 1.0.

    Returns:
        ``(out, cache)``, ``out`` with ``input``'s shape and dtype.

    Raises:
        ValueError: if ``input`` has fewer than 3 dimensions or ``size`` < 1.
        TypeError: if ``input`` is not floating point or ``size`` is not an int.
    """
    fn = "local_response_norm_forward"
    check_array(input, "input", fn, min_ndim=3)
    size = check_int(size, "size", fn, minimum=1)
    sq_sum = _channel_window_sum(input * input, size // 2, (size - 1) // 2)  # (N, C, *)
    denom = k + (alpha / size) * sq_sum
    out = (input / denom**beta).astype(input.dtype, copy=False)
    return out, LocalResponseNormCache(input.copy(), denom, size, alpha, beta)


def local_response_norm_backward(dout: np.ndarray, cache: LocalResponseNormCache) -> np.ndarray:
    """Backward pass of :func:`local_response_norm_forward`.

    With :math:`D_c` the denominator's base, :math:`y_c = x_c D_c^{-\\beta}` and
    :math:`\\partial D_c / \\partial x_j = 2 \\alpha x_j / n` for each ``j`` in ``c``'s
    window, so

    .. math::
        \\frac{\\partial L}{\\partial x_j} = \\delta_j D_j^{-\\beta}
            - \\frac{2 \\alpha \\beta}{n} x_j \\sum_{c \\ni j} \\delta_c x_c D_c^{-\\beta - 1}

    where the sum runs over the channels ``c`` whose window holds ``j``: the window
    mirrored, ``floor((n-1)/2)`` channels back and ``floor(n/2)`` forward.
    """
    x, denom, n, alpha, beta = cache
    dout = check_dout(dout, x.shape, "local_response_norm_backward")
    pow_b = denom**-beta
    t = dout * x * pow_b / denom  # delta_c x_c D_c^(-beta-1)
    back = _channel_window_sum(t, (n - 1) // 2, n // 2)
    dx = dout * pow_b - (2 * alpha * beta / n) * x * back
    return dx.astype(x.dtype, copy=False)

"""Normalization layers in NumPy, forward and backward, with ``torch.nn.functional``
semantics: batch, layer, group, instance and RMS normalization, local response normalization
(AlexNet's "norm" layer), and folding an inference-mode BatchNorm into the preceding
convolution.

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
through :math:`\\mu` and :math:`\\sigma^2`; BatchNorm in eval mode uses fixed running
statistics, so they drop out and only the affine ``gamma / sqrt(running_var + eps)`` is left.

Layer, group and instance norm reshape their input to ``(rows, m)`` and share
:func:`_normalize_rows` / :func:`_normalize_rows_backward`. BatchNorm reduces over axes 0
and 2 of an ``(N, C, L)`` view instead, with ``einsum`` reductions and in-place updates
(see the notes in :func:`batch_norm_forward`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

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


class BatchNormCache(NamedTuple):
    """What :func:`batch_norm_backward` needs from the forward pass."""

    x_hat: np.ndarray  # (N, C, L): the normalized input, L = H*W (1 for an (N, C) input)
    inv_std: np.ndarray  # (C,): 1 / sqrt(var + eps), batch var in training, running in eval
    gamma: np.ndarray | None  # (C,)
    has_beta: bool
    training: bool
    x_shape: tuple[int, ...]  # (N, C, *)


class RowNormCache(NamedTuple):
    """What the backward passes of layer, group and instance norm need."""

    x_hat: np.ndarray  # (rows, m): each row normalized by its own statistics
    inv_std: np.ndarray  # (rows, 1)
    gamma: np.ndarray | None  # broadcastable against x_shape
    has_beta: bool
    x_shape: tuple[int, ...]
    param_axes: tuple[int, ...]  # the axes of x that gamma's gradient sums over


class RMSNormCache(NamedTuple):
    """What :func:`rms_norm_backward` needs from the forward pass."""

    x_hat: np.ndarray  # (rows, m): x / rms(x) per row
    inv_rms: np.ndarray  # (rows, 1)
    gamma: np.ndarray | None  # normalized_shape
    x_shape: tuple[int, ...]


class LocalResponseNormCache(NamedTuple):
    """What :func:`local_response_norm_backward` needs from the forward pass."""

    x: np.ndarray  # (N, C, ...), a private copy
    denom: np.ndarray  # (N, C, ...): k + alpha/size * (window sum of x^2)
    size: int
    alpha: float
    beta: float


# --------------------------------------------------------------------------- argument checks


def _check_array(a, name: str, fn: str, *, min_ndim: int = 0) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy array, got {type(a).__name__}")
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{fn}: {name} must be a floating-point array, got dtype {a.dtype}")
    if a.ndim < min_ndim:
        raise ValueError(
            f"{fn}: {name} must be at least {min_ndim}-D, got {a.ndim}-D shape {a.shape}"
        )
    return a


def _check_param(a, name: str, shape: tuple[int, ...], x: np.ndarray, fn: str) -> None:
    """``gamma``/``beta``/running statistics: ``None`` or an array of ``shape``."""
    if a is None:
        return
    _check_array(a, name, fn)
    if a.shape != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape}, got {a.shape}")
    if a.dtype != x.dtype:
        raise TypeError(f"{fn}: {name} must have x's dtype {x.dtype}, got {a.dtype}")


def _check_eps(eps, fn: str) -> float:
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.floating):
        raise TypeError(f"{fn}: eps must be a float, got {type(eps).__name__} {eps!r}")
    if not eps >= 0:
        raise ValueError(f"{fn}: eps must be >= 0, got {eps!r}")
    return float(eps)


def _check_dout(dout, shape, fn: str) -> np.ndarray:
    dout = np.asarray(dout)
    if dout.shape != tuple(shape):
        raise ValueError(
            f"{fn}: dout must have the forward output's shape {tuple(shape)}, got {dout.shape}"
        )
    return dout


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
            f"x, got normalized_shape {shape} for x of shape {x.shape}"
        )
    return shape


# --------------------------------------------------------------------------- batch norm


def batch_norm_forward(
    x: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    *,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    training: bool,
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
        x: ``(N, C)``, ``(N, C, H, W)`` or generally ``(N, C, *)``, floating point.
        gamma: scale ``(C,)``, or ``None`` for 1.
        beta: shift ``(C,)``, or ``None`` for 0.
        running_mean: ``(C,)``, x's dtype (start at 0); updated in place in training.
            May be ``None`` in training (then nothing is tracked).
        running_var: ``(C,)``, x's dtype (start at **1**); updated in place in training.
        training: use (and track) batch statistics, or use the running ones.
        momentum: weight of the new batch in the running averages. Default 0.1.
            ``None`` gives the cumulative average (as ``nn.BatchNorm2d(momentum=None)``):
            the weight is ``1 / (num_batches_tracked + 1)``.
        eps: added to the variance for numerical stability. Default 1e-5.
        num_batches_tracked: with ``momentum=None``, how many batches the running
            statistics already average (0 for the first batch); the caller increments it.

    Returns:
        ``(out, cache)``: ``out`` has ``x``'s shape and dtype; ``cache`` is a
        :class:`BatchNormCache` for :func:`batch_norm_backward`.

    Raises:
        ValueError: if ``x`` has fewer than 2 dimensions, a parameter or running statistic is not
            ``(C,)``, running statistics are missing in eval mode, ``momentum=None`` comes
            without ``num_batches_tracked``, or a channel has only one value in training
            ("Expected more than 1 value per channel when training", as PyTorch says).
        TypeError: if an array is not floating point or does not have ``x``'s dtype.

    Example:
        >>> x = np.array([[1.0, 10.0], [3.0, 30.0]])
        >>> rm, rv = np.zeros(2), np.ones(2)
        >>> out, _ = batch_norm_forward(x, None, None, running_mean=rm, running_var=rv,
        ...                             training=True, eps=0.0)
        >>> out
        array([[-1., -1.],
               [ 1.,  1.]])
        >>> rm, rv  # 0.9 * old + 0.1 * (mean, unbiased var)
        (array([0.2, 2. ]), array([ 1.1, 20.9]))
    """
    fn = "batch_norm_forward"
    _check_array(x, "x", fn)
    if x.ndim < 2:
        raise ValueError(
            f"{fn}: x must be at least 2-D, (N, C) or (N, C, H, W), got {x.ndim}-D shape {x.shape}"
        )
    c = x.shape[1]
    for name, a in (
        ("gamma", gamma),
        ("beta", beta),
        ("running_mean", running_mean),
        ("running_var", running_var),
    ):
        _check_param(a, name, (c,), x, fn)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{fn}: running_mean and running_var must both be given or both None")
    eps = _check_eps(eps, fn)
    if not isinstance(training, bool | np.bool_):
        raise TypeError(f"{fn}: training must be a bool, got {type(training).__name__}")

    n = x.shape[0]
    x3 = x.reshape(n, c, -1)  # (N, C, L): a view, since x's layout is kept
    m = n * x3.shape[2]  # elements per channel
    if training:
        if m <= 1:
            raise ValueError(
                f"{fn}: Expected more than 1 value per channel when training, got input of "
                f"shape {x.shape}"
            )
        factor = _momentum_factor(momentum, num_batches_tracked, fn)
        # Sum over L (contiguous, pairwise summation: accurate in float32), then over N.
        mean = x3.sum(axis=2).sum(axis=0) / m  # (C,)
        x_hat = x3 - mean[:, None]  # (N, C, L): centred, normalized in place below
        var = np.einsum("ncl,ncl->c", x_hat, x_hat) / m  # (C,), biased
        if running_mean is not None:
            running_mean *= 1 - factor
            running_mean += factor * mean
            running_var *= 1 - factor
            running_var += factor * var * (m / (m - 1))
    else:
        if running_mean is None:
            raise ValueError(f"{fn}: running_mean and running_var are required in eval mode")
        var = running_var
        x_hat = x3 - running_mean[:, None]  # (N, C, L)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)  # (C,)
    x_hat *= inv_std[:, None]

    out = x_hat * gamma[:, None] if gamma is not None else x_hat.copy()  # (N, C, L)
    if beta is not None:
        out += beta[:, None]
    cache = BatchNormCache(x_hat, inv_std, gamma, beta is not None, bool(training), x.shape)
    return out.reshape(x.shape), cache


def _momentum_factor(momentum, num_batches_tracked, fn: str) -> float:
    if momentum is None:
        if isinstance(num_batches_tracked, bool) or not isinstance(
            num_batches_tracked, int | np.integer
        ):
            raise ValueError(
                f"{fn}: momentum=None (cumulative average) needs num_batches_tracked, the "
                f"number of batches seen before this one, got {num_batches_tracked!r}"
            )
        if num_batches_tracked < 0:
            raise ValueError(f"{fn}: num_batches_tracked must be >= 0, got {num_batches_tracked}")
        return 1.0 / (int(num_batches_tracked) + 1)
    if isinstance(momentum, bool) or not isinstance(momentum, int | float | np.floating):
        raise TypeError(f"{fn}: momentum must be a float or None, got {momentum!r}")
    if not 0 <= momentum <= 1:
        raise ValueError(f"{fn}: momentum must be in [0, 1], got {momentum!r}")
    return float(momentum)


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
        ``(dx, dgamma, dbeta)``; ``dgamma``/``dbeta`` are ``None`` when ``gamma``/``beta``
        were.

    Raises:
        ValueError: if ``dout`` does not have the forward output's shape.
    """
    dout = _check_dout(dout, cache.x_shape, "batch_norm_backward")
    x_hat, inv_std, gamma = cache.x_hat, cache.inv_std, cache.gamma
    n, c, length = x_hat.shape
    d3 = dout.reshape(n, c, length)  # (N, C, L)
    dbeta = d3.sum(axis=2).sum(axis=0)  # (C,)
    dgamma = np.einsum("ncl,ncl->c", d3, x_hat)  # (C,)
    scale = inv_std if gamma is None else gamma * inv_std  # (C,)
    if cache.training:
        m = n * length
        dx = x_hat * (-dgamma / m)[:, None]  # (N, C, L)
        dx += d3
        dx -= (dbeta / m)[:, None]
        dx *= scale[:, None]
    else:
        dx = d3 * scale[:, None]
    return (
        dx.reshape(cache.x_shape),
        dgamma if gamma is not None else None,
        dbeta if cache.has_beta else None,
    )


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


def _affine(x_hat, gamma, beta):
    out = x_hat * gamma if gamma is not None else x_hat.copy()
    if beta is not None:
        out += beta
    return out


def _row_norm_backward(dout, cache: RowNormCache, fn: str):
    """Backward of layer/group/instance norm: gradients of the affine map, then of the
    per-row normalization. ``gamma`` broadcasts against ``x`` (trailing or per-channel)."""
    dout = _check_dout(dout, cache.x_shape, fn)
    x_hat = cache.x_hat.reshape(cache.x_shape)
    gamma = cache.gamma
    dgamma = dbeta = None
    if gamma is not None:
        dgamma = np.sum(dout * x_hat, axis=cache.param_axes).reshape(gamma.shape)
    if cache.has_beta:
        dbeta = np.sum(dout, axis=cache.param_axes).reshape(
            gamma.shape if gamma is not None else _param_shape(cache)
        )
    g = dout * gamma if gamma is not None else dout  # dL/dx_hat, x's shape
    dx = _normalize_rows_backward(g.reshape(cache.x_hat.shape), cache.x_hat, cache.inv_std)
    return dx.reshape(cache.x_shape), dgamma, dbeta


def _param_shape(cache: RowNormCache) -> tuple[int, ...]:
    kept = [d for i, d in enumerate(cache.x_shape) if i not in cache.param_axes]
    return tuple(kept)


def layer_norm_forward(
    x: np.ndarray,
    normalized_shape,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    *,
    eps: float = 1e-5,
) -> tuple[np.ndarray, RowNormCache]:
    """Layer normalization, as ``torch.nn.functional.layer_norm``.

    Each sample is normalized over its trailing ``normalized_shape`` dimensions (e.g.
    ``(C, H, W)``) with its own mean and biased variance; ``gamma``/``beta`` are
    elementwise over ``normalized_shape``. The same in training and at inference.

    Args:
        x: ``(*, *normalized_shape)``, floating point.
        normalized_shape: an int or tuple of ints, the trailing dimensions of ``x``.
        gamma: scale of shape ``normalized_shape``, or ``None`` for 1.
        beta: shift of shape ``normalized_shape``, or ``None`` for 0.
        eps: added to the variance. Default 1e-5.

    Returns:
        ``(out, cache)``, ``out`` with ``x``'s shape and dtype.

    Raises:
        ValueError: if ``normalized_shape`` is not the trailing shape of ``x``, or
            ``gamma``/``beta`` do not have shape ``normalized_shape``.
        TypeError: if an array is not floating point or does not have ``x``'s dtype.
    """
    fn = "layer_norm_forward"
    _check_array(x, "x", fn, min_ndim=1)
    shape = _normalized_shape(normalized_shape, x, fn)
    _check_param(gamma, "gamma", shape, x, fn)
    _check_param(beta, "beta", shape, x, fn)
    eps = _check_eps(eps, fn)
    m = math.prod(shape)
    x_hat, inv_std = _normalize_rows(x.reshape(-1, m), eps)  # (rows, m)
    out = _affine(x_hat.reshape(x.shape), gamma, beta)
    lead = tuple(range(x.ndim - len(shape)))
    return out, RowNormCache(x_hat, inv_std, gamma, beta is not None, x.shape, lead)


def layer_norm_backward(dout: np.ndarray, cache: RowNormCache):
    """Backward pass of :func:`layer_norm_forward`: ``(dx, dgamma, dbeta)`` (``None`` for
    an absent ``gamma``/``beta``). ``dx`` follows the compact formula of the module
    docstring per sample; ``dgamma``/``dbeta`` sum over the leading dimensions."""
    return _row_norm_backward(dout, cache, "layer_norm_backward")


def group_norm_forward(
    x: np.ndarray,
    num_groups: int,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    *,
    eps: float = 1e-5,
) -> tuple[np.ndarray, RowNormCache]:
    """Group normalization, as ``torch.nn.functional.group_norm``.

    The ``C`` channels are split into ``num_groups`` consecutive groups of ``C / G``;
    each sample's group is normalized over its channels and spatial positions together.
    ``gamma``/``beta`` are per channel. ``G = 1`` is LayerNorm over ``(C, H, W)`` with
    per-channel affine; ``G = C`` is InstanceNorm.

    Args:
        x: ``(N, C, *)``, floating point, with ``C`` divisible by ``num_groups``.
        num_groups: ``G``.
        gamma: scale ``(C,)``, or ``None``.
        beta: shift ``(C,)``, or ``None``.
        eps: added to the variance. Default 1e-5.

    Returns:
        ``(out, cache)``, ``out`` with ``x``'s shape and dtype.

    Raises:
        ValueError: if ``x`` has fewer than 2 dimensions, ``num_groups`` is not positive or
            does not divide ``C``, or ``gamma``/``beta`` are not ``(C,)``.
        TypeError: if ``num_groups`` is not an int or an array is not floating point.
    """
    fn = "group_norm_forward"
    _check_array(x, "x", fn, min_ndim=2)
    if isinstance(num_groups, bool) or not isinstance(num_groups, int | np.integer):
        raise TypeError(f"{fn}: num_groups must be an int, got {type(num_groups).__name__}")
    c = x.shape[1]
    if num_groups < 1 or c % num_groups:
        raise ValueError(
            f"{fn}: num_groups must be a positive divisor of the number of channels "
            f"C = {c}, got num_groups = {num_groups}"
        )
    _check_param(gamma, "gamma", (c,), x, fn)
    _check_param(beta, "beta", (c,), x, fn)
    eps = _check_eps(eps, fn)
    return _per_channel_norm(x, x.shape[0] * int(num_groups), gamma, beta, eps)


def _per_channel_norm(x, rows, gamma, beta, eps):
    """Normalize ``x`` as ``rows`` equal rows and apply a per-channel affine."""
    x_hat, inv_std = _normalize_rows(x.reshape(rows, -1), eps)  # (rows, m)
    bshape = (x.shape[1],) + (1,) * (x.ndim - 2)  # broadcast (C,) over (N, C, *)
    g = None if gamma is None else gamma.reshape(bshape)
    b = None if beta is None else beta.reshape(bshape)
    out = _affine(x_hat.reshape(x.shape), g, b)
    axes = (0, *range(2, x.ndim))
    return out, RowNormCache(x_hat, inv_std, g, beta is not None, x.shape, axes)


def _per_channel_backward(dout, cache, fn):
    dx, dgamma, dbeta = _row_norm_backward(dout, cache, fn)
    # gamma was cached as (C, 1, ..., 1) to broadcast; hand back (C,) gradients
    return (
        dx,
        None if dgamma is None else dgamma.reshape(-1),
        None if dbeta is None else dbeta.reshape(-1),
    )


def group_norm_backward(dout: np.ndarray, cache: RowNormCache):
    """Backward pass of :func:`group_norm_forward`: ``(dx, dgamma, dbeta)``, with the
    compact formula per (sample, group) and per-channel parameter gradients."""
    return _per_channel_backward(dout, cache, "group_norm_backward")


def instance_norm_forward(
    x: np.ndarray,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    *,
    eps: float = 1e-5,
) -> tuple[np.ndarray, RowNormCache]:
    """Instance normalization, as ``torch.nn.functional.instance_norm`` with
    ``use_input_stats=True`` (no running statistics): each (sample, channel) is normalized
    over its spatial positions; ``gamma``/``beta`` are per channel.

    Args:
        x: ``(N, C, *)`` with at least one spatial dimension, floating point.
        gamma: scale ``(C,)``, or ``None``.
        beta: shift ``(C,)``, or ``None``.
        eps: added to the variance. Default 1e-5.

    Returns:
        ``(out, cache)``, ``out`` with ``x``'s shape and dtype.

    Raises:
        ValueError: if ``x`` has fewer than 3 dimensions, a single spatial element
            (PyTorch: "Expected more than 1 spatial element when training"), or
            ``gamma``/``beta`` are not ``(C,)``.
        TypeError: if an array is not floating point or does not have ``x``'s dtype.
    """
    fn = "instance_norm_forward"
    _check_array(x, "x", fn, min_ndim=3)
    if math.prod(x.shape[2:]) <= 1:
        raise ValueError(
            f"{fn}: Expected more than 1 spatial element when training, got x of shape {x.shape}"
        )
    c = x.shape[1]
    _check_param(gamma, "gamma", (c,), x, fn)
    _check_param(beta, "beta", (c,), x, fn)
    eps = _check_eps(eps, fn)
    return _per_channel_norm(x, x.shape[0] * c, gamma, beta, eps)


def instance_norm_backward(dout: np.ndarray, cache: RowNormCache):
    """Backward pass of :func:`instance_norm_forward`: ``(dx, dgamma, dbeta)``."""
    return _per_channel_backward(dout, cache, "instance_norm_backward")


# --------------------------------------------------------------------------- RMS norm


def rms_norm_forward(
    x: np.ndarray,
    normalized_shape,
    gamma: np.ndarray | None = None,
    *,
    eps: float | None = None,
) -> tuple[np.ndarray, RMSNormCache]:
    """Root-mean-square normalization, as ``torch.nn.functional.rms_norm``:

    .. math::
        y = \\gamma \\, \\frac{x}{\\sqrt{\\operatorname{mean}(x^2) + \\epsilon}}

    over the trailing ``normalized_shape`` dimensions. No centring and no shift.

    Args:
        x: ``(*, *normalized_shape)``, floating point.
        normalized_shape: an int or tuple of ints, the trailing dimensions of ``x``.
        gamma: scale of shape ``normalized_shape``, or ``None``.
        eps: added to the mean square. Default ``None``: ``np.finfo(x.dtype).eps``, as
            PyTorch does.

    Returns:
        ``(out, cache)``, ``out`` with ``x``'s shape and dtype.

    Raises:
        ValueError: if ``normalized_shape`` is not the trailing shape of ``x`` or ``gamma``
            has the wrong shape.
        TypeError: if an array is not floating point or does not have ``x``'s dtype.
    """
    fn = "rms_norm_forward"
    _check_array(x, "x", fn, min_ndim=1)
    shape = _normalized_shape(normalized_shape, x, fn)
    _check_param(gamma, "gamma", shape, x, fn)
    eps = float(np.finfo(x.dtype).eps) if eps is None else _check_eps(eps, fn)
    x2 = x.reshape(-1, math.prod(shape))  # (rows, m)
    inv_rms = (1.0 / np.sqrt(np.mean(x2 * x2, axis=1, keepdims=True) + eps)).astype(x.dtype)
    x_hat = x2 * inv_rms  # (rows, m)
    out = _affine(x_hat.reshape(x.shape), gamma, None)
    return out, RMSNormCache(x_hat, inv_rms, gamma, x.shape)


def rms_norm_backward(dout: np.ndarray, cache: RMSNormCache):
    """Backward pass of :func:`rms_norm_forward`: ``(dx, dgamma)``.

    With :math:`g = \\gamma \\, \\partial L/\\partial y` and :math:`r` the row's RMS,
    :math:`\\partial L/\\partial x = (g - \\hat x \\operatorname{mean}(g \\hat x)) / r`.
    """
    dout = _check_dout(dout, cache.x_shape, "rms_norm_backward")
    x_hat, gamma = cache.x_hat, cache.gamma
    rows, m = x_hat.shape
    d2 = dout.reshape(rows, m)
    dgamma = None
    if gamma is not None:
        dgamma = np.sum(d2 * x_hat, axis=0).reshape(gamma.shape)
        g = d2 * gamma.reshape(1, m)
    else:
        g = d2
    dx = cache.inv_rms * (g - x_hat * np.mean(g * x_hat, axis=1, keepdims=True))
    return dx.reshape(cache.x_shape), dgamma


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
    x: np.ndarray, size: int, *, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
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
        x: ``(N, C, *)`` with at least one spatial dimension, floating point.
        size: ``n``, the number of channels in the window (>= 1).
        alpha: scale of the average of squares. Default 1e-4.
        beta: exponent. Default 0.75.
        k: additive constant. Default 1.0.

    Returns:
        ``(out, cache)``, ``out`` with ``x``'s shape and dtype.

    Raises:
        ValueError: if ``x`` has fewer than 3 dimensions or ``size`` < 1.
        TypeError: if ``x`` is not floating point or ``size`` is not an int.
    """
    fn = "local_response_norm_forward"
    _check_array(x, "x", fn, min_ndim=3)
    if isinstance(size, bool) or not isinstance(size, int | np.integer):
        raise TypeError(f"{fn}: size must be an int, got {type(size).__name__} {size!r}")
    if size < 1:
        raise ValueError(f"{fn}: size must be >= 1, got {size}")
    sq_sum = _channel_window_sum(x * x, size // 2, (size - 1) // 2)  # (N, C, *)
    denom = k + (alpha / size) * sq_sum
    out = (x / denom**beta).astype(x.dtype, copy=False)
    return out, LocalResponseNormCache(x.copy(), denom, int(size), alpha, beta)


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
    dout = _check_dout(dout, x.shape, "local_response_norm_backward")
    pow_b = denom**-beta
    t = dout * x * pow_b / denom  # delta_c x_c D_c^(-beta-1)
    back = _channel_window_sum(t, (n - 1) // 2, n // 2)
    dx = dout * pow_b - (2 * alpha * beta / n) * x * back
    return dx.astype(x.dtype, copy=False)


# --------------------------------------------------------------------------- conv-BN folding


def fuse_conv_bn(
    w: np.ndarray,
    b: np.ndarray | None,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray]:
    """Fold an eval-mode BatchNorm into the convolution before it.

    In eval mode BatchNorm is a per-channel affine map, ``y = s (z - mu) + beta`` with
    ``s = gamma / sqrt(running_var + eps)``; applied to a convolution ``z = w * x + b`` it
    gives a convolution with

    .. math::
        w' = s_o \\, w_o, \\qquad b' = s_o (b_o - \\mu_o) + \\beta_o

    for each output channel ``o``: one layer instead of two at inference.

    Args:
        w: conv weights ``(C_out, C_in/groups, kH, kW)``.
        b: conv bias ``(C_out,)`` or ``None``.
        running_mean, running_var: BatchNorm statistics ``(C_out,)``.
        gamma, beta: BatchNorm affine ``(C_out,)``, or ``None`` for 1 and 0.
        eps: BatchNorm's eps. Default 1e-5.

    Returns:
        ``(w_fused, b_fused)``, new arrays with ``w``'s dtype.

    Raises:
        ValueError: if ``w`` is not 4-D or a vector is not ``(C_out,)``.
        TypeError: if an array is not floating point or does not have ``w``'s dtype.
    """
    fn = "fuse_conv_bn"
    _check_array(w, "w", fn)
    if w.ndim != 4:
        raise ValueError(
            f"{fn}: w must be 4-D (C_out, C_in/groups, kH, kW), got {w.ndim}-D shape {w.shape}"
        )
    c = (w.shape[0],)
    for name, a in (("b", b), ("gamma", gamma), ("beta", beta)):
        _check_param(a, name, c, w, fn)
    for name, a in (("running_mean", running_mean), ("running_var", running_var)):
        if a is None:
            raise TypeError(f"{fn}: {name} must be a numpy array, got None")
        _check_param(a, name, c, w, fn)
    eps = _check_eps(eps, fn)
    scale = 1.0 / np.sqrt(running_var + eps)  # (C_out,)
    if gamma is not None:
        scale = gamma * scale
    w_fused = w * scale[:, None, None, None]
    b_fused = ((0 if b is None else b) - running_mean) * scale
    if beta is not None:
        b_fused = b_fused + beta
    return w_fused.astype(w.dtype, copy=False), b_fused.astype(w.dtype, copy=False)

"""Dropout in NumPy, forward and backward: inverted dropout (as ``torch.nn.functional.dropout``),
the original "vanilla" dropout, and channel dropout (as ``torch.nn.functional.dropout2d``).

``p`` is the probability of *dropping* a unit, as in PyTorch (some older course code uses the
keep probability instead). The keep mask is drawn as ``rng.random(shape) < 1 - p`` from an
explicit :class:`numpy.random.Generator`, or passed in as ``mask`` (``True`` = keep), so a
test or a lecture can replay exactly the same units being dropped.

Inverted vs vanilla dropout. Both keep each unit with probability ``1 - p`` while training,
so the expected training output is ``(1 - p) x``. Inverted dropout divides the kept units by
``1 - p`` during training, so that expectation is ``x`` and evaluation is the identity;
vanilla dropout (Srivastava et al., 2014) leaves training outputs unscaled and instead
multiplies by ``1 - p`` at test time. Same expectations, but only inverted dropout leaves the
deployed network untouched, which is why every framework uses it.

``p = 1`` (drop everything) is accepted and, as in PyTorch, gives zeros and zero gradients
rather than ``0 / 0``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "DropoutCache",
    "dropout_forward",
    "dropout_backward",
    "vanilla_dropout_forward",
    "vanilla_dropout_backward",
    "dropout2d_forward",
    "dropout2d_backward",
]


class DropoutCache(NamedTuple):
    """The forward pass was ``out = x * multiplier``; the backward is ``dout * multiplier``."""

    multiplier: np.ndarray | float  # x's shape, broadcastable to it, or a scalar
    x_shape: tuple[int, ...]


def _check_p(p, fn: str) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float | np.integer | np.floating):
        raise TypeError(f"{fn}: p must be a real number in [0, 1], got {type(p).__name__}")
    if not 0.0 <= p <= 1.0:  # also rejects NaN
        raise ValueError(f"{fn}: p (the drop probability) must be in [0, 1], got {p}")
    return float(p)


def _check_x(x, fn: str, ndim: int | None = None) -> None:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{fn}: x must be a numpy array, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{fn}: x must be a floating-point array, got dtype {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{fn}: x must be {ndim}-D (N, C, H, W), got {x.ndim}-D shape {x.shape}")


def _keep_mask(shape, p, rng, mask, fn) -> np.ndarray:
    """The boolean keep mask: ``mask`` if given (checked), else drawn from ``rng``."""
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            raise TypeError(f"{fn}: mask must be a boolean array (True = keep), got {mask.dtype}")
        if mask.shape != tuple(shape):
            raise ValueError(f"{fn}: mask must have shape {tuple(shape)}, got {mask.shape}")
        return mask
    if rng is None:
        # A fresh, unseeded generator: the layer never touches global random state.
        rng = np.random.default_rng()
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{fn}: rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng.random(shape) < 1 - p


def _inverted(x, p, training, rng, mask, mask_shape, fn):
    p = _check_p(p, fn)
    if not training:
        return x.copy(), DropoutCache(1.0, x.shape)
    keep = _keep_mask(mask_shape, p, rng, mask, fn)
    # p = 1 drops everything; the scale 1 / (1 - p) would be 1 / 0.
    scale = 0.0 if p == 1 else 1 / (1 - p)
    multiplier = (keep * scale).astype(x.dtype)  # mask_shape: x's shape or (N, C, 1, 1)
    return x * multiplier, DropoutCache(multiplier, x.shape)


def _backward(dout, cache: DropoutCache, fn: str) -> np.ndarray:
    dout = np.asarray(dout)
    if dout.shape != cache.x_shape:
        raise ValueError(f"{fn}: dout must have x's shape {cache.x_shape}, got {dout.shape}")
    return (dout * cache.multiplier).astype(dout.dtype, copy=False)


def dropout_forward(
    x: np.ndarray,
    *,
    p: float = 0.5,
    training: bool = True,
    rng: np.random.Generator | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, DropoutCache]:
    """Inverted dropout, as ``torch.nn.functional.dropout``: while training, zero each element
    with probability ``p`` and scale the survivors by ``1 / (1 - p)``; in evaluation, the
    identity.

    .. math::
        \\text{out} = \\frac{m \\odot x}{1 - p}, \\qquad m_i \\sim \\mathrm{Bernoulli}(1 - p),
        \\qquad \\mathbb{E}[\\text{out}] = x.

    Args:
        x: any shape, floating point.
        p: probability of dropping an element, in ``[0, 1]``. Default 0.5.
        training: apply dropout (True) or return ``x`` unchanged (False). Default True.
        rng: where the mask comes from; ``None`` uses a fresh unseeded generator, so pass
            ``np.random.default_rng(seed)`` for reproducible masks. Default ``None``.
        mask: an explicit boolean keep mask of ``x``'s shape (``True`` = keep) that replaces
            the random draw. Default ``None``.

    Returns:
        ``(out, cache)``: ``out`` has ``x``'s shape and dtype.

    Raises:
        ValueError: ``p`` outside ``[0, 1]``, or a mask of the wrong shape.
        TypeError: ``rng`` not a Generator, or a non-boolean mask.

    Example:
        >>> out, _ = dropout_forward(np.ones(4), p=0.5, mask=np.array([True, False, True, True]))
        >>> out
        array([2., 0., 2., 2.])
    """
    fn = "dropout_forward"
    _check_x(x, fn)
    return _inverted(x, p, training, rng, mask, x.shape, fn)


def dropout_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """Backward of :func:`dropout_forward`: the same mask and scale, ``dout * m / (1 - p)``
    (the identity in evaluation)."""
    return _backward(dout, cache, "dropout_backward")


def vanilla_dropout_forward(
    x: np.ndarray,
    *,
    p: float = 0.5,
    training: bool = True,
    rng: np.random.Generator | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, DropoutCache]:
    """The original dropout of Srivastava et al. (2014): while training, zero each element
    with probability ``p`` *without* rescaling; in evaluation, multiply by the keep
    probability ``1 - p`` so that test outputs match the training expectation.

    Args: as :func:`dropout_forward`.

    Returns:
        ``(out, cache)``: ``out`` has ``x``'s shape and dtype.
    """
    fn = "vanilla_dropout_forward"
    _check_x(x, fn)
    p = _check_p(p, fn)
    if not training:
        keep_prob = x.dtype.type(1 - p)
        return x * keep_prob, DropoutCache(keep_prob, x.shape)
    multiplier = _keep_mask(x.shape, p, rng, mask, fn).astype(x.dtype)
    return x * multiplier, DropoutCache(multiplier, x.shape)


def vanilla_dropout_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """Backward of :func:`vanilla_dropout_forward`: ``dout * m`` while training,
    ``dout * (1 - p)`` in evaluation."""
    return _backward(dout, cache, "vanilla_dropout_backward")


def dropout2d_forward(
    x: np.ndarray,
    *,
    p: float = 0.5,
    training: bool = True,
    rng: np.random.Generator | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, DropoutCache]:
    """Channel dropout, as ``torch.nn.functional.dropout2d``: zero whole feature maps
    ``x[n, c]`` with probability ``p``, scale the kept ones by ``1 / (1 - p)``.

    Neighbouring pixels of a feature map are strongly correlated, so dropping single pixels
    regularises a convolutional layer little; dropping whole channels does (Tompson et al.,
    2015).

    Args:
        x: ``(N, C, H, W)``, floating point.
        p, training, rng: as :func:`dropout_forward`.
        mask: an explicit boolean keep mask of shape ``(N, C, 1, 1)``. Default ``None``.

    Returns:
        ``(out, cache)``: ``out`` has ``x``'s shape and dtype.
    """
    fn = "dropout2d_forward"
    _check_x(x, fn, ndim=4)
    return _inverted(x, p, training, rng, mask, (*x.shape[:2], 1, 1), fn)


def dropout2d_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """Backward of :func:`dropout2d_forward`: each channel's gradient is kept and scaled or
    zeroed with its feature map."""
    return _backward(dout, cache, "dropout2d_backward")

"""Dropout in NumPy, forward and backward: inverted dropout (as ``torch.nn.functional.dropout``),
the original "vanilla" dropout, and channel dropout (as ``torch.nn.functional.dropout2d``).

``p`` is the probability of *dropping* a unit, as in PyTorch (some older course code uses the
keep probability instead). The keep mask is drawn as ``generator.random(shape) < 1 - p`` from an
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

from d2lcnn.checks import check_probability
from d2lcnn.numpy._checks import check_array, check_dout, check_generator

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


def _keep_mask(shape, p, generator, mask, fn) -> np.ndarray:
    """The boolean keep mask: ``mask`` if given (checked), else drawn from ``generator``."""
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            raise TypeError(f"{fn}: mask must be a boolean array (True = keep), got {mask.dtype}")
        if mask.shape != tuple(shape):
            raise ValueError(f"{fn}: mask must have shape {tuple(shape)}, got {mask.shape}")
        return mask
    if generator is None:
        # A fresh, unseeded generator: the layer never touches global random state.
        generator = np.random.default_rng()
    return check_generator(generator, fn).random(shape) < 1 - p


def _inverted(x, p, training, generator, mask, mask_shape, fn):
    p = check_probability(p, "p (the drop probability)", fn)
    if not training:
        return x.copy(), DropoutCache(1.0, x.shape)
    keep = _keep_mask(mask_shape, p, generator, mask, fn)
    # p = 1 drops everything; the scale 1 / (1 - p) would be 1 / 0.
    scale = 0.0 if p == 1 else 1 / (1 - p)
    multiplier = (keep * scale).astype(x.dtype)  # mask_shape: x's shape or (N, C, 1, 1)
    return x * multiplier, DropoutCache(multiplier, x.shape)


def _backward(dout, cache: DropoutCache, fn: str) -> np.ndarray:
    dout = check_dout(dout, cache.x_shape, fn)
    return (dout * cache.multiplier).astype(dout.dtype, copy=False)


def dropout_forward(
    input: np.ndarray,
    *,
    p: float = 0.5,
    training: bool = True,
    generator: np.random.Generator | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, DropoutCache]:
    """Inverted dropout, as ``torch.nn.functional.dropout``: while training, zero each element
    with probability ``p`` and scale the survivors by ``1 / (1 - p)``; in evaluation, the
    identity.

    .. math::
        \\text{out} = \\frac{m \\odot x}{1 - p}, \\qquad m_i \\sim \\mathrm{Bernoulli}(1 - p),
        \\qquad \\mathbb{E}[\\text{out}] = x.

    Args:
        input: any shape, floating point.
        p: probability of dropping an element, in ``[0, 1]``. Default 0.5.
        training: apply dropout (True) or return ``input`` unchanged (False). Default True.
        generator: where the mask comes from; ``None`` uses a fresh unseeded generator, so pass
            ``np.random.default_rng(seed)`` for reproducible masks. Default ``None``.
        mask: an explicit boolean keep mask of ``input``'s shape (``True`` = keep) that replaces
            the random draw. Default ``None``.

    Returns:
        ``(out, cache)``: ``out`` has ``input``'s shape and dtype.

    Raises:
        ValueError: ``p`` outside ``[0, 1]``, or a mask of the wrong shape.
        TypeError: ``generator`` not a Generator, or a non-boolean mask.

    Example:
        >>> out, _ = dropout_forward(np.ones(4), p=0.5, mask=np.array([True, False, True, True]))
        >>> out
        array([2., 0., 2., 2.])
    """
    fn = "dropout_forward"
    check_array(input, "input", fn)
    return _inverted(input, p, training, generator, mask, input.shape, fn)


def dropout_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """Backward of :func:`dropout_forward`: the same mask and scale, ``dout * m / (1 - p)``
    (the identity in evaluation)."""
    return _backward(dout, cache, "dropout_backward")


def vanilla_dropout_forward(
    input: np.ndarray,
    *,
    p: float = 0.5,
    training: bool = True,
    generator: np.random.Generator | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, DropoutCache]:
    """The original dropout of Srivastava et al. (2014): while training, zero each element
    with probability ``p`` *without* rescaling; in evaluation, multiply by the keep
    probability ``1 - p`` so that test outputs match the training expectation.

    Args: as :func:`dropout_forward`.

    Returns:
        ``(out, cache)``: ``out`` has ``input``'s shape and dtype.
    """
    fn = "vanilla_dropout_forward"
    check_array(input, "input", fn)
    p = check_probability(p, "p (the drop probability)", fn)
    if not training:
        keep_prob = input.dtype.type(1 - p)
        return input * keep_prob, DropoutCache(keep_prob, input.shape)
    multiplier = _keep_mask(input.shape, p, generator, mask, fn).astype(input.dtype)
    return input * multiplier, DropoutCache(multiplier, input.shape)


def vanilla_dropout_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """Backward of :func:`vanilla_dropout_forward`: ``dout * m`` while training,
    ``dout * (1 - p)`` in evaluation."""
    return _backward(dout, cache, "vanilla_dropout_backward")


def dropout2d_forward(
    input: np.ndarray,
    *,
    p: float = 0.5,
    training: bool = True,
    generator: np.random.Generator | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, DropoutCache]:
    """Channel dropout, as ``torch.nn.functional.dropout2d``: zero whole feature maps
    ``x[n, c]`` with probability ``p``, scale the kept ones by ``1 / (1 - p)``.

    Neighbouring pixels of a feature map are strongly correlated, so dropping single pixels
    regularises a convolutional layer little; dropping whole channels does (Tompson et al.,
    2015).

    Args:
        input: ``(N, C, H, W)``, floating point.
        p, training, generator: as :func:`dropout_forward`.
        mask: an explicit boolean keep mask of shape ``(N, C, 1, 1)``. Default ``None``.

    Returns:
        ``(out, cache)``: ``out`` has ``input``'s shape and dtype.
    """
    fn = "dropout2d_forward"
    check_array(input, "input", fn, ndim=4, layout="(N, C, H, W)")
    return _inverted(input, p, training, generator, mask, (*input.shape[:2], 1, 1), fn)


def dropout2d_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """Backward of :func:`dropout2d_forward`: each channel's gradient is kept and scaled or
    zeroed with its feature map."""
    return _backward(dout, cache, "dropout2d_backward")

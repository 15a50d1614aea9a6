"""Data augmentation in NumPy: random crops, flips and translations of NCHW images.

Each function takes one image ``(C, H, W)`` or a batch ``(N, C, H, W)``; in a batch every
image gets its own random draw. Randomness comes only from the ``rng`` argument
(``np.random.default_rng(seed)``), never from global state. The same operations on torch
tensors are in :mod:`d2lcnn.data.transforms`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["random_crop", "random_flip", "random_translate"]


def _is_int(v) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _check_image(x, fn: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim not in (3, 4):
        raise ValueError(f"{fn}: x must be (C, H, W) or (N, C, H, W), got shape {x.shape}")
    return x


def _check_rng(rng, fn: str) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{fn}: rng must be a np.random.Generator "
                        f"(np.random.default_rng(seed)), got {type(rng).__name__}")


def _pair(size, fn: str, arg: str) -> tuple[int, int]:
    if _is_int(size):
        return int(size), int(size)
    if isinstance(size, tuple | list) and len(size) == 2 and all(_is_int(v) for v in size):
        return int(size[0]), int(size[1])
    raise ValueError(f"{fn}: {arg} must be an int or a pair of ints, got {size!r}")


def _crop_geometry(shape, size, padding, fn: str) -> tuple[int, int, int, int]:
    """Check a crop of ``size`` from (N, C, H, W) ``shape`` padded by ``padding``; return
    ``(S_h, S_w, H_padded, W_padded)``. Shared by the NumPy and torch versions."""
    sh, sw = _pair(size, fn, "size")
    if not _is_int(padding) or padding < 0:
        raise ValueError(f"{fn}: padding must be an int >= 0, got {padding!r}")
    hp, wp = shape[-2] + 2 * padding, shape[-1] + 2 * padding
    if not (1 <= sh <= hp and 1 <= sw <= wp):
        raise ValueError(f"{fn}: size must be between 1 and the padded size ({hp}, {wp}), "
                         f"got {(sh, sw)}")
    return sh, sw, hp, wp


def random_crop(
    x: np.ndarray, size: int | tuple[int, int], *, padding: int = 0, rng: np.random.Generator
) -> np.ndarray:
    """Crop a random ``size`` window out of the zero-padded image(s).

    The image is padded with ``padding`` zeros on every side, to ``(H + 2p, W + 2p)``, and a
    window of ``size`` is taken at a top-left corner drawn uniformly from all positions where
    it fits. ``size = (H, W)`` with ``padding = p`` is the classic CIFAR augmentation: a
    random shift of up to ``p`` pixels.

    Args:
        x: ``(C, H, W)`` or ``(N, C, H, W)``.
        size: output side ``S`` or ``(S_h, S_w)``, at most the padded size.
        padding: zeros added on each side, ``>= 0``. Default 0.
        rng: the random generator.

    Returns:
        ``(C, S_h, S_w)`` or ``(N, C, S_h, S_w)``, same dtype as ``x``.

    Raises:
        ValueError: for a bad shape, ``size`` or ``padding``. TypeError: for a bad ``rng``.
    """
    fn = "random_crop"
    x = _check_image(x, fn)
    _check_rng(rng, fn)
    sh, sw, hp, wp = _crop_geometry(x.shape, size, padding, fn)
    batch = x if x.ndim == 4 else x[None]  # (N, C, H, W)
    n = batch.shape[0]
    p = padding
    padded = np.pad(batch, ((0, 0), (0, 0), (p, p), (p, p)))  # (N, C, H + 2p, W + 2p)
    tops = rng.integers(0, hp - sh + 1, size=n)
    lefts = rng.integers(0, wp - sw + 1, size=n)
    out = np.stack([padded[i, :, t : t + sh, s : s + sw]
                    for i, (t, s) in enumerate(zip(tops, lefts, strict=True))])
    return out if x.ndim == 4 else out[0]


def random_flip(x: np.ndarray, *, p: float = 0.5, rng: np.random.Generator) -> np.ndarray:
    """Flip image(s) left-right, each with probability ``p``.

    Args:
        x: ``(C, H, W)`` or ``(N, C, H, W)``.
        p: probability that an image is flipped, in ``[0, 1]``. Default 0.5.
        rng: the random generator.

    Returns:
        A new array of the same shape and dtype.

    Raises:
        ValueError: for a bad shape or ``p``. TypeError: for a bad ``rng``.
    """
    fn = "random_flip"
    x = _check_image(x, fn)
    _check_rng(rng, fn)
    if not isinstance(p, int | float) or not 0 <= p <= 1:
        raise ValueError(f"{fn}: p must be a probability in [0, 1], got {p!r}")
    batch = x if x.ndim == 4 else x[None]
    flip = rng.random(len(batch)) < p  # (N,) which images to flip
    out = np.where(flip[:, None, None, None], batch[..., ::-1], batch)
    return out if x.ndim == 4 else out[0]


def random_translate(
    x: np.ndarray, max_shift: int, *, rng: np.random.Generator
) -> np.ndarray:
    """Shift image(s) by a random whole number of pixels, filling with zeros.

    Each image moves by ``(dy, dx)``, each drawn uniformly from ``-max_shift..max_shift``;
    pixels pushed over the border are lost. This is :func:`random_crop` with
    ``size = (H, W)`` and ``padding = max_shift``.

    Args:
        x: ``(C, H, W)`` or ``(N, C, H, W)``.
        max_shift: largest shift in pixels, ``>= 0``.
        rng: the random generator.

    Returns:
        Same shape and dtype as ``x``.

    Raises:
        ValueError: for a bad shape or ``max_shift``. TypeError: for a bad ``rng``.
    """
    fn = "random_translate"
    x = _check_image(x, fn)
    if not _is_int(max_shift) or max_shift < 0:
        raise ValueError(f"{fn}: max_shift must be an int >= 0, got {max_shift!r}")
    return random_crop(x, x.shape[-2:], padding=int(max_shift), rng=rng)

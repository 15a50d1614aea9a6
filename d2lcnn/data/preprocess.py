"""Splitting and normalizing image arrays (NumPy, NCHW)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Splits", "channel_stats", "normalize", "train_val_test_split"]


class Splits(NamedTuple):
    """Three ``(x, y)`` pairs: ``(x_train, y_train), (x_val, y_val), (x_test, y_test)``."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]


def train_val_test_split(
    x: np.ndarray,
    y: np.ndarray,
    *,
    val: float = 0.1,
    test: float = 0.2,
    seed: int = 0,
    stratify: bool = True,
) -> Splits:
    """Deterministic random split into training, validation and test parts.

    With ``stratify=True`` each class is split on its own (its samples shuffled, then
    ``round(n_c * test)`` to test and ``round(n_c * val)`` to validation), so every part has
    the class proportions of the whole, up to rounding. Within each part samples keep their
    original order, so the result does not depend on the class order.

    Args:
        x: samples ``(N, ...)``.
        y: labels ``(N,)`` (integers, needed for stratification).
        val: fraction for validation, in ``[0, 1)``. Default 0.1.
        test: fraction for test, in ``[0, 1)``, with ``val + test < 1``. Default 0.2.
        seed: seed of the shuffle; the same arguments always give the same split.
        stratify: split each class separately (default) or the whole set at once.

    Returns:
        :class:`Splits` ``(train, val, test)``, each an ``(x_part, y_part)`` pair of views
        selected from ``x`` and ``y``; every sample is in exactly one part.

    Raises:
        ValueError: for mismatched lengths or bad fractions.

    Example:
        >>> (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = train_val_test_split(x, y)
    """
    x, y = np.asarray(x), np.asarray(y)
    fn = "train_val_test_split"
    if y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"{fn}: y must be (N,) with N = len(x) = {len(x)}, got {y.shape}")
    for name, frac in (("val", val), ("test", test)):
        if not isinstance(frac, int | float) or not 0 <= frac < 1:
            raise ValueError(f"{fn}: {name} must be a fraction in [0, 1), got {frac!r}")
    if val + test >= 1:
        raise ValueError(f"{fn}: val + test must be < 1, got {val} + {test} = {val + test}")

    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    parts = ([], [], [])  # indices for train, val, test
    for idx in groups:
        idx = rng.permutation(idx)
        n_test, n_val = round(len(idx) * test), round(len(idx) * val)
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    chosen = [np.sort(np.concatenate(p)) for p in parts]
    return Splits(*((x[i], y[i]) for i in chosen))


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of a batch of images.

    Args:
        x: images ``(N, C, H, W)``.

    Returns:
        ``(mean, std)``, each ``(C,)`` float64, over the ``N * H * W`` values of each channel
        (population std, ``ddof=0``, as ``torchvision``'s normalization constants use).

    Raises:
        ValueError: if ``x`` is not 4-d.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"channel_stats: x must be (N, C, H, W), got shape {x.shape}")
    x = x.astype(np.float64)
    return x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))


def normalize(x: np.ndarray, mean, std) -> np.ndarray:
    """Standardize each channel: ``(x - mean[c]) / std[c]``.

    Args:
        x: images ``(N, C, H, W)`` or one image ``(C, H, W)``.
        mean: ``(C,)`` per-channel means (e.g. from :func:`channel_stats` on the TRAINING set
            only, then applied to every split).
        std: ``(C,)`` per-channel standard deviations, all ``> 0``.

    Returns:
        Same shape as ``x``; float32 unless ``x`` is float64.

    Raises:
        ValueError: if the shapes do not match or a std is not positive.
    """
    x = np.asarray(x)
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    if x.ndim not in (3, 4):
        raise ValueError(f"normalize: x must be (N, C, H, W) or (C, H, W), got {x.shape}")
    c = x.shape[-3]
    if mean.shape != (c,) or std.shape != (c,):
        raise ValueError(f"normalize: mean and std must be ({c},) for {c} channels, got "
                         f"{mean.shape} and {std.shape}")
    if not np.all(std > 0):
        raise ValueError(f"normalize: std must be > 0 in every channel, got {std}")
    dtype = np.float64 if x.dtype == np.float64 else np.float32
    out = (x - mean[:, None, None]) / std[:, None, None]  # broadcast over (C, H, W)
    return out.astype(dtype)

"""A generated segmentation data set: shapes on textured backgrounds, with per-pixel labels.

Used for U-Net-style segmentation when no real labelled masks are available offline. Every
image comes from a documented generator with a fixed seed, so the data are identical on
every machine.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SEGMENTATION_CLASSES", "synthetic_segmentation"]

#: Class of each mask value: index 0 is the background, then one class per shape type.
SEGMENTATION_CLASSES: tuple[str, ...] = ("background", "disk", "rectangle", "triangle")


def _is_int(v) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _texture(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, size: int) -> np.ndarray:
    """A smooth random texture in ``[-1, 1]``: the mean of 3 random plane waves."""
    tex = np.zeros_like(yy)
    for _ in range(3):
        freq = rng.uniform(1.0, 6.0) * 2 * np.pi / size  # 1 to 6 periods across the image
        angle = rng.uniform(0.0, np.pi)
        phase = rng.uniform(0.0, 2 * np.pi)
        tex += np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy) + phase)
    return tex / 3.0


def _shape_mask(kind: int, rng: np.random.Generator, yy, xx, size: int) -> np.ndarray:
    """Boolean ``(size, size)`` mask of one random disk (1), rectangle (2) or triangle (3)."""
    lo, hi = size / 10, size / 4  # half-extent of a shape, as a fraction of the image
    cy, cx = rng.uniform(lo, size - lo, 2)  # centre inside, so most of the shape shows
    if kind == 1:  # disk
        r = rng.uniform(lo, hi)
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    if kind == 2:  # axis-aligned rectangle
        hh, hw = rng.uniform(lo, hi, 2)
        return (np.abs(yy - cy) <= hh) & (np.abs(xx - cx) <= hw)
    # Triangle: 3 vertices around the centre, at well-separated angles so it is not a sliver;
    # a point is inside when it lies on the same side of all three edges.
    angles = rng.uniform(0, 2 * np.pi) + np.array([0.0, 2.0, 4.0]) * np.pi / 3
    angles += rng.uniform(-0.3, 0.3, 3)
    radius = rng.uniform(1.2 * lo, 1.2 * hi)
    vy, vx = cy + radius * np.sin(angles), cx + radius * np.cos(angles)
    sides = []
    for i in range(3):
        j = (i + 1) % 3
        sides.append((vx[j] - vx[i]) * (yy - vy[i]) - (vy[j] - vy[i]) * (xx - vx[i]))
    return np.all([s >= 0 for s in sides], axis=0) | np.all([s <= 0 for s in sides], axis=0)


def synthetic_segmentation(
    n: int,
    *,
    size: int = 64,
    seed: int = 0,
    max_shapes: int = 4,
    noise: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """Gray images of random disks, rectangles and triangles on textured backgrounds.

    Generator, per image (all draws from ``np.random.default_rng(seed)``):

    1. background: brightness ``b ~ U(0.2, 0.8)`` plus a smooth texture (the mean of three
       random plane waves) of amplitude 0.15;
    2. ``k ~ U{1..max_shapes}`` shapes, each of a random type (disk, rectangle, triangle),
       position (centre at least ``size/10`` from the border) and size (half-extent between
       ``size/10`` and ``size/4``; a shape may be cut by the border), filled with its own
       brightness at least 0.25 away from ``b`` and its own texture of amplitude 0.1. Later
       shapes occlude earlier ones, in the image and in the mask alike;
    3. Gaussian pixel noise of standard deviation ``noise``, then clipping to ``[0, 1]``.

    Brightness alone does not tell the classes apart (every shape and background draws its
    own), so a network has to use shape: corners, straight or curved edges.

    Args:
        n: number of images, ``>= 1``.
        size: image side in pixels, ``>= 8``. Default 64.
        seed: seed of the generator; the same arguments always give the same data.
        max_shapes: largest number of shapes per image, ``>= 1``. Default 4.
        noise: standard deviation of the additive pixel noise, ``>= 0``. Default 0.05.

    Returns:
        ``(images, masks)``: images ``(n, 1, size, size)`` float32 in ``[0, 1]``; masks
        ``(n, size, size)`` int64 with values in ``0..3`` indexing
        :data:`SEGMENTATION_CLASSES` (0 background, 1 disk, 2 rectangle, 3 triangle).

    Raises:
        ValueError: for a bad ``n``, ``size``, ``max_shapes`` or ``noise``.
    """
    name = "synthetic_segmentation"
    if not _is_int(n) or n < 1:
        raise ValueError(f"{name}: n must be an int >= 1, got {n!r}")
    if not _is_int(size) or size < 8:
        raise ValueError(f"{name}: size must be an int >= 8, got {size!r}")
    if not _is_int(max_shapes) or max_shapes < 1:
        raise ValueError(f"{name}: max_shapes must be an int >= 1, got {max_shapes!r}")
    if not isinstance(noise, int | float) or not noise >= 0:
        raise ValueError(f"{name}: noise must be a number >= 0, got {noise!r}")

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5  # pixel centres
    images = np.empty((n, 1, size, size), dtype=np.float32)
    masks = np.zeros((n, size, size), dtype=np.int64)
    for i in range(n):
        b = rng.uniform(0.2, 0.8)
        img = b + 0.15 * _texture(rng, yy, xx, size)  # (size, size)
        for _ in range(rng.integers(1, max_shapes + 1)):
            kind = int(rng.integers(1, 4))
            inside = _shape_mask(kind, rng, yy, xx, size)
            # Shape brightness at least 0.25 from the background's, on a random side.
            offset = rng.uniform(0.25, 0.45) * rng.choice([-1.0, 1.0])
            level = b + offset if 0.05 <= b + offset <= 0.95 else b - offset
            img[inside] = (level + 0.1 * _texture(rng, yy, xx, size))[inside]
            masks[i][inside] = kind
        img += noise * rng.standard_normal((size, size))
        images[i, 0] = np.clip(img, 0.0, 1.0)
    return images, masks

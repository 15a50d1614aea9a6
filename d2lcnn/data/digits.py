"""Real handwritten digits that ship inside scikit-learn, and a larger set built from them.

scikit-learn bundles the UCI "Optical Recognition of Handwritten Digits" test set
(1,797 images of 8x8 pixels, 16 gray levels, ~180 per class) as ``digits.csv.gz`` inside
the installed package; ``sklearn.datasets.load_digits`` reads that file and never touches
the network. This is the default real data set of the book.
"""

from __future__ import annotations

import numpy as np

__all__ = ["load_digits", "translated_digits"]


def _is_int(v) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _resize_stack(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a stack ``(N, h, w)`` to ``(N, size, size)``, float64."""
    if images.shape[1:] == (size, size):
        return images.astype(np.float64, copy=True)
    from skimage.transform import resize  # lazy: importing skimage is slow

    # Axis 0 keeps its length, so bilinear interpolation along it is the identity.
    out = resize(
        images.astype(np.float64),
        (images.shape[0], size, size),
        order=1,
        mode="edge",
        anti_aliasing=size < images.shape[1],
    )
    return np.clip(out, 0.0, 1.0)


def load_digits(*, size: int = 8, as_float: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 real 8x8 handwritten digits bundled with scikit-learn, as an image batch.

    Args:
        size: side of the returned images, an int ``>= 8``. ``8`` (default) is the original
            resolution; larger sizes (16, 28 or 32 are typical: 28 matches MNIST, 32 suits
            networks that halve the size several times) are upsampled bilinearly from the
            8x8 originals, so they hold no extra detail.
        as_float: if True (default) return ``float32`` in ``[0, 1]`` (the 16 original gray
            levels divided by 16); if False return ``uint8`` in ``[0, 255]``.

    Returns:
        ``(images, labels)``: images ``(1797, 1, size, size)``, labels ``(1797,)`` int64 in
        ``0..9``, in scikit-learn's order.

    Raises:
        ValueError: if ``size`` is not an int ``>= 8``.

    Example:
        >>> x, y = load_digits(size=28)
        >>> x.shape, x.dtype, y[:5]
        ((1797, 1, 28, 28), dtype('float32'), array([0, 1, 2, 3, 4]))
    """
    if not _is_int(size) or size < 8:
        raise ValueError(f"load_digits: size must be an int >= 8, got {size!r}")
    from sklearn.datasets import load_digits as _sk_load_digits  # reads a bundled file

    bunch = _sk_load_digits()
    images = bunch.images / 16.0  # (N, 8, 8), gray levels 0..16 -> [0, 1]
    images = _resize_stack(images, int(size))[:, None]  # (N, 1, size, size)
    labels = bunch.target.astype(np.int64)
    if as_float:
        return images.astype(np.float32), labels
    return np.round(images * 255.0).astype(np.uint8), labels


def translated_digits(
    n: int = 10_000,
    *,
    size: int = 28,
    digit_size: tuple[int, int] = (12, 20),
    seed: int = 0,
    source: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A larger digit set: real digits, rescaled and placed at random on a bigger canvas.

    Generator, per output image (all draws from ``np.random.default_rng(seed)``):

    1. pick a source digit uniformly at random (with replacement);
    2. pick its side ``s`` uniformly from the integers in ``digit_size`` (inclusive) and
       resize the digit bilinearly to ``s x s``;
    3. pick a top-left corner uniformly so the digit lies entirely on the black
       ``size x size`` canvas, and paste it there.

    So the position and scale of a digit vary, which is what convolution and pooling are
    meant to cope with, while the label stays that of the real source digit.

    Args:
        n: number of images to generate, ``>= 1``. Default 10,000.
        size: side of the canvas. Default 28 (like MNIST).
        digit_size: ``(smallest, largest)`` side of a pasted digit in pixels, with
            ``1 <= smallest <= largest <= size``. Default ``(12, 20)``.
        seed: seed of the generator; the same arguments always give the same data.
        source: ``(images, labels)`` to draw from, images ``(M, 1, h, w)`` in ``[0, 1]``
            (e.g. the training part of :func:`load_digits` after a split, so that test
            digits never reappear, shifted, in the training set); default: all 1,797
            digits of :func:`load_digits`.

    Returns:
        ``(images, labels)``: images ``(n, 1, size, size)`` float32 in ``[0, 1]``, labels
        ``(n,)`` int64.

    Raises:
        ValueError: for a bad ``n``, ``size``, ``digit_size`` or ``source``.
    """
    name = "translated_digits"
    if not _is_int(n) or n < 1:
        raise ValueError(f"{name}: n must be an int >= 1, got {n!r}")
    if not _is_int(size) or size < 1:
        raise ValueError(f"{name}: size must be an int >= 1, got {size!r}")
    if (
        not isinstance(digit_size, tuple | list)
        or len(digit_size) != 2
        or not all(_is_int(v) for v in digit_size)
        or not 1 <= digit_size[0] <= digit_size[1] <= size
    ):
        raise ValueError(
            f"{name}: digit_size must be a pair (lo, hi) of ints with 1 <= lo <= hi <= "
            f"size={size}, got {digit_size!r}"
        )
    if source is None:
        src_x, src_y = load_digits()
    else:
        src_x, src_y = (np.asarray(a) for a in source)
        if src_x.ndim != 4 or src_x.shape[1] != 1 or len(src_x) != len(src_y) or not len(src_y):
            raise ValueError(
                f"{name}: source must be (images (M, 1, h, w), labels (M,)) with M >= 1, "
                f"got shapes {src_x.shape} and {src_y.shape}"
            )
    lo, hi = int(digit_size[0]), int(digit_size[1])
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(src_y), size=n)  # (n,) which source digit
    sides = rng.integers(lo, hi + 1, size=n)  # (n,) side of each pasted digit
    tops = rng.integers(0, size - sides + 1)  # (n,) top-left corner, digit fully inside
    lefts = rng.integers(0, size - sides + 1)

    out = np.zeros((n, 1, size, size), dtype=np.float32)
    for s in np.unique(sides):
        # Resize every needed source digit to this side once, then paste.
        rows = np.flatnonzero(sides == s)
        needed, inverse = np.unique(pick[rows], return_inverse=True)
        resized = _resize_stack(src_x[needed, 0].astype(np.float64), int(s))  # (K, s, s)
        for r, k in zip(rows, inverse, strict=True):
            out[r, 0, tops[r] : tops[r] + s, lefts[r] : lefts[r] + s] = resized[k]
    return out, src_y[pick].astype(np.int64)

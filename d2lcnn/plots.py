"""Plotting helpers shared by the chapters (matplotlib only; nothing runs on import).

Every helper returns the ``Figure`` so a notebook can add to it and a test can inspect it.
No global ``rcParams`` are changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["show_images"]


def _to_numpy(a) -> np.ndarray:
    """Arrays, nested lists and (CPU or GPU, grad or not) torch tensors -> ``np.ndarray``."""
    if hasattr(a, "detach"):  # a torch tensor; avoid importing torch here
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def show_images(
    images,
    titles: Sequence[str] | None = None,
    *,
    ncols: int | None = None,
    cmap: str = "gray",
    vmin: float | None = None,
    vmax: float | None = None,
    annotate: bool = False,
    fmt: str = "{:.3g}",
    suptitle: str | None = None,
    xlabel: str | None = "column",
    ylabel: str | None = "row",
    colorbar: bool = False,
    size: float = 2.6,
):
    """Show 2-D arrays (gray, with ``cmap``) or ``(H, W, 3)`` RGB images in a grid.

    Args:
        images: a sequence of arrays/tensors, or one array/tensor: ``(H, W)`` or
            ``(H, W, 3)`` is a single image, any other ``(N, H, W)`` a stack of feature maps.
        titles: one title per image, or ``None``.
        ncols: images per row; default all in one row, up to 6.
        cmap: colormap for 2-D arrays. Default ``"gray"``.
        vmin, vmax: colour limits shared by all 2-D panels; default per panel.
        annotate: write each entry's value in its cell (for small matrices such as kernels
            and worked examples); integers are printed without decimals.
        fmt: format for annotated non-integer values. Default ``"{:.3g}"``.
        suptitle: title of the whole figure.
        xlabel, ylabel: axis labels for every panel (``None`` to omit).
        colorbar: add a colour bar to each 2-D panel.
        size: inches per panel.

    Returns:
        The ``matplotlib.figure.Figure``; its first ``len(images)`` axes hold the images
        (unused grid cells are removed).

    Raises:
        ValueError: if ``images`` is empty, an image is not 2-D or ``(H, W, 3|4)``, or the
            number of titles does not match the number of images.
    """
    import matplotlib.pyplot as plt  # lazy: keep ``import d2lcnn`` light

    arr = images if isinstance(images, list | tuple) else _to_numpy(images)
    if isinstance(arr, np.ndarray):
        is_single = arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] == 3)
        arr = [arr] if is_single else list(arr)
    imgs = [_to_numpy(a) for a in arr]
    if not imgs:
        raise ValueError("show_images: images must contain at least one image, got none")
    for i, im in enumerate(imgs):
        if not (im.ndim == 2 or (im.ndim == 3 and im.shape[-1] in (3, 4))):
            raise ValueError(
                f"show_images: images[{i}] must be (H, W) or (H, W, 3|4), got shape {im.shape}"
            )
    if titles is not None and len(titles) != len(imgs):
        raise ValueError(
            f"show_images: got {len(titles)} titles for {len(imgs)} images; pass one per image"
        )
    n = len(imgs)
    ncols = min(n, 6) if ncols is None else max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False, layout="constrained"
    )
    flat = axes.ravel()
    for i, (ax, im) in enumerate(zip(flat, imgs, strict=False)):
        if im.ndim == 2:
            h = ax.imshow(im, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            if colorbar:
                fig.colorbar(h, ax=ax, shrink=0.8)
            if annotate:
                _annotate(ax, im, h, fmt)
        else:
            ax.imshow(np.clip(im, 0, 1) if im.dtype.kind == "f" else im)
        if titles is not None:
            ax.set_title(titles[i])
        if xlabel:
            ax.set_xlabel(xlabel)
        if ylabel:
            ax.set_ylabel(ylabel)
    for ax in flat[n:]:
        fig.delaxes(ax)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def _annotate(ax, im, handle, fmt):
    """Write each value of a small matrix in its cell, in a colour readable on the cell."""
    integral = np.all(np.isfinite(im)) and np.allclose(im, np.round(im))
    norm, cmap = handle.norm, handle.get_cmap()
    ax.set_xticks(range(im.shape[1]))
    ax.set_yticks(range(im.shape[0]))
    for (r, c), v in np.ndenumerate(im):
        text = str(int(round(v))) if integral else fmt.format(v)
        lum = np.dot(cmap(norm(v))[:3], [0.299, 0.587, 0.114])
        ax.text(c, r, text, ha="center", va="center", color="black" if lum > 0.5 else "white")

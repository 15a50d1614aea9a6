"""Data augmentation on torch tensors: the operations of :mod:`d2lcnn.data.augment`.

Same names, arguments and semantics as the NumPy versions, except that randomness comes from
an optional ``torch.Generator`` (``generator=``) instead of a NumPy ``rng``. Each function
takes one image ``(C, H, W)`` (as a :class:`~d2lcnn.data.ArrayDataset` transform sees it)
or a batch ``(N, C, H, W)`` (every image gets its own draw), on any device. Random numbers
are drawn on the CPU, so a seeded generator gives the same crops on every device.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> augment = compose(lambda x: random_crop(x, 32, padding=4, generator=g),
    ...                   lambda x: random_flip(x, generator=g))
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from d2lcnn.data.augment import _crop_geometry, _is_int

__all__ = ["compose", "random_crop", "random_flip", "random_translate"]


def _check_image(x, fn: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4):
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"{fn}: x must be a tensor (C, H, W) or (N, C, H, W), got {shape}")
    return x


def _check_generator(generator, fn: str) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{fn}: generator must be a torch.Generator or None, "
                        f"got {type(generator).__name__}")


def random_crop(
    x: torch.Tensor,
    size: int | tuple[int, int],
    *,
    padding: int = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Crop a random ``size`` window out of the zero-padded image(s).

    See :func:`d2lcnn.data.augment.random_crop`.

    Args:
        x: ``(C, H, W)`` or ``(N, C, H, W)``.
        size: output side ``S`` or ``(S_h, S_w)``, at most the padded size.
        padding: zeros added on each side, ``>= 0``. Default 0.
        generator: source of randomness (default: torch's global generator).

    Returns:
        ``(C, S_h, S_w)`` or ``(N, C, S_h, S_w)``, same dtype and device as ``x``.
    """
    fn = "random_crop"
    x = _check_image(x, fn)
    _check_generator(generator, fn)
    sh, sw, hp, wp = _crop_geometry(x.shape, size, padding, fn)
    batch = x if x.ndim == 4 else x[None]  # (N, C, H, W)
    n = batch.shape[0]
    padded = F.pad(batch, (padding,) * 4)  # (N, C, H + 2p, W + 2p)
    tops = torch.randint(0, hp - sh + 1, (n,), generator=generator).tolist()
    lefts = torch.randint(0, wp - sw + 1, (n,), generator=generator).tolist()
    out = torch.stack([padded[i, :, t : t + sh, s : s + sw]
                       for i, (t, s) in enumerate(zip(tops, lefts, strict=True))])
    return out if x.ndim == 4 else out[0]


def random_flip(
    x: torch.Tensor, *, p: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Flip image(s) left-right, each with probability ``p``.

    See :func:`d2lcnn.data.augment.random_flip`.

    Args:
        x: ``(C, H, W)`` or ``(N, C, H, W)``.
        p: probability that an image is flipped, in ``[0, 1]``. Default 0.5.
        generator: source of randomness (default: torch's global generator).

    Returns:
        A new tensor of the same shape, dtype and device.
    """
    fn = "random_flip"
    x = _check_image(x, fn)
    _check_generator(generator, fn)
    if not isinstance(p, int | float) or not 0 <= p <= 1:
        raise ValueError(f"{fn}: p must be a probability in [0, 1], got {p!r}")
    batch = x if x.ndim == 4 else x[None]
    flip = torch.rand(len(batch), generator=generator) < p  # (N,) on the CPU
    flip = flip.to(x.device)[:, None, None, None]
    out = torch.where(flip, batch.flip(-1), batch)
    return out if x.ndim == 4 else out[0]


def random_translate(
    x: torch.Tensor, max_shift: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shift image(s) by a random whole number of pixels in ``-max_shift..max_shift``.

    See :func:`d2lcnn.data.augment.random_translate`: a :func:`random_crop` of size
    ``(H, W)`` with ``padding = max_shift``.
    """
    fn = "random_translate"
    x = _check_image(x, fn)
    if not _is_int(max_shift) or max_shift < 0:
        raise ValueError(f"{fn}: max_shift must be an int >= 0, got {max_shift!r}")
    return random_crop(x, tuple(x.shape[-2:]), padding=max_shift, generator=generator)


def compose(*fns: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Chain transforms: ``compose(f, g)(x) == g(f(x))``."""

    def composed(x: torch.Tensor) -> torch.Tensor:
        for f in fns:
            x = f(x)
        return x

    return composed

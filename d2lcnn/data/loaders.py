"""Arrays to ``torch.utils.data`` datasets and reproducible data loaders."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["ArrayDataset", "make_loader"]


def _as_tensor(a) -> torch.Tensor:
    return a if torch.is_tensor(a) else torch.as_tensor(np.asarray(a))


class ArrayDataset(Dataset):
    """A ``Dataset`` over in-memory arrays: item ``i`` is ``(transform(x[i]), y[i])``.

    Args:
        x: samples ``(N, ...)``, a NumPy array or tensor (NumPy arrays are shared, not
            copied, when their dtype allows it).
        y: labels or targets ``(N, ...)`` (class indices, or e.g. segmentation masks).
        transform: optional function applied to each sample tensor, e.g. from
            :mod:`d2lcnn.data.transforms`. Default ``None``.

    Raises:
        ValueError: if ``x`` and ``y`` have different lengths.
    """

    def __init__(self, x, y, transform: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.x, self.y = _as_tensor(x), _as_tensor(y)
        if len(self.x) != len(self.y):
            raise ValueError(f"ArrayDataset: x and y must have the same length, got "
                             f"{len(self.x)} and {len(self.y)}")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        xi = self.x[i]
        return (self.transform(xi) if self.transform is not None else xi), self.y[i]


def make_loader(
    x,
    y,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A ``DataLoader`` over arrays whose shuffling is reproducible.

    The shuffle order comes from a ``torch.Generator`` seeded with ``seed``: two loaders made
    with the same arguments yield the same batches, epoch after epoch, whatever else has
    used torch's global generator.

    ``num_workers=0`` (default) loads batches in the main process. Keep it there in
    notebooks: worker processes can hang inside Jupyter on some platforms (macOS and
    Windows start workers with ``spawn``, which must re-import functions defined in the
    notebook), and for in-memory arrays they bring no speed-up anyway.

    Args:
        x: samples ``(N, ...)``.
        y: targets ``(N, ...)``.
        batch_size: samples per batch, ``>= 1``.
        shuffle: reshuffle every epoch (training) or keep the order (evaluation).
        seed: seed of the shuffling generator. Default 0.
        num_workers: loader processes; default 0 (see above).
        transform: per-sample transform (see :class:`ArrayDataset`). A random transform
            should use its own seeded ``torch.Generator`` to be reproducible.
        drop_last: drop a last, smaller batch. Default False.

    Returns:
        A ``DataLoader`` yielding ``(x_batch, y_batch)``, ``x_batch`` ``(B, ...)``.

    Raises:
        ValueError: for a bad ``batch_size`` or ``num_workers``, or mismatched lengths.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"make_loader: batch_size must be an int >= 1, got {batch_size!r}")
    if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
        raise ValueError(f"make_loader: num_workers must be an int >= 0, got {num_workers!r}")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        ArrayDataset(x, y, transform),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=num_workers,
        drop_last=drop_last,
    )

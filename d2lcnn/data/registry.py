"""One entry point to every data set of the book: :func:`load_dataset`.

Every chapter picks its data set in ONE cell, tagged ``parameters`` (the papermill
convention, so a batch run can inject another value), right after the imports cell::

    DATASET = "digits"  # or "mnist", "fashion_mnist", "cifar10" once downloaded
                        # (python -m d2lcnn.data download NAME)

and then loads it with one call::

    data = load_dataset(DATASET, size=32)
    model = LeNet5(data.num_classes, in_channels=data.input_shape[0])

``"digits"`` and ``"translated_digits"`` work offline (built from the digits that ship with
scikit-learn); ``"mnist"``, ``"fashion_mnist"`` and ``"cifar10"`` are read from the local
data folder and raise ``FileNotFoundError`` naming the download command until fetched.

Splits are deterministic. Data sets without an official split (the digits) are split per
class into train / validation / test with :func:`~d2lcnn.data.train_val_test_split`; the
others keep their official test set, and the validation set is carved, per class, from the
official training set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from d2lcnn.data.benchmarks import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    load_cifar10,
    load_fashion_mnist,
    load_mnist,
)
from d2lcnn.data.digits import load_digits, translated_digits
from d2lcnn.data.preprocess import train_val_test_split

__all__ = ["DATASETS", "LoadedDataset", "load_dataset"]

#: Names :func:`load_dataset` accepts: offline ones first, then the downloaded benchmarks.
DATASETS: tuple[str, ...] = ("digits", "translated_digits", "mnist", "fashion_mnist", "cifar10")

_DIGIT_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))
_TRANSLATED_N = 10_000  # images generated for "translated_digits", over all three parts


@dataclass(frozen=True)
class LoadedDataset:
    """Train, validation and test arrays of one data set, and what a model needs to know.

    Images are float32 ``(N, C, H, W)`` in ``[0, 1]``; labels int64 ``(N,)`` in
    ``0 .. num_classes - 1``.
    """

    name: str  # one of DATASETS
    x_train: np.ndarray  # (N_train, C, H, W)
    y_train: np.ndarray  # (N_train,)
    x_val: np.ndarray  # (N_val, C, H, W)
    y_val: np.ndarray  # (N_val,)
    x_test: np.ndarray  # (N_test, C, H, W)
    y_test: np.ndarray  # (N_test,)
    num_classes: int  # 10 for every data set here
    class_names: tuple[str, ...]  # class_names[label] is the label's name
    input_shape: tuple[int, int, int]  # (C, H, W) of one image

    def __repr__(self) -> str:
        return (
            f"LoadedDataset({self.name!r}, train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, input_shape={self.input_shape}, "
            f"num_classes={self.num_classes})"
        )


def _check_split(split) -> tuple[float, float]:
    ok = (
        isinstance(split, tuple | list)
        and len(split) == 2
        and all(isinstance(f, int | float) and not isinstance(f, bool) for f in split)
        and 0 <= split[0] < 1
        and 0 <= split[1] < 1
        and split[0] + split[1] < 1
    )
    if not ok:
        raise ValueError(
            f"load_dataset: split must be a pair (val, test) of fractions in [0, 1) with "
            f"val + test < 1, got {split!r}"
        )
    return float(split[0]), float(split[1])


def _pad_to(x: np.ndarray, size: int, native: int, name: str) -> np.ndarray:
    """Zero-pad ``(N, C, native, native)`` images evenly to ``size x size``."""
    if size == native:
        return x
    if size < native:
        raise ValueError(
            f"load_dataset: size for {name!r} must be None or >= {native} (its images are "
            f"{native}x{native} and are zero-padded, never shrunk), got {size}"
        )
    lo = (size - native) // 2
    hi = size - native - lo
    return np.pad(x, ((0, 0), (0, 0), (lo, hi), (lo, hi)))  # (N, C, size, size)


def _carve_val(x, y, val: float, seed: int):
    """Stratified (train, val) from an official training set."""
    (x_tr, y_tr), (x_va, y_va), _ = train_val_test_split(x, y, val=val, test=0.0, seed=seed)
    return x_tr, y_tr, x_va, y_va


def load_dataset(
    name: str,
    *,
    split: tuple[float, float] = (0.1, 0.2),
    root: str | os.PathLike | None = None,
    size: int | None = None,
    seed: int = 0,
) -> LoadedDataset:
    """Load a data set by name, split into train / validation / test.

    ============================  =========  ========  ==================================
    name                          images     classes   split
    ============================  =========  ========  ==================================
    ``"digits"``                  1x8x8      0..9      ``split`` of the 1,797 digits
    ``"translated_digits"``       1x28x28    0..9      10,000 generated, by ``split``
    ``"mnist"``                   1x28x28    0..9      official test; val from train
    ``"fashion_mnist"``           1x28x28    clothes   official test; val from train
    ``"cifar10"``                 3x32x32    objects   official test; val from train
    ============================  =========  ========  ==================================

    ``"translated_digits"`` splits the real digits first and generates each part from its
    own digits, so no test digit appears, shifted, in the training set.

    Args:
        name: one of :data:`DATASETS`.
        split: ``(val, test)`` fractions, in ``[0, 1)`` with ``val + test < 1``. Default
            ``(0.1, 0.2)``. For the digits they are fractions of the whole set; for data
            sets with an official test set only ``val`` is used, as a fraction of the
            official training set. Every split is stratified by class.
        root: data root for the downloaded data sets (default: ``$D2LCNN_DATA``, else the
            checkout's ``data/``, else the per-user data folder; see
            :func:`~d2lcnn.data.data_root`). Unused offline.
        size: side of the returned images, or ``None`` (default) for the native side.
            ``"digits"``: upsampled bilinearly from 8x8 (e.g. 28 or 32, see
            :func:`~d2lcnn.data.load_digits`); ``"translated_digits"``: the canvas side;
            ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``: zero-padded evenly to
            ``size`` (28 -> 32 is how LeNet-5 was fed MNIST), never shrunk.
        seed: seed of the split shuffle (and of the generator for ``"translated_digits"``).

    Returns:
        A :class:`LoadedDataset` with ``x_train, y_train, x_val, y_val, x_test, y_test``
        (float32 images ``(N, C, H, W)`` in ``[0, 1]``, int64 labels), ``num_classes``,
        ``class_names`` and ``input_shape`` ``(C, H, W)``.

    Raises:
        ValueError: for an unknown ``name`` (the message lists :data:`DATASETS`), a bad
            ``split`` or ``size``.
        FileNotFoundError: if a downloaded data set is missing; the message gives the
            ``python -m d2lcnn.data download NAME`` command.

    Example:
        >>> data = load_dataset("digits", size=32)
        >>> data.x_train.shape, data.input_shape, data.num_classes
        ((1259, 1, 32, 32), (1, 32, 32), 10)
    """
    if name not in DATASETS:
        raise ValueError(
            f"load_dataset: unknown data set {name!r}; expected one of {', '.join(DATASETS)}"
        )
    val, test = _check_split(split)
    if size is not None and (not isinstance(size, int | np.integer) or isinstance(size, bool)):
        raise ValueError(f"load_dataset: size must be None or an int, got {size!r}")

    class_names = _DIGIT_NAMES
    if name == "digits":
        x, y = load_digits(size=8 if size is None else int(size))  # (1797, 1, s, s)
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = train_val_test_split(
            x, y, val=val, test=test, seed=seed
        )
    elif name == "translated_digits":
        canvas = 28 if size is None else int(size)
        if canvas < 20:
            raise ValueError(
                f"load_dataset: size for 'translated_digits' must be None or >= 20 (digits "
                f"are pasted at 12..20 pixels), got {size}"
            )
        parts = train_val_test_split(*load_digits(), val=val, test=test, seed=seed)
        n_test, n_val = round(_TRANSLATED_N * test), round(_TRANSLATED_N * val)
        counts = (_TRANSLATED_N - n_test - n_val, n_val, n_test)
        made = []
        for i, (part, n) in enumerate(zip(parts, counts, strict=True)):
            if n == 0 or len(part[1]) == 0:
                made.append((np.zeros((0, 1, canvas, canvas), np.float32), np.zeros(0, np.int64)))
            else:  # each part from its own real digits, with its own stream of draws
                made.append(translated_digits(n, size=canvas, seed=seed * 3 + i, source=part))
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = made
    else:
        reader = {"mnist": load_mnist, "fashion_mnist": load_fashion_mnist,
                  "cifar10": load_cifar10}[name]
        x_full, y_full = reader("train", root=root)  # FileNotFoundError names the command
        x_te, y_te = reader("test", root=root)
        x_tr, y_tr, x_va, y_va = _carve_val(x_full, y_full, val, seed)
        native = x_te.shape[-1]
        if size is not None:
            x_tr, x_va, x_te = (_pad_to(a, int(size), native, name) for a in (x_tr, x_va, x_te))
        class_names = {"mnist": _DIGIT_NAMES, "fashion_mnist": FASHION_MNIST_CLASSES,
                       "cifar10": CIFAR10_CLASSES}[name]

    return LoadedDataset(
        name=name,
        x_train=x_tr,
        y_train=y_tr,
        x_val=x_va,
        y_val=y_va,
        x_test=x_te,
        y_test=y_te,
        num_classes=len(class_names),
        class_names=tuple(class_names),
        input_shape=tuple(int(d) for d in x_tr.shape[1:]),  # train is never empty
    )

"""Segmentation metrics from a confusion matrix: pixel accuracy and intersection over union.

For a class ``c``, with ``P`` the pixels predicted as ``c`` and ``T`` the pixels labelled
``c``, the intersection over union (Jaccard index) is

    IoU_c = |P ∩ T| / |P ∪ T| = TP_c / (TP_c + FP_c + FN_c),

read off the confusion matrix ``M`` (rows: true class, columns: predicted class) as
``M[c, c] / (M[c, :].sum() + M[:, c].sum() - M[c, c])``. The mean IoU averages over the
classes that occur in the prediction or the target (a class absent from both has no IoU).
Unlike pixel accuracy, the mean IoU is not dominated by a large background class.

All functions take integer label maps of any (equal) shape, as NumPy arrays or torch
tensors (converted on the CPU); a boolean mask counts as labels 0 and 1. Nothing here
imports torch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["confusion_matrix", "iou", "mean_iou", "pixel_accuracy"]


def _labels(a, name: str, fn: str) -> np.ndarray:
    """An integer NumPy array from an array-like or a torch tensor (detached, on the CPU)."""
    if hasattr(a, "detach"):  # a torch tensor, without importing torch
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.dtype.kind == "b":  # a boolean mask: class 1 where True
        return a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise TypeError(
            f"{fn}: {name} must hold integer (or boolean) class labels, got dtype {a.dtype}"
        )
    return a


def _pair(pred, target, fn: str) -> tuple[np.ndarray, np.ndarray]:
    pred, target = _labels(pred, "pred", fn), _labels(target, "target", fn)
    if pred.shape != target.shape:
        raise ValueError(
            f"{fn}: pred and target must have the same shape, got {pred.shape} and "
            f"{target.shape}"
        )
    if pred.size == 0:
        raise ValueError(f"{fn}: pred and target are empty")
    return pred, target


def confusion_matrix(pred, target, num_classes: int) -> np.ndarray:
    """Count pixels by (true class, predicted class).

    Args:
        pred: predicted labels, any shape, integers in ``[0, num_classes)`` (or booleans).
        target: true labels, the same shape.
        num_classes: number of classes ``K >= 1``.

    Returns:
        ``M``, int64 ``(K, K)``: ``M[t, p]`` = number of pixels of true class ``t``
        predicted as ``p``. ``M.sum()`` is the number of pixels.

    Raises:
        ValueError: for different shapes, empty inputs, a bad ``num_classes`` or a label
            outside ``[0, num_classes)``. TypeError: for non-integer labels.
    """
    fn = "confusion_matrix"
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise ValueError(f"{fn}: num_classes must be an int >= 1, got {num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"{fn}: num_classes must be an int >= 1, got {num_classes}")
    pred, target = _pair(pred, target, fn)
    for name, a in (("pred", pred), ("target", target)):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(
                f"{fn}: {name} labels must be in [0, {num_classes}), got values in [{lo}, {hi}]"
            )
    k = int(num_classes)
    flat = target.ravel().astype(np.int64) * k + pred.ravel().astype(np.int64)
    return np.bincount(flat, minlength=k * k).reshape(k, k)


def iou(pred, target, num_classes: int) -> np.ndarray:
    """Intersection over union of each class.

    Args: as :func:`confusion_matrix`.

    Returns:
        float64 ``(K,)``: ``IoU_c = TP / (TP + FP + FN)`` for each class, ``nan`` for a class
        that appears in neither ``pred`` nor ``target``.
    """
    m = confusion_matrix(pred, target, num_classes)
    tp = np.diag(m).astype(np.float64)
    union = m.sum(axis=0) + m.sum(axis=1) - np.diag(m)  # |P| + |T| - |P ∩ T|
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def mean_iou(pred, target, num_classes: int) -> float:
    """Mean of :func:`iou` over the classes present in ``pred`` or ``target``.

    Args: as :func:`confusion_matrix`.

    Returns:
        A float in ``[0, 1]``.
    """
    return float(np.nanmean(iou(pred, target, num_classes)))


def pixel_accuracy(pred, target) -> float:
    """Fraction of pixels whose predicted label equals the true label.

    Args:
        pred: predicted labels, any shape (integers).
        target: true labels, the same shape.

    Returns:
        A float in ``[0, 1]``.
    """
    pred, target = _pair(pred, target, "pixel_accuracy")
    return float((pred == target).mean())

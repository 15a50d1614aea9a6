"""Combine the predictions of several models: average their probabilities, take a majority
vote of their labels, and draw bootstrap samples to train them on.

An ensemble of ``M`` classifiers answers for ``N`` examples with an array of probabilities
``(M, N, K)`` (``K`` classes), or of predicted labels ``(M, N)``::

    probs = np.stack([predict(m, x, probs=True).numpy() for m in models])   # (M, N, K)
    p_avg = average_probabilities(probs)                   # (N, K): the "principled" rule
    y_vote = majority_vote(probs.argmax(axis=2), num_classes=K)   # (N,): the simple rule

Inputs may be NumPy arrays, anything :func:`numpy.asarray` takes, or torch tensors (on any
device, with or without gradients; copied to the CPU); the results are NumPy arrays.
Nothing here imports torch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["average_probabilities", "majority_vote", "bootstrap_indices"]


def _array(a) -> np.ndarray:
    """A NumPy array from an array-like or a torch tensor (detached, on the CPU)."""
    if hasattr(a, "detach"):  # a torch tensor, without importing torch
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def average_probabilities(probs, weights=None) -> np.ndarray:
    """The ensemble's predictive distribution, the (weighted) mean of its members'.

    .. math::
        p_{\\text{avg}}(y \\mid x) = \\sum_{i=1}^{M} w_i \\, p_{\\theta_i}(y \\mid x),
        \\qquad w_i = 1/M \\text{ by default}.

    Args:
        probs: ``(M, N, K)`` class probabilities of ``M`` models for ``N`` examples (each row
            a distribution over ``K`` classes; average logits instead and you get a different,
            geometric-mean ensemble).
        weights: ``(M,)`` non-negative weights, normalized to sum to 1, or ``None`` (default)
            for the plain mean.

    Returns:
        ``(N, K)`` float array; its rows sum to 1 when the inputs' rows do.

    Raises:
        ValueError: ``probs`` not 3-D or empty; ``weights`` of the wrong shape, negative or
            all zero.
    """
    probs = _array(probs)
    if probs.ndim != 3 or probs.shape[0] == 0:
        raise ValueError(
            f"average_probabilities: probs must be (M, N, K) with M >= 1, got shape {probs.shape}"
        )
    if weights is None:
        return probs.mean(axis=0)
    weights = _array(weights).astype(np.float64)
    if weights.shape != probs.shape[:1]:
        raise ValueError(
            f"average_probabilities: weights must have shape ({probs.shape[0]},), "
            f"got {weights.shape}"
        )
    if np.any(weights < 0) or not weights.sum() > 0:
        raise ValueError(
            f"average_probabilities: weights must be >= 0 with a positive sum, got {weights}"
        )
    weights = weights / weights.sum()
    return np.tensordot(weights, probs, axes=1).astype(probs.dtype, copy=False)  # (N, K)


def majority_vote(labels, num_classes: int | None = None) -> np.ndarray:
    """The label predicted by the most members, per example ("first past the post").

    Ties go to the smallest tied label, like :func:`scipy.stats.mode`, so the result is
    deterministic; with an even number of members ties are common, and a better tie-break
    (e.g. the averaged probability) is the caller's choice.

    Args:
        labels: ``(M, N)`` integer class labels, ``labels[i, n]`` the prediction of model ``i``
            for example ``n`` (``probs.argmax(axis=2)``).
        num_classes: ``K``; labels must lie in ``[0, K)``. Default ``None``: ``labels.max() + 1``.

    Returns:
        ``(N,)`` int64 array of winning labels.

    Raises:
        ValueError: ``labels`` not 2-D, empty, or outside ``[0, num_classes)``.
        TypeError: ``labels`` not integers.
    """
    labels = _array(labels)
    if labels.ndim != 2 or labels.shape[0] == 0:
        raise ValueError(
            f"majority_vote: labels must be (M, N) with M >= 1, got shape {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"majority_vote: labels must be integers, got dtype {labels.dtype}")
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 1
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"majority_vote: labels must lie in [0, {num_classes}), "
            f"got values in [{labels.min()}, {labels.max()}]"
        )
    m, n = labels.shape
    votes = np.zeros((n, num_classes), dtype=np.int64)  # (N, K) vote counts
    np.add.at(votes, (np.broadcast_to(np.arange(n), (m, n)), labels), 1)
    return votes.argmax(axis=1)  # argmax returns the first maximum: the smallest tied label


def bootstrap_indices(n: int, *, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    """Indices of a bootstrap sample: ``size`` draws from ``range(n)`` with replacement.

    Training each member of an ensemble on its own bootstrap sample ("bagging") makes the
    members differ in their data as well as in their initialization. A sample of ``n`` draws
    contains on average a fraction ``1 - (1 - 1/n)^n`` (about ``1 - 1/e = 0.632``) of the
    distinct examples; the rest are "out of bag" for that member.

    Args:
        n: size of the data set, >= 1.
        rng: a :class:`numpy.random.Generator` (``np.random.default_rng(seed)``).
        size: number of draws, >= 1. Default ``None``: ``n``.

    Returns:
        ``(size,)`` int64 indices in ``[0, n)``.

    Raises:
        ValueError: ``n`` or ``size`` not a positive int. TypeError: ``rng`` not a Generator.
    """
    for name, value in (("n", n), ("size", n if size is None else size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"bootstrap_indices: {name} must be an int >= 1, got {value!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            "bootstrap_indices: rng must be a numpy.random.Generator "
            f"(np.random.default_rng(seed)), got {type(rng).__name__}"
        )
    return rng.integers(0, n, size=n if size is None else size, dtype=np.int64)

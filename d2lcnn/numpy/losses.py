"""Loss functions in NumPy, forward and backward, with ``torch.nn.functional`` semantics:
cross-entropy from logits, negative log-likelihood from log-probabilities, mean squared error.

Classification inputs are ``(N, C)`` or, for dense prediction, ``(N, C, d1, d2, ...)`` with
class-index targets ``(N,)`` or ``(N, d1, d2, ...)``. Internally the class dimension is
moved last and every other dimension folded into one of ``M`` rows, so the formulas below
are written for a matrix ``(M, C)``.

Cross-entropy with label smoothing ``eps`` and class weights ``w`` is a cross-entropy
against the target distribution

.. math::
    q_{ic} = (1 - \\varepsilon)\\, w_{y_i} [c = y_i] + \\tfrac{\\varepsilon}{C} w_c,
    \\qquad \\ell_i = -\\sum_c q_{ic} \\log p_{ic},

which makes the gradient one line: :math:`\\partial \\ell_i / \\partial z_{ic} =
(\\sum_{c'} q_{ic'}) p_{ic} - q_{ic}` (for ``w = 1``, ``eps = 0``: the familiar ``p - onehot``).
Rows whose target is ``ignore_index`` contribute nothing. ``reduction="mean"`` divides the
sum by :math:`\\sum_i w_{y_i}` over the rows not ignored (the number of such rows when there
are no weights), exactly as PyTorch does.

Cross-entropy also takes class *probabilities* ``t`` of the logits' shape (soft labels), with

.. math::
    q_{ic} = w_c \\big((1 - \\varepsilon)\\, t_{ic} + \\tfrac{\\varepsilon}{C}\\big);

the loss and its gradient are the same formulas, and ``reduction="mean"`` divides by ``M``,
the number of samples, whatever the weights (PyTorch's convention for probabilities).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from d2lcnn.checks import (
    check_class_index,
    check_index_target,
    check_no_ignore_index,
    check_probability,
    check_probability_target,
    check_reduction,
)
from d2lcnn.numpy._checks import check_array
from d2lcnn.numpy.activations import log_softmax_forward

__all__ = [
    "CrossEntropyCache",
    "NllLossCache",
    "MseLossCache",
    "cross_entropy_forward",
    "cross_entropy_backward",
    "nll_loss_forward",
    "nll_loss_backward",
    "mse_loss_forward",
    "mse_loss_backward",
]


class CrossEntropyCache(NamedTuple):
    input_shape: tuple[int, ...]  # (N, C, *)
    probs: np.ndarray  # (M, C): softmax of the logits, class dimension last
    q: np.ndarray  # (M, C): the smoothed, weighted target distribution (0 for ignored rows)
    reduction: str
    divisor: float  # what the summed loss was divided by (1 unless reduction="mean")
    loss_shape: tuple[int, ...]  # (N, *): the per-sample losses of reduction="none"


class NllLossCache(NamedTuple):
    input_shape: tuple[int, ...]  # (N, C, *)
    rows: np.ndarray  # (M,) indices of the rows that are not ignored
    cols: np.ndarray  # (M,) their targets
    row_weight: np.ndarray  # (M,) w[target], 0 for ignored rows
    reduction: str
    divisor: float
    loss_shape: tuple[int, ...]  # (N, *)
    dtype: np.dtype


class MseLossCache(NamedTuple):
    diff: np.ndarray  # input - target
    reduction: str


# --------------------------------------------------------------------------- checks


def _class_weights(weight, x, fn):
    """Per-class weights ``(C,)`` in ``x``'s dtype (all ones for ``None``)."""
    n_classes = x.shape[1]
    if weight is None:
        return np.ones(n_classes, dtype=x.dtype)
    check_array(weight, "weight", fn, floating=False, shape=(n_classes,), shape_formula="(C,)")
    return weight.astype(x.dtype, copy=False)


def _class_rows(x):
    """Move the class dimension last and fold the others: ``(N, C, *) -> (M, C)``."""
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _check_classification(x, target, weight, ignore_index, reduction, fn):
    """Validate the arguments; return ``x`` as ``(M, C)`` (class dimension last), the
    flattened target ``(M,)``, the mask of rows not ignored, and the weights ``(C,)``."""
    check_array(x, "input", fn, min_ndim=2, layout="(N, C, d1, ...)")
    integer = isinstance(target, np.ndarray) and np.issubdtype(target.dtype, np.integer)
    check_index_target(target, integer, x.shape, fn, kind="numpy array")
    check_reduction(reduction, fn)
    n_classes = x.shape[1]
    t = target.reshape(-1)  # (M,)
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= n_classes))
    if bad.any():
        check_class_index(int(t[bad][0]), n_classes, ignore_index, fn)
    w = _class_weights(weight, x, fn)
    return _class_rows(x), np.where(valid, t, 0), valid, w


def _check_probabilities(x, target, weight, ignore_index, reduction, fn):
    """Validate class-probability targets (``target.shape == x.shape``); return ``x`` and
    ``target`` as ``(M, C)`` rows and the weights ``(C,)``."""
    check_array(x, "input", fn, min_ndim=2, layout="(N, C, d1, ...)")
    check_probability_target(target, np.issubdtype(target.dtype, np.floating), x.shape, fn)
    check_array(target, "target", fn, dtype=x.dtype)
    check_no_ignore_index(ignore_index, fn)
    check_reduction(reduction, fn)
    return _class_rows(x), _class_rows(target), _class_weights(weight, x, fn)


def _reduce(losses, divisor, reduction, loss_shape):
    """Apply ``reduction`` to the per-row losses; return ``(out, divisor used)``."""
    if reduction == "none":
        return losses.reshape(loss_shape), 1.0
    total = losses.sum()
    if reduction == "sum":
        return total, 1.0
    return total / divisor, float(divisor)  # divisor 0 (every target ignored): NaN, as PyTorch


def _row_gradient_scale(dout, cache, fn):
    """The upstream gradient of each row's loss, ``(M, 1)``."""
    dout = np.asarray(dout)
    if cache.reduction == "none":
        if dout.shape != cache.loss_shape:
            raise ValueError(
                f"{fn}: dout must have the per-sample loss shape {cache.loss_shape} for "
                f"reduction='none', got {dout.shape}"
            )
        return dout.reshape(-1, 1)
    if dout.size != 1:
        raise ValueError(
            f"{fn}: dout must be a scalar for reduction={cache.reduction!r}, got shape {dout.shape}"
        )
    return dout.reshape(1, 1) / cache.divisor


def _unfold_rows(grad_rows, input_shape):
    """Inverse of moving the class dimension last and folding: ``(M, C) -> (N, C, *)``."""
    n, c, *rest = input_shape
    return np.moveaxis(grad_rows.reshape(n, *rest, c), -1, 1)


# --------------------------------------------------------------------------- cross-entropy


def cross_entropy_forward(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> tuple[np.ndarray, CrossEntropyCache]:
    """Cross-entropy between logits and a target, as ``torch.nn.functional.cross_entropy``:
    ``log_softmax`` over the classes, then :math:`\\ell_i = -\\sum_c q_{ic} \\log p_{ic}`
    against a (smoothed, weighted) target distribution ``q``. The target is either

    - class indices, ``(N,)`` or ``(N, d1, ...)``, integer: ``q`` as in the module docstring,
      and ``reduction="mean"`` divides by the summed weight of the targets not ignored; or
    - class probabilities, ``input``'s shape, floating point (soft labels, mixup, knowledge
      distillation): :math:`q_{ic} = w_c ((1 - \\varepsilon)\\, t_{ic} + \\varepsilon / C)`,
      and ``reduction="mean"`` divides by the number of samples ``M`` (``N`` times the
      spatial size), not by a weight sum. ``ignore_index`` does not apply.

    PyTorch tells them apart the same way: a target of ``input``'s shape is probabilities.

    Args:
        input: logits, ``(N, C)`` or ``(N, C, d1, ...)``, floating point.
        target: class indices in ``[0, C)``, ``(N,)`` or ``(N, d1, ...)``, integer dtype; or
            class probabilities, ``input``'s shape and dtype (rows need not sum to 1).
        weight: per-class weights ``(C,)``, or ``None`` for all ones. Default ``None``.
        ignore_index: class-index targets equal to this contribute no loss and no gradient.
            Default -100. With probabilities it must stay negative (PyTorch: "not supported
            for floating point target").
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-sample losses ``(N, d1, ...)``).
            Default ``"mean"``.
        label_smoothing: ``eps`` in ``[0, 1]``: the target distribution keeps ``1 - eps`` of
            its mass and spreads ``eps`` uniformly over all ``C`` classes. Default 0.0.

    Returns:
        ``(loss, cache)``: ``loss`` is a 0-d array, or ``(N, d1, ...)`` for ``"none"``.

    Raises:
        ValueError: wrong shapes, a target outside ``[0, C)``, an unknown ``reduction``, a
            ``label_smoothing`` outside ``[0, 1]``, or ``ignore_index >= 0`` with
            probabilities.
        TypeError: a non-float ``input``, a class-index target that is not integer, a
            probability target that is not floating point with ``input``'s dtype, a
            ``weight`` that is not an array or a ``label_smoothing`` that is not a number.

    Example:
        >>> loss, _ = cross_entropy_forward(np.zeros((2, 4)), np.array([0, 3]))
        >>> float(loss)  # uniform prediction over 4 classes: log 4
        1.3862943611198906
        >>> soft = np.array([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
        >>> float(cross_entropy_forward(np.zeros((2, 4)), soft)[0])  # still log 4
        1.3862943611198906
    """
    fn = "cross_entropy_forward"
    eps = check_probability(label_smoothing, "label_smoothing", fn)
    if _holds_probabilities(input, target):
        rows, t_rows, w = _check_probabilities(input, target, weight, ignore_index, reduction, fn)
        q = w * ((1 - eps) * t_rows + eps / rows.shape[1])  # (M, C)
        divisor = rows.shape[0]  # every sample counts once, whatever its weights
    else:
        rows, t, valid, w = _check_classification(
            input, target, weight, ignore_index, reduction, fn
        )
        q = _index_target_distribution(t, valid, w, eps)  # (M, C)
        divisor = np.where(valid, w[t], 0).sum()
    log_p, _ = log_softmax_forward(rows, dim=1)  # (M, C)
    losses = -(q * log_p).sum(axis=1)  # (M,)
    loss_shape = (input.shape[0], *input.shape[2:])
    out, divisor = _reduce(losses, divisor, reduction, loss_shape)
    cache = CrossEntropyCache(input.shape, np.exp(log_p), q, reduction, divisor, loss_shape)
    return np.asarray(out, dtype=input.dtype), cache


def _holds_probabilities(input, target) -> bool:
    """PyTorch's rule: a target of the input's shape holds class probabilities."""
    return (
        isinstance(input, np.ndarray)
        and isinstance(target, np.ndarray)
        and target.shape == input.shape
    )


def _index_target_distribution(t, valid, w, eps):
    """``q`` of the module docstring for class indices ``t`` ``(M,)``: ``(M, C)``."""
    m, n_classes = t.size, w.size
    q = np.broadcast_to(w * (eps / n_classes), (m, n_classes)).copy()  # (M, C)
    q[np.arange(m), t] += (1 - eps) * w[t]
    q[~valid] = 0
    return q


def cross_entropy_backward(dout: np.ndarray, cache: CrossEntropyCache) -> np.ndarray:
    """Backward of :func:`cross_entropy_forward`: with ``p = softmax(logits)`` and the target
    distribution ``q``, :math:`d\\,\\mathrm{logits} = g\\,((\\sum_c q_c)\\, p - q)` per row,
    where ``g`` is ``dout`` (``"sum"``), ``dout / divisor`` (``"mean"``) or that row's
    ``dout`` (``"none"``). The same formula serves class indices and class probabilities:
    only ``q`` and the divisor differ.

    Args:
        dout: a scalar for ``"mean"``/``"sum"``; ``(N, d1, ...)`` for ``"none"``.
        cache: from :func:`cross_entropy_forward`.

    Returns:
        ``dinput``, shaped like the logits.

    Raises:
        ValueError: if ``dout`` does not have the loss's shape.
    """
    g = _row_gradient_scale(dout, cache, "cross_entropy_backward")  # (M, 1) or (1, 1)
    q = cache.q
    grad = g * (q.sum(axis=1, keepdims=True) * cache.probs - q)  # (M, C)
    return _unfold_rows(grad, cache.input_shape).astype(cache.probs.dtype, copy=False)


# --------------------------------------------------------------------------- NLL


def nll_loss_forward(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> tuple[np.ndarray, NllLossCache]:
    """Negative log-likelihood of class indices, as ``torch.nn.functional.nll_loss``:
    :math:`\\ell_i = -w_{y_i}\\, \\text{input}[i, y_i]`. ``input`` holds log-probabilities
    (e.g. from :func:`~d2lcnn.numpy.activations.log_softmax_forward` with ``dim=1``);
    ``log_softmax`` followed by ``nll_loss`` is ``cross_entropy``.

    Args:
        input: log-probabilities, ``(N, C)`` or ``(N, C, d1, ...)``, floating point.
        target, weight, ignore_index, reduction: as in :func:`cross_entropy_forward`, with
            class-index targets only (``F.nll_loss`` takes no probabilities either).

    Returns:
        ``(loss, cache)``: ``loss`` is a 0-d array, or ``(N, d1, ...)`` for ``"none"``.
    """
    fn = "nll_loss_forward"
    rows, t, valid, w = _check_classification(input, target, weight, ignore_index, reduction, fn)
    m = rows.shape[0]
    row_weight = np.where(valid, w[t], 0).astype(input.dtype)  # (M,)
    losses = -row_weight * rows[np.arange(m), t]  # (M,)
    out, divisor = _reduce(losses, row_weight.sum(), reduction, target.shape)
    cache = NllLossCache(
        input.shape, np.arange(m), t, row_weight, reduction, divisor, target.shape, input.dtype
    )
    return np.asarray(out, dtype=input.dtype), cache


def nll_loss_backward(dout: np.ndarray, cache: NllLossCache) -> np.ndarray:
    """Backward of :func:`nll_loss_forward`: ``-w[y_i] * g_i`` at each target entry, 0
    elsewhere.

    Returns:
        ``dinput``, shaped like ``input``.
    """
    g = _row_gradient_scale(dout, cache, "nll_loss_backward")[:, 0]  # (M,) or (1,)
    n_classes = cache.input_shape[1]
    grad = np.zeros((cache.rows.size, n_classes), dtype=cache.dtype)  # (M, C)
    grad[cache.rows, cache.cols] = -cache.row_weight * g
    return _unfold_rows(grad, cache.input_shape)


# --------------------------------------------------------------------------- MSE


def mse_loss_forward(
    input: np.ndarray, target: np.ndarray, *, reduction: str = "mean"
) -> tuple[np.ndarray, MseLossCache]:
    """Mean squared error, as ``torch.nn.functional.mse_loss``: :math:`(x - y)^2`, averaged
    (``"mean"``), summed (``"sum"``) or elementwise (``"none"``).

    Unlike PyTorch (which broadcasts with a warning), ``target`` must have ``input``'s shape:
    a silently broadcast target is a classic bug.

    Args:
        input: any shape, floating point.
        target: ``input``'s shape and dtype.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``. Default ``"mean"``.

    Returns:
        ``(loss, cache)``: ``loss`` is a 0-d array, or ``input``'s shape for ``"none"``.
    """
    fn = "mse_loss_forward"
    check_array(input, "input", fn)
    check_array(target, "target", fn)
    if target.shape != input.shape:
        raise ValueError(f"{fn}: target must have input's shape {input.shape}, got {target.shape}")
    check_reduction(reduction, fn)
    diff = input - target
    sq = diff**2
    out = sq if reduction == "none" else sq.sum() if reduction == "sum" else sq.mean()
    return np.asarray(out, dtype=input.dtype), MseLossCache(diff, reduction)


def mse_loss_backward(dout: np.ndarray, cache: MseLossCache) -> tuple[np.ndarray, np.ndarray]:
    """Backward of :func:`mse_loss_forward`: :math:`d\\,\\text{input} = 2 (x - y)\\, g` with
    ``g = dout`` (``"none"``, ``"sum"``) or ``dout / size`` (``"mean"``).

    Returns:
        ``(dinput, dtarget)``, with ``dtarget = -dinput``.
    """
    diff, reduction = cache
    dout = np.asarray(dout)
    if reduction == "none":
        if dout.shape != diff.shape:
            raise ValueError(
                f"mse_loss_backward: dout must have shape {diff.shape} for reduction='none', "
                f"got {dout.shape}"
            )
        g = dout
    elif dout.size != 1:
        raise ValueError(
            f"mse_loss_backward: dout must be a scalar for reduction={reduction!r}, "
            f"got shape {dout.shape}"
        )
    else:
        g = dout.reshape(()) / (diff.size if reduction == "mean" else 1)
    dinput = (2 * diff * g).astype(diff.dtype, copy=False)
    return dinput, -dinput
